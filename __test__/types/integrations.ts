// Type-checked by `npm test`: every subpath entry point resolves through package.json `exports`
// (the package's own name, as users import it) to its .d.ts, and the README's usage compiles.
import http from 'node:http'
import { MemorySentry, type Sample } from 'memsentry'
import { memoryLogger, type BatchReport } from 'memsentry/koa'
import { collect } from 'memsentry/prometheus'
import { observe } from 'memsentry/otel'
import {
  attach,
  writeReport,
  collectData,
  buildData,
  renderHtml,
  eventCount,
} from 'memsentry/report'
import { memoryDashboard } from 'memsentry/dashboard'
import {
  formatBytes,
  formatDelta,
  formatDiagnosis,
  formatJson,
  formatPidstat,
  formatReport,
  pidstatHeader,
  formatSite,
} from 'memsentry/format'
import { sentry as preloaded, droppedLines } from 'memsentry/register'
import { Registry } from 'prom-client'
import { metrics } from '@opentelemetry/api'

const sentry = new MemorySentry({
  intervalMs: 1000,
  heap: true,
  cgroup: false,
  leak: { report: '/tmp/r' },
})

const logger = memoryLogger({
  sentry,
  every: 1000,
  everyMs: 10_000,
  log: (report: BatchReport) =>
    console.log(
      report.rss,
      report.suspectRoutes?.[0]?.bytesPerRequest,
      report.leakSites?.[0]?.line,
    ),
  metric: 'rss',
  attribution: { minObservationMs: 4000, minT: 3 },
})
const flushed: BatchReport | null = logger.flush()
const leaking: boolean = logger.leaking
void [flushed, leaking, logger.suspects(), logger.attribution.estimate().perRequest]
logger.close()
const httpLogger = memoryLogger.http({ log: { info: (r: BatchReport) => void r } })
http.createServer((req, res) => httpLogger(req, res))

const {
  registry,
  metrics: byName,
  close,
} = collect(sentry, { registry: new Registry(), prefix: 'app_' })
void [registry, byName, close]
observe(sentry, { meter: metrics.getMeter('app'), prefix: 'app' }).close()

attach(sentry)
const file: string = writeReport(sentry, '/tmp/memory.html', { includeCmdline: false, title: 'x' })
const history: Sample[] = sentry.history()
const html: string = renderHtml(buildData(history, [], { title: 't' }))
const live = collectData(sentry, { sinceMs: 0 })
const seen: number = eventCount(sentry)
void [file, html, live.series.time, seen]

const view = memoryDashboard.http({ sentry, hosts: ['admin.internal'], authorize: () => true })
http.createServer((req, res) => view(req, res, () => res.end()))
memoryDashboard({ sentry, path: '/_memsentry', pollMs: 1000 })

const line: string = formatBytes(1572864, { binary: false, decimals: 2 }) + formatDelta(-5)
const latest = sentry.latest
if (latest) void [formatPidstat(latest, { uid: 0 }), formatJson(latest, { includeCmdline: true })]
void [
  line,
  pidstatHeader(),
  formatReport({ requests: 1, ms: 1, reqPerSec: 1, rss: 1, rssDelta: 0 }),
]

sentry.on('leak-diagnosis', (d) => {
  const text: string = formatDiagnosis(d, { cwd: process.cwd(), maxSites: 2 })
  void [text, d.sites[0] && formatSite(d.sites[0], { cwd: '/srv' })]
})

const dropped: number = droppedLines()
const maybe: MemorySentry | null = preloaded
void [dropped, maybe]

// @ts-expect-error: metric is 'heap' or 'rss'.
memoryLogger({ metric: 'pss' })
// @ts-expect-error: an unknown option is a type error too.
collect(sentry, { prefx: 'x' })
// @ts-expect-error: the dashboard needs a sentry.
memoryDashboard({ path: '/x' })
