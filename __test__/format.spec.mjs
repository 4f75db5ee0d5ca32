// memsentry/format: exact strings from fixed samples.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const {
  formatBytes,
  formatDelta,
  pidstatHeader,
  formatPidstat,
  formatJson,
  formatReport,
  formatDiagnosis,
} = require('../integrations/format.js')

const KiB = 1024
const MiB = 1024 * KiB

// 13:04:05 local time, whatever the machine's time zone.
const TIME = new Date(2026, 0, 2, 13, 4, 5, 678).getTime()

const SAMPLE = Object.freeze({
  time: TIME,
  pid: 4242,
  rss: 45_678 * KiB,
  vsz: 812_000 * KiB,
  shared: 30 * MiB,
  text: 20 * MiB,
  data: 50 * MiB,
  rssAnon: 15 * MiB,
  rssFile: 29 * MiB,
  rssShmem: 0,
  swap: 0,
  hwm: 46 * MiB,
  memPercent: 0.1834,
  threads: 11,
  minorFaults: 123_456,
  majorFaults: 7,
  minorFaultsPerSec: 12.5,
  majorFaultsPerSec: 0,
})

test('formatBytes: binary by default, one decimal, units up the scale', () => {
  assert.equal(formatBytes(0), '0 B')
  assert.equal(formatBytes(512), '512 B')
  assert.equal(formatBytes(1023), '1023 B')
  assert.equal(formatBytes(1024), '1.0 KiB')
  assert.equal(formatBytes(1536), '1.5 KiB')
  assert.equal(formatBytes(1.5 * MiB), '1.5 MiB')
  assert.equal(formatBytes(700 * MiB), '700.0 MiB')
  assert.equal(formatBytes(3 * 1024 * MiB), '3.0 GiB')
  assert.equal(formatBytes(2 * 1024 ** 4), '2.0 TiB')
  // Rounding that would print 1024.0 moves up a unit.
  assert.equal(formatBytes(MiB - 1), '1.0 MiB')
  assert.equal(formatBytes(-1.5 * MiB), '-1.5 MiB')
  assert.equal(formatBytes(1.5 * MiB, { decimals: 2 }), '1.50 MiB')
  assert.equal(formatBytes(1.5 * MiB, { decimals: 0 }), '2 MiB')
  // A wrong type is a TypeError, a value out of range a RangeError, each showing the value.
  assert.throws(() => formatBytes(1, { decimals: 101 }), {
    name: 'RangeError',
    message: 'memsentry/format: decimals must be an integer in 0..=20, got 101',
  })
  assert.throws(() => formatBytes(1, { decimals: 1.5 }), RangeError)
  assert.throws(() => formatBytes(1, { decimals: '3' }), {
    name: 'TypeError',
    message: "memsentry/format: decimals must be an integer, got string '3'",
  })
  assert.throws(() => formatBytes(1, { binary: 'no' }), {
    name: 'TypeError',
    message: "memsentry/format: binary must be a boolean, got string 'no'",
  })
  assert.equal(formatBytes(1_500_000, { binary: false }), '1.5 MB')
  assert.equal(formatBytes(999, { binary: false }), '999 B')
  assert.equal(formatBytes(1000, { binary: false }), '1.0 kB')
  assert.equal(formatBytes(null), 'n/a')
  assert.equal(formatBytes(undefined), 'n/a')
  assert.equal(formatBytes(NaN), 'n/a')
})

test('formatDelta: signed', () => {
  assert.equal(formatDelta(1.5 * MiB), '+1.5 MiB')
  assert.equal(formatDelta(-512), '-512 B')
  assert.equal(formatDelta(0), '+0 B')
  assert.equal(formatDelta(null), 'n/a')
})

test('pidstatHeader: the columns of pidstat -r', () => {
  assert.equal(
    pidstatHeader(),
    'Time        UID       PID  minflt/s  majflt/s     VSZ     RSS   %MEM  Command',
  )
})

test('formatPidstat: one line in the header columns', () => {
  assert.equal(
    formatPidstat(SAMPLE, { command: 'node', uid: 0 }),
    '13:04:05      0      4242     12.50      0.00  812000   45678   0.18  node',
  )
  assert.equal(
    formatPidstat(SAMPLE, { command: 'node', uid: 0 }).length,
    pidstatHeader().replace('Command', 'node').length,
    'aligned with the header',
  )
  assert.equal(
    formatPidstat(
      { ...SAMPLE, pid: 1234567, uid: 1000, minorFaultsPerSec: 1234.567, memPercent: 12.3456 },
      { command: 'my-service', uid: 1000 },
    ),
    '13:04:05   1000   1234567   1234.57      0.00  812000   45678  12.35  my-service',
  )
  // Too wide for a column: the column grows, as printf does.
  assert.equal(
    formatPidstat({ ...SAMPLE, vsz: 123_456_789 * KiB }, { command: 'x', uid: 0 }),
    '13:04:05      0      4242     12.50      0.00 123456789   45678   0.18  x',
  )
  // A figure the read could not get prints as '-'.
  assert.equal(
    formatPidstat(
      { ...SAMPLE, minorFaultsPerSec: null, majorFaultsPerSec: undefined },
      { command: 'x', uid: 0 },
    ),
    '13:04:05      0      4242         -         -  812000   45678   0.18  x',
  )
})

test('formatPidstat: the default command and uid are this process', () => {
  const line = formatPidstat(SAMPLE)
  const fields = line.trim().split(/\s+/)
  assert.equal(fields[1], String(process.getuid()))
  assert.equal(fields.at(-1), process.title)
})

