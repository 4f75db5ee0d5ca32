// Every entry point answers a misspelt option the way the core does: a TypeError naming the
// entry point and the key, with the key it probably meant (lib/validation.js).
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { MemorySentry } = require('../index.js')
const { memoryLogger } = require('../integrations/koa.js')
const { collect } = require('../integrations/prometheus.js')
const { observe } = require('../integrations/otel.js')
const { writeReport } = require('../integrations/report.js')
const { memoryDashboard } = require('../integrations/dashboard.js')
const {
  formatBytes,
  formatDiagnosis,
  formatPidstat,
  formatJson,
} = require('../integrations/format.js')

const sentry = new MemorySentry({ intervalMs: 3_600_000, children: 'none' })
after(() => sentry.close())

const cases = [
  ['core', () => new MemorySentry({ intervalMS: 100 }), 'memsentry', 'intervalMS', 'intervalMs'],
  ['koa', () => memoryLogger({ evry: 100 }), 'memsentry/koa', 'evry', 'every'],
  [
    'koa http',
    () => memoryLogger.http({ sentry, everyMS: 100 }),
    'memsentry/koa',
    'everyMS',
    'everyMs',
  ],
  [
    'koa attribution',
    () => memoryLogger({ sentry, attribution: { minT: 3, windw: 5 } }),
    'memsentry/koa',
    'attribution.windw',
    'attribution.window',
  ],
  ['prometheus', () => collect(sentry, { prefx: 'x' }), 'memsentry/prometheus', 'prefx', 'prefix'],
  ['otel', () => observe(sentry, { metre: {} }), 'memsentry/otel', 'metre', 'meter'],
  [
    'report',
    () => writeReport(sentry, '/nonexistent/x.html', { titel: 'x' }),
    'memsentry/report: writeReport',
    'titel',
    'title',
  ],
  [
    'dashboard',
    () => memoryDashboard({ sentry, pollMS: 500 }),
    'memsentry/dashboard',
    'pollMS',
    'pollMs',
  ],
  ['format bytes', () => formatBytes(1, { binry: true }), 'memsentry/format', 'binry', 'binary'],
  ['format pidstat', () => formatPidstat({}, { ui: 0 }), 'memsentry/format', 'ui', 'uid'],
  [
    'format diagnosis',
    () => formatDiagnosis({}, { maxSite: 1 }),
    'memsentry/format',
    'maxSite',
    'maxSites',
  ],
  [
    'format json',
    () => formatJson({}, { includeCmdLine: true }),
    'memsentry/format',
    'includeCmdLine',
    'includeCmdline',
  ],
]

for (const [what, call, who, key, meant] of cases) {
  test(`${what}: an unknown option is a TypeError with a suggestion`, () => {
    assert.throws(call, {
      name: 'TypeError',
      message: `${who}: unknown option '${key}' (did you mean '${meant}'?)`,
    })
  })
}

test('a key close to nothing lists the known ones; a non-object is a TypeError', () => {
  assert.throws(() => collect(sentry, { zzzzzzzz: 1 }), {
    name: 'TypeError',
    message: "memsentry/prometheus: unknown option 'zzzzzzzz' (known options: registry, prefix)",
  })
  assert.throws(() => observe(sentry, 'memsentry'), {
    name: 'TypeError',
    message: "memsentry/otel: options must be an object, got string 'memsentry'",
  })
})

test('inherited keys are not options', () => {
  const options = Object.create({ evry: 5 })
  options.sentry = sentry
  const logger = memoryLogger(options)
  logger.close()
})
