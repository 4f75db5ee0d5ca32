// A healthy soak: 30 minutes of varying load on a real Koa service, watched on the one process by
// three sentries with the defaults but for the setting: the 60 s window at 250 ms, the 300 s
// window at 1 s (issue 10's two) and `new MemorySentry()` with nothing set (a 10-minute window at
// 1 s). The verdict is 0 'leak' events from each. Not part of CI (it takes 30 minutes).
//
//   npm run soak:leak                 # 30 minutes
//   npm run soak:leak -- --minutes 10
//   npm run soak:leak -- --service lru  # an LRU at its cap instead of a full cache
//   npm run soak:leak -- --traces dir   # also write the run's samples (CSV) for replay, as the
//                                       # eval does: an alarm can then be replayed and explained
//
// The load changes every 30-120 s between 20 and 600 req/s (a fixed pseudo-random sequence, so
// runs are comparable); the service keeps a bounded cache (2000 entries of 10 KB, filled early)
// and makes ~10 KB of garbage per request, so it has what a real one has: a GC sawtooth, V8
// resizing its heap at each load change, old-generation garbage between full GCs, a full cache.
// With `--service lru`, an LRU keyed by a random id among 6000 (4 KB entries, eval's lru-slow)
// replaces an entry on most requests once near its cap: the RSS outside V8's heap creeps up for
// many minutes there. Two more sentries watch it, at 120 s and 240 s windows (1 s sampling).
import { rmSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

import { runScenario, writeTrace } from '../__test__/fixtures/leak/scenario.mjs'
import { SETTINGS, sentryOptions, snapshotPackage } from './leak.mjs'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    service: { type: 'string', default: 'cache' },
    traces: { type: 'string' },
  },
})
const totalS = Number(values.minutes) * 60
const SERVICES = {
  cache: { server: { retain: 'cache', bytesPerRequest: 10_000, cacheEntries: 2000 }, sentries: {} },
  lru: {
    server: { retain: 'lru', bytesPerRequest: 4000, cacheEntries: 6000 },
    sentries: {
      w120: sentryOptions({ intervalMs: 1000, windowMs: 120_000 }),
      w240: sentryOptions({ intervalMs: 1000, windowMs: 240_000 }),
    },
  },
}
const service = SERVICES[values.service]
if (!service)
  throw new RangeError(`--service must be one of ${Object.keys(SERVICES)}, got ${values.service}`)

// A 32-bit LCG: the same phases every run.
let seed = 12345
const next = () => (seed = (seed * 1664525 + 1013904223) % 2 ** 32) / 2 ** 32
const rates = [20, 50, 100, 200, 300, 600]
const phases = []
for (let t = 0; t < totalS;) {
  const rate = rates[Math.floor(next() * rates.length)]
  // Spikes to 600 req/s are short; other phases last 30-120 s.
  const durationS = Math.min(totalS - t, rate === 600 ? 20 : 30 + Math.floor(next() * 90))
  phases.push({ rate, durationS })
  t += durationS
}

// The trace's samples are the first sentry's history: it must hold the whole run.
const sentries = {
  w60: { ...sentryOptions(SETTINGS.w60), historySize: (totalS + 300) * 4 },
  w300: sentryOptions(SETTINGS.w300),
  // `{}`: what a user who sets nothing gets (leak detection is on, heap figures are recorded
  // for it).
  defaults: {},
  ...service.sentries,
}

const started = Date.now()
// A copy of the package, as in eval/leak.mjs: a rebuild during the run does not touch it.
const dir = snapshotPackage()
const r = await runScenario({
  server: {
    memsentry: path.join(dir, 'index.mjs'),
    ...service.server,
    sentries,
    recordHeap: Boolean(values.traces),
    maxMs: (totalS + 120) * 1000,
  },
  phases,
  tailMs: 2000,
  log: (line) => console.error(line),
}).finally(() => rmSync(dir, { recursive: true, force: true }))
// What each sentry runs with: `{}` gets the defaults (a 10-minute window at 1 s).
const setting = (o) => ({ intervalMs: o.intervalMs ?? 1000, windowMs: o.leak?.windowMs ?? 600_000 })
if (values.traces && r.history) {
  writeTrace(values.traces, `soak-${values.service}`, r, Object.values(sentries).map(setting))
}
const served = r.phases.reduce((sum, p) => sum + (p.requests ?? 0), 0)
const names = Object.keys(sentries)
const described = Object.entries(sentries).map(([name, o]) => {
  const { intervalMs, windowMs } = setting(o)
  return `${name} (${windowMs / 1000} s @ ${intervalMs < 1000 ? `${intervalMs} ms` : `${intervalMs / 1000} s`})`
})
console.log(
  `soak (${values.service}): ${phases.length} load phases over ` +
    `${Math.round((Date.now() - started) / 60000)} min, ${served} requests; sentries: ` +
    described.join(', '),
)
for (const e of r.events) {
  console.log(
    `  ${e.sentry}: ${e.type} at ${(e.latencyMs / 1000).toFixed(1)} s: suspect ${e.suspect}, ` +
      `${((e.slopeBytesPerSec * 60) / 1048576).toFixed(1)} MiB/min`,
  )
}
const leaks = r.leaks.length
for (const name of names) {
  console.log(`${name}: ${r.leaks.filter((e) => e.sentry === name).length} leak events`)
}
console.log(`${leaks === 0 ? 1 : 0} passed, ${leaks === 0 ? 0 : 1} failed`)
process.exitCode = leaks === 0 ? 0 : 1