test('formatJson: one line; children cmdlines only on request', () => {
  assert.equal(
    formatJson({ time: 1, pid: 2, rss: 3, cgroup: null }),
    '{"time":1,"pid":2,"rss":3,"cgroup":null}',
  )
  const sample = {
    time: 1,
    pid: 2,
    rss: 3,
    children: [
      { pid: 10, ppid: 2, comm: 'worker', cmdline: 'worker --token=secret', rss: 4 },
      { pid: 11, ppid: 2, comm: 'sh', rss: 5 },
    ],
    childrenRss: 9,
    treeRss: 12,
  }
  const line = formatJson(sample)
  assert.ok(!line.includes('\n'))
  assert.equal(
    line,
    '{"time":1,"pid":2,"rss":3,"children":[{"pid":10,"ppid":2,"comm":"worker","rss":4},' +
      '{"pid":11,"ppid":2,"comm":"sh","rss":5}],"childrenRss":9,"treeRss":12}',
  )
  assert.equal(sample.children[0].cmdline, 'worker --token=secret', 'the sample is not changed')
  assert.equal(
    formatJson(sample, { includeCmdline: true }),
    '{"time":1,"pid":2,"rss":3,"children":[{"pid":10,"ppid":2,"comm":"worker",' +
      '"cmdline":"worker --token=secret","rss":4},{"pid":11,"ppid":2,"comm":"sh","rss":5}],' +
      '"childrenRss":9,"treeRss":12}',
  )
  assert.deepEqual(JSON.parse(formatJson(SAMPLE)), SAMPLE)
  // An includeCmdline planted on Object.prototype (a pollution elsewhere) is no option.
  Object.prototype.includeCmdline = true
  try {
    assert.equal(formatJson(sample), line)
    assert.equal(formatJson(sample, {}), line)
  } finally {
    delete Object.prototype.includeCmdline
  }
})

test('formatReport: a batch report on one line', () => {
  assert.equal(
    formatReport({
      requests: 1000,
      ms: 812.4,
      reqPerSec: 1230.9,
      rss: 80 * MiB,
      rssDelta: 1.5 * MiB,
    }),
    'memsentry: 1000 req in 812 ms (1231 req/s) rss 80.0 MiB (+1.5 MiB)',
  )
  assert.equal(
    formatReport({
      requests: 1000,
      ms: 812,
      reqPerSec: 12.34,
      rss: 80 * MiB,
      rssDelta: -512,
      heapUsed: 20 * MiB,
      heapDelta: 2 * MiB,
      treeRss: 120 * MiB,
      workingSet: 100 * MiB,
      routes: { 'GET /health': 400, 'GET /orders/:id': 600 },
      suspectRoutes: [{ route: 'GET /orders/:id', bytesPerRequest: 20 * KiB }],
    }),
    'memsentry: 1000 req in 812 ms (12.3 req/s) rss 80.0 MiB (-512 B) heap 20.0 MiB (+2.0 MiB) ' +
      'tree 120.0 MiB workingSet 100.0 MiB routes GET /orders/:id=600 GET /health=400 ' +
      'suspects GET /orders/:id 20.0 KiB/req',
  )
  assert.match(
    formatReport({ requests: 1, ms: 1, reqPerSec: 1000, rss: 1, rssDelta: 0, suspectRoutes: [] }),
    / suspects none$/,
  )
})

test('formatDiagnosis: the notable sites, the figures outside the heap; options checked', () => {
  const d = {
    suspect: 'heap',
    durationMs: 10_000,
    sampledBytes: 18 * MiB,
    sites: [
      { functionName: 'getData', url: 'file:///app/src/data.js', line: 49, share: 0.97 },
      { functionName: '', url: '/app/lib/cache.js', line: 7, share: 0.02 },
      { functionName: 'tiny', url: '/app/lib/x.js', line: 1, share: 0.005 },
    ],
  }
  assert.equal(
    formatDiagnosis(d, { cwd: '/app' }),
    'memsentry: leak allocated in getData (src/data.js:49) 97%, (anonymous) (lib/cache.js:7) 2% ' +
      '(18.0 MiB sampled over 10 s)',
  )
  assert.equal(
    formatDiagnosis(d, { cwd: '/app', maxSites: 1 }),
    'memsentry: leak allocated in getData (src/data.js:49) 97% (18.0 MiB sampled over 10 s)',
  )
  // Infinity: every notable site (a share of 1% or more, and the first).
  assert.equal(
    formatDiagnosis(d, { cwd: '/app', maxSites: Infinity }),
    formatDiagnosis(d, { cwd: '/app' }),
  )
  assert.equal(
    formatDiagnosis(d, { cwd: '/app', maxSites: 1 }),
    'memsentry: leak allocated in getData (src/data.js:49) 97% (18.0 MiB sampled over 10 s)',
  )
  const native = {
    suspect: 'native',
    durationMs: 0,
    sites: [],
    native: { spanMs: 60_000, growth: { rssAnon: { bytes: 30 * MiB } }, outsideHeap: null },
  }
  assert.equal(
    formatDiagnosis(native),
    'memsentry: leak outside the JS heap: over 60 s rssAnon +30.0 MiB',
  )
  assert.throws(() => formatDiagnosis(d, { maxSites: 0 }), {
    name: 'RangeError',
    message: 'memsentry/format: maxSites must be an integer >= 1 or Infinity, got 0',
  })
  assert.throws(() => formatDiagnosis(d, { maxSites: '2' }), TypeError)
  assert.throws(() => formatDiagnosis(d, { cwd: 1 }), TypeError)
})
