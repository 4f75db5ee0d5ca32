// memsentry/otel: a real MeterProvider from @opentelemetry/sdk-metrics, collected on demand.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { metrics } from '@opentelemetry/api'
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { waitFor } from './helpers/wait.mjs'

const require = createRequire(import.meta.url)
const { MemorySentry } = require('../index.js')
const { observe } = require('../integrations/otel.js')

// A reader that exports only when asked: collect() runs the observable callbacks now.
function makeProvider() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const provider = new MeterProvider({ readers: [reader] })
  return { provider, reader }
}

// name -> { descriptor, dataPointType, isMonotonic, points: [{ attributes, value }] }
async function collect(reader) {
  const { resourceMetrics, errors } = await reader.collect()
  assert.deepEqual(errors, [])
  const out = new Map()
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      out.set(m.descriptor.name, {
        descriptor: m.descriptor,
        dataPointType: m.dataPointType,
        isMonotonic: m.isMonotonic,
        points: m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
      })
    }
  }
  return out
}

function single(collected, name) {
  const m = collected.get(name)
  assert.ok(m, `${name} missing; got ${[...collected.keys()].join(', ')}`)
  assert.equal(m.points.length, 1, `${name}: ${JSON.stringify(m.points)}`)
  return m.points[0].value
}

// Counts reads of `sentry.latest` without changing what it returns.
function countLatestReads(sentry) {
  const counter = { reads: 0 }
  const proto = Object.getPrototypeOf(sentry)
  Object.defineProperty(sentry, 'latest', {
    configurable: true,
    get() {
      counter.reads++
      return Reflect.get(proto, 'latest', sentry)
    },
  })
  return counter
}

// One sentry for the tests that need real figures; at one sample an hour, its first sample (taken
// at start) stays the newest for the whole file, so exported values can be compared exactly.
const sentry = new MemorySentry({ intervalMs: 3_600_000 })
after(() => sentry.close())

async function firstSample() {
  return waitFor(() => sentry.latest, { timeoutMs: 20_000, message: 'no first sample' })
}

test('process.memory.usage is the sample rss, in By, with semantic-convention kinds', async () => {
  const sample = await firstSample()
  const { provider, reader } = makeProvider()
  const otel = observe(sentry, { meter: provider.getMeter('test') })
  try {
    const c = await collect(reader)
    assert.equal(single(c, 'process.memory.usage'), sentry.latest.rss)
    assert.equal(single(c, 'process.memory.usage'), sample.rss)
    assert.equal(single(c, 'process.memory.virtual'), sample.vsz)
    assert.equal(single(c, 'process.thread.count'), sample.threads)
    assert.equal(single(c, 'memsentry.memory.swap'), sample.swap)
    assert.equal(single(c, 'memsentry.tree.memory.usage'), sample.treeRss)
    assert.equal(single(c, 'memsentry.children.memory.usage'), sample.childrenRss)
    assert.equal(single(c, 'memsentry.leak.slope'), 0)

    for (const name of [
      'process.memory.usage',
      'process.memory.virtual',
      'memsentry.memory.swap',
      'memsentry.tree.memory.usage',
      'memsentry.children.memory.usage',
    ]) {
      assert.equal(c.get(name).descriptor.unit, 'By', name)
    }
    assert.equal(c.get('memsentry.leak.slope').descriptor.unit, 'By/s')
    assert.equal(c.get('process.thread.count').descriptor.unit, '{thread}')

    // Additive sizes are UpDownCounters (non-monotonic sums), memsentry's own figures gauges.
    assert.equal(c.get('process.memory.usage').dataPointType, DataPointType.SUM)
    assert.equal(c.get('process.memory.usage').isMonotonic, false)
    assert.equal(c.get('memsentry.memory.swap').dataPointType, DataPointType.GAUGE)

    // The cgroup figures, when this machine has a memory cgroup; a null figure is not exported.
    if (sample.cgroup != null) {
      for (const [name, value] of [
        ['memsentry.cgroup.memory.usage', sample.cgroup.usage],
        ['memsentry.cgroup.memory.limit', sample.cgroup.limit],
        ['memsentry.cgroup.memory.working_set', sample.cgroup.workingSet],
      ]) {
        if (value == null) assert.equal(c.has(name), false, `${name} exported for null`)
        else assert.equal(single(c, name), value)
      }
    }
    // smaps is off for this sentry: no PSS instrument at all.
    assert.equal(c.has('memsentry.memory.pss'), false)
  } finally {
    otel.close()
    await provider.shutdown()
  }
})

test('process.paging.faults is a monotonic counter with the fault type attribute', async () => {
  const sample = await firstSample()
  const { provider, reader } = makeProvider()
  const otel = observe(sentry, { meter: provider.getMeter('test') })
  try {
    const c = await collect(reader)
    const faults = c.get('process.paging.faults')
    assert.ok(faults)
    assert.equal(faults.dataPointType, DataPointType.SUM)
    assert.equal(faults.isMonotonic, true)
    assert.equal(faults.descriptor.unit, '{fault}')
    const byType = Object.fromEntries(
      faults.points.map((p) => [p.attributes['process.paging.fault_type'], p.value]),
    )
    assert.deepEqual(byType, { minor: sample.minorFaults, major: sample.majorFaults })
  } finally {
    otel.close()
    await provider.shutdown()
  }
})

test('one read of sentry.latest per collection, none after close()', async () => {
  await firstSample()
  const counter = countLatestReads(sentry)
  const { provider, reader } = makeProvider()
  const otel = observe(sentry, { meter: provider.getMeter('test') })
  try {
    assert.equal(counter.reads, 0)
    await collect(reader)
    assert.equal(counter.reads, 1)
    await collect(reader)
    assert.equal(counter.reads, 2)

    otel.close()
    otel.close() // idempotent
    await collect(reader)
    await collect(reader)
    assert.equal(counter.reads, 2, 'the callback ran after close()')
  } finally {
    delete sentry.latest
    otel.close()
    await provider.shutdown()
  }
})

test("memsentry.leak.slope is the sentry's leak episode at collection time", async () => {
  await firstSample()
  // The episode as the core reports it; events are ignored (a stray one changes nothing).
  let episode = null
  Object.defineProperty(sentry, 'leakEpisode', { configurable: true, get: () => episode })
  const { provider, reader } = makeProvider()
  const otel = observe(sentry, { meter: provider.getMeter('test') })
  try {
    const listening = sentry.eventNames()
    assert.ok(!listening.includes('leak') && !listening.includes('leak-end'), `${listening}`)
    assert.equal(single(await collect(reader), 'memsentry.leak.slope'), 0)
    sentry.emit('leak', { metric: 'rss', slopeBytesPerSec: 99_999, sample: sentry.latest })
    assert.equal(single(await collect(reader), 'memsentry.leak.slope'), 0)
    episode = {
      since: 1,
      metric: 'rss',
      slopeBytesPerSec: 36_700,
      suspect: 'heap',
      msToLimit: null,
    }
    assert.equal(single(await collect(reader), 'memsentry.leak.slope'), 36_700)
    episode = null
    assert.equal(single(await collect(reader), 'memsentry.leak.slope'), 0)

    // After close() nothing is observed (the cumulative reader repeats its last value).
    otel.close()
    episode = {
      since: 1,
      metric: 'rss',
      slopeBytesPerSec: 99_999,
      suspect: 'heap',
      msToLimit: null,
    }
    assert.equal(single(await collect(reader), 'memsentry.leak.slope'), 0)
  } finally {
    delete sentry.leakEpisode
    otel.close()
    await provider.shutdown()
  }
})

test('null and absent figures are not observed; nothing before the first sample', async () => {
  // A stand-in for a sentry whose reads failed: the public shape, fields null or missing.
  const fake = new EventEmitter()
  let latest = null
  Object.defineProperty(fake, 'latest', { get: () => latest })
  const { provider, reader } = makeProvider()
  const otel = observe(fake, { meter: provider.getMeter('test') })
  try {
    let c = await collect(reader)
    // Without `options`, every instrument exists; only the leak slope (0) has a value.
    assert.deepEqual([...c.keys()], ['memsentry.leak.slope'])

    latest = {
      time: Date.now(),
      pid: process.pid,
      rss: 1000,
      vsz: null,
      swap: null,
      threads: 3,
      minorFaults: 5,
      majorFaults: null,
      cgroup: { version: 2, usage: 700, limit: null, workingSet: null },
      childrenRss: null,
    }
    c = await collect(reader)
    assert.equal(single(c, 'process.memory.usage'), 1000)
    assert.equal(single(c, 'process.thread.count'), 3)
    assert.equal(single(c, 'memsentry.cgroup.memory.usage'), 700)
    for (const name of [
      'process.memory.virtual',
      'memsentry.memory.swap',
      'memsentry.memory.pss',
      'memsentry.cgroup.memory.limit',
      'memsentry.cgroup.memory.working_set',
      'memsentry.children.memory.usage',
      'memsentry.tree.memory.usage',
    ]) {
      assert.equal(c.has(name), false, `${name} was exported: ${JSON.stringify(c.get(name))}`)
    }
    const faults = c.get('process.paging.faults').points
    assert.deepEqual(faults, [{ attributes: { 'process.paging.fault_type': 'minor' }, value: 5 }])
  } finally {
    otel.close()
    await provider.shutdown()
  }
})

test('the default meter is the global one; prefix renames memsentry.* only', async () => {
  await firstSample()
  const { provider, reader } = makeProvider()
  metrics.setGlobalMeterProvider(provider)
  const otel = observe(sentry, { prefix: 'app.mem' })
  try {
    const c = await collect(reader)
    assert.equal(single(c, 'process.memory.usage'), sentry.latest.rss)
    assert.equal(single(c, 'app.mem.memory.swap'), sentry.latest.swap)
    assert.equal(single(c, 'app.mem.leak.slope'), 0)
    assert.equal([...c.keys()].filter((n) => n.startsWith('memsentry.')).length, 0)
  } finally {
    otel.close()
    metrics.disable()
    await provider.shutdown()
  }
})

test('bad arguments throw, naming what is wrong', () => {
  assert.throws(() => observe(null), { name: 'TypeError', message: /MemorySentry/ })
  assert.throws(() => observe(sentry, { meter: {} }), { name: 'TypeError', message: /meter/ })
  assert.throws(() => observe(sentry, { prefix: 5 }), { name: 'TypeError', message: /prefix/ })
  assert.throws(() => observe(sentry, { prefix: '9 lives' }), {
    name: 'RangeError',
    message: /prefix.*got '9 lives'/,
  })
})
