// memsentry/prometheus: unit tests against a real prom-client Registry, then an end-to-end test in
// which a real Prometheus server (Debian package `prometheus`) scrapes a Koa app in this process.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { createRequire } from 'node:module'

import Koa from 'koa'
import Router from '@koa/router'
import client from 'prom-client'

import { MemorySentry } from '../index.js'
import { requirePrometheus, startPrometheus } from './helpers/prometheus-server.mjs'

const require = createRequire(import.meta.url)
const { collect } = require('../integrations/prometheus.js')

const HOUR_MS = 3_600_000

async function waitFor(what, check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

// A sentry whose first (immediate) tick is its only one within the test.
async function sentryWithOneTick(options = {}) {
  const sentry = new MemorySentry({ intervalMs: HOUR_MS, ...options })
  await waitFor('the first sample', () => sentry.latest !== null)
  return sentry
}

// { name -> [{ labels, value }] } from prom-client's JSON view.
async function scrapeJson(registry) {
  const out = {}
  for (const m of await registry.getMetricsAsJSON()) out[m.name] = m.values
  return out
}

function valueOf(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

// A stand-in with the public surface `collect` uses, for states a real sentry cannot be put in on
// demand (a failed read, a leak episode, a threshold going down).
class FakeSentry extends EventEmitter {
  states = []
  leakEpisode = null
  constructor(latest, options = {}) {
    super()
    this.latest = latest
    this.options = {
      intervalMs: 1000,
      children: 'none',
      thresholds: [],
      leak: { windowMs: 600_000, minSlope: 8738, warmupMs: 0, metric: 'rss' },
      smapsEveryN: 0,
      heap: false,
      ...options,
    }
  }

  thresholdStates() {
    return this.states
  }
}

const FULL_SAMPLE = {
  time: 1_700_000_000_000,
  pid: 1,
  rss: 100,
  vsz: 200,
  shared: 30,
  text: 40,
  data: 50,
  rssAnon: 60,
  rssFile: 30,
  rssShmem: 10,
  swap: 0,
  hwm: 120,
  memPercent: 12.5,
  threads: 7,
  minorFaults: 1000,
  majorFaults: 3,
  minorFaultsPerSec: 5,
  majorFaultsPerSec: 0,
  pss: 90,
  uss: 80,
  swapPss: 0,
  heapUsed: 11,
  heapTotal: 22,
  external: 33,
  arrayBuffers: 44,
  children: [{ pid: 2 }, { pid: 3 }],
  childrenRss: 500,
  treeRss: 600,
  cgroup: {
    version: 2,
    usage: 1000,
    limit: 8000,
    high: null,
    workingSet: 900,
    inactiveFile: 100,
    anon: 700,
    file: 300,
    oomEvents: 2,
    underOom: false,
    pressure: { someAvg10: 1.5, someAvg60: 0.5, fullAvg10: 0 },
  },
}

describe('memsentry/prometheus collect()', () => {
  it('exports the cached sample in base units; a scrape reads no procfs', async () => {
    const sentry = await sentryWithOneTick()
    try {
      const registry = new client.Registry()
      collect(sentry, { registry })
      const first = sentry.latest
      const ticks = sentry.stats().ticks
      const text = await registry.metrics()
      assert.equal(valueOf(text, 'memsentry_rss_bytes'), first.rss)
      assert.equal(valueOf(text, 'memsentry_vsz_bytes'), first.vsz)
      assert.equal(valueOf(text, 'memsentry_threads'), first.threads)
      assert.equal(valueOf(text, 'memsentry_minor_faults_total'), first.minorFaults)
      assert.equal(valueOf(text, 'memsentry_memory_ratio'), first.memPercent / 100)
      assert.equal(valueOf(text, 'memsentry_last_sample_timestamp_seconds'), first.time / 1000)
      assert.match(text, /# TYPE memsentry_minor_faults_total counter/)
      assert.match(text, /# TYPE memsentry_rss_bytes gauge/)
      assert.doesNotMatch(text, /\bNaN\b|\bNan\b/)

      // 100 scrapes later: no tick happened and every value is still the first sample's, so the
      // scrapes read the cached sample, not procfs (a fresh read would differ in time at least).
      for (let i = 0; i < 100; i++) {
        assert.equal(await registry.metrics(), text)
      }
      assert.equal(sentry.stats().ticks, ticks)
      assert.deepEqual(sentry.latest, first)
    } finally {
      await sentry.close()
    }
  })

  it('reads sentry.latest once per scrape, not once per metric', async () => {
    const real = await sentryWithOneTick()
    try {
      let reads = 0
      const counting = new FakeSentry(null, real.options)
      Object.defineProperty(counting, 'latest', {
        get() {
          reads++
          return real.latest
        },
      })
      const registry = new client.Registry()
      const { metrics } = collect(counting, { registry })
      assert.ok(Object.keys(metrics).length > 20)
      await registry.metrics()
      assert.equal(reads, 1)
      for (let i = 0; i < 10; i++) await registry.metrics()
      assert.equal(reads, 11)
      await registry.getMetricsAsJSON()
      assert.equal(reads, 12)
      // Scrapes started in the same synchronous turn share the read.
      await Promise.all([registry.metrics(), registry.metrics()])
      assert.equal(reads, 13)
    } finally {
      await real.close()
    }
  })

  it('exports every group present in the sample', async () => {
    const fake = new FakeSentry(FULL_SAMPLE, {
      smapsEveryN: 1,
      heap: true,
      children: 'tree',
    })
    const registry = new client.Registry()
    collect(fake, { registry })
    const text = await registry.metrics()
    const expected = {
      memsentry_rss_bytes: 100,
      memsentry_vsz_bytes: 200,
      memsentry_shared_bytes: 30,
      memsentry_text_bytes: 40,
      memsentry_data_bytes: 50,
      memsentry_rss_anon_bytes: 60,
      memsentry_rss_file_bytes: 30,
      memsentry_rss_shmem_bytes: 10,
      memsentry_swap_bytes: 0,
      memsentry_hwm_bytes: 120,
      memsentry_memory_ratio: 0.125,
      memsentry_threads: 7,
      memsentry_minor_faults_total: 1000,
      memsentry_major_faults_total: 3,
      memsentry_last_sample_timestamp_seconds: 1_700_000_000,
      memsentry_pss_bytes: 90,
      memsentry_uss_bytes: 80,
      memsentry_swap_pss_bytes: 0,
      memsentry_heap_used_bytes: 11,
      memsentry_heap_total_bytes: 22,
      memsentry_external_bytes: 33,
      memsentry_array_buffers_bytes: 44,
      memsentry_children: 2,
      memsentry_children_rss_bytes: 500,
      memsentry_tree_rss_bytes: 600,
      memsentry_cgroup_usage_bytes: 1000,
      memsentry_cgroup_limit_bytes: 8000,
      memsentry_cgroup_working_set_bytes: 900,
      memsentry_cgroup_inactive_file_bytes: 100,
      memsentry_cgroup_anon_bytes: 700,
      memsentry_cgroup_file_bytes: 300,
      memsentry_cgroup_oom_events_total: 2,
      memsentry_cgroup_under_oom: 0,
      memsentry_cgroup_pressure_some_avg10: 1.5,
      memsentry_cgroup_pressure_some_avg60: 0.5,
      memsentry_cgroup_pressure_full_avg10: 0,
      memsentry_leak_slope_bytes_per_second: 0,
      memsentry_leak_episode_active: 0,
    }
    for (const [name, value] of Object.entries(expected)) {
      assert.equal(valueOf(text, name), value, name)
    }
    assert.match(text, /# TYPE memsentry_cgroup_oom_events_total counter/)
    // Absent figures (high: null, no treePss) have no sample line.
    assert.equal(valueOf(text, 'memsentry_cgroup_high_bytes'), undefined)
    assert.equal(valueOf(text, 'memsentry_tree_pss_bytes'), undefined)
  })

  it('omits null and absent figures instead of exporting NaN or 0', async () => {
    const fake = new FakeSentry({ ...FULL_SAMPLE, rss: null, memPercent: null, cgroup: null })
    const registry = new client.Registry()
    collect(fake, { registry })
    const json = await scrapeJson(registry)
    assert.deepEqual(json.memsentry_rss_bytes, [])
    assert.deepEqual(json.memsentry_memory_ratio, [])
    assert.deepEqual(json.memsentry_cgroup_usage_bytes, [])
    assert.deepEqual(json.memsentry_cgroup_oom_events_total, [])
    assert.equal(json.memsentry_vsz_bytes[0].value, 200)
    // Groups the options cannot produce are not registered at all.
    assert.equal(json.memsentry_pss_bytes, undefined)
    assert.equal(json.memsentry_heap_used_bytes, undefined)
    assert.equal(json.memsentry_children, undefined)

    const text = await registry.metrics()
    assert.doesNotMatch(text, /NaN|Nan/)
    assert.equal(valueOf(text, 'memsentry_rss_bytes'), undefined)

    // Before the first sample: no values at all, and no error.
    fake.latest = null
    const empty = await scrapeJson(registry)
    assert.deepEqual(empty.memsentry_vsz_bytes, [])
  })

  it("flips memsentry_threshold_active to 1 on a real sentry's 'up' threshold", async () => {
    const sentry = new MemorySentry({
      intervalMs: HOUR_MS,
      thresholds: [
        { name: 'tiny', above: 1 },
        { name: 'huge', above: '1TiB' },
      ],
    })
    try {
      const registry = new client.Registry()
      // Synchronously after construction: the first tick's event has not been delivered yet.
      collect(sentry, { registry })
      const states = async () =>
        Object.fromEntries(
          (await scrapeJson(registry)).memsentry_threshold_active.map((v) => [
            v.labels.name,
            v.value,
          ]),
        )
      await waitFor('the threshold event', async () => (await states()).tiny === 1)
      assert.deepEqual(await states(), { tiny: 1, huge: 0 })
    } finally {
      await sentry.close()
    }
  })

  it('a threshold crossed before collect() reads 1 at the first scrape', async () => {
    const sentry = new MemorySentry({
      intervalMs: HOUR_MS,
      thresholds: [
        { name: 'tiny', above: 1 },
        { name: 'huge', above: '1TiB' },
      ],
    })
    try {
      // The 'up' event has been delivered before anything is collected (polled: the sentry
      // does not hold the event loop open).
      let crossed = false
      sentry.once('threshold', () => (crossed = true))
      await waitFor("the 'up' event", () => crossed)
      const registry = new client.Registry()
      collect(sentry, { registry })
      const json = await scrapeJson(registry)
      const states = Object.fromEntries(
        json.memsentry_threshold_active.map((v) => [v.labels.name, v.value]),
      )
      assert.deepEqual(states, { tiny: 1, huge: 0 })
    } finally {
      await sentry.close()
    }
  })

  it("a 'child.rss' rule exports one series per watched child, labelled with its pid", async () => {
    const child = spawn('sleep', ['30'])
    const sentry = new MemorySentry({
      intervalMs: 50,
      children: 'direct',
      thresholds: [
        { name: 'kid', metric: 'child.rss', above: 1 },
        { name: 'own', above: '1TiB' },
      ],
    })
    try {
      const registry = new client.Registry()
      collect(sentry, { registry })
      const series = async () => (await scrapeJson(registry)).memsentry_threshold_active
      const kid = await waitFor('the child in the states', async () =>
        (await series()).find((v) => v.labels.name === 'kid' && v.labels.pid === child.pid),
      )
      assert.equal(kid.value, 1)
      const own = (await series()).find((v) => v.labels.name === 'own')
      assert.deepEqual([own.labels, own.value], [{ name: 'own' }, 0])
      assert.match(
        await registry.metrics(),
        new RegExp(`memsentry_threshold_active\\{name="kid",pid="${child.pid}"\\} 1`),
      )
    } finally {
      child.kill()
      await sentry.close()
    }
  })

  it('reads the threshold states and the leak episode at scrape time, listening to nothing', async () => {
    const fake = new FakeSentry(FULL_SAMPLE, {
      thresholds: [{ name: 'warn', metric: 'rss', above: 50, hysteresis: 1 }],
    })
    fake.states = [{ name: 'warn', metric: 'rss', active: false, value: 10 }]
    const registry = new client.Registry()
    collect(fake, { registry })
    assert.deepEqual(fake.eventNames(), [])
    const get = async (name) => (await scrapeJson(registry))[name]

    const [warn] = await get('memsentry_threshold_active')
    assert.deepEqual([warn.labels, warn.value], [{ name: 'warn' }, 0])
    fake.states = [{ name: 'warn', metric: 'rss', active: true, value: 100 }]
    assert.equal((await get('memsentry_threshold_active'))[0].value, 1)
    fake.states = [{ name: 'warn', metric: 'rss', active: false, value: 10 }]
    assert.equal((await get('memsentry_threshold_active'))[0].value, 0)

    assert.equal((await get('memsentry_leak_episode_active'))[0].value, 0)
    assert.deepEqual(await get('memsentry_leak_seconds_to_limit'), [])
    fake.leakEpisode = {
      since: 1,
      metric: 'rss',
      slopeBytesPerSec: 36_700.5,
      suspect: 'heap',
      msToLimit: 90_500,
    }
    assert.equal((await get('memsentry_leak_slope_bytes_per_second'))[0].value, 36_700.5)
    assert.equal((await get('memsentry_leak_episode_active'))[0].value, 1)
    assert.equal((await get('memsentry_leak_seconds_to_limit'))[0].value, 90.5)
    fake.leakEpisode = { ...fake.leakEpisode, msToLimit: null }
    assert.deepEqual(await get('memsentry_leak_seconds_to_limit'), [], 'no limit: no series')
    fake.leakEpisode = null
    assert.equal((await get('memsentry_leak_slope_bytes_per_second'))[0].value, 0)
    assert.equal((await get('memsentry_leak_episode_active'))[0].value, 0)
  })

  it('has no leak gauge when leak detection is off', async () => {
    const registry = new client.Registry()
    collect(new FakeSentry(FULL_SAMPLE, { leak: null }), { registry })
    for (const name of [
      'memsentry_leak_slope_bytes_per_second',
      'memsentry_leak_episode_active',
      'memsentry_leak_seconds_to_limit',
    ]) {
      assert.equal(registry.getSingleMetric(name), undefined, name)
    }
  })

  it('replaces an earlier collect on the same registry; close() unregisters', async () => {
    const a = new FakeSentry({ ...FULL_SAMPLE, rss: 1 }, { thresholds: [{ name: 'w' }] })
    const b = new FakeSentry({ ...FULL_SAMPLE, rss: 2 }, { thresholds: [{ name: 'w' }] })
    const registry = new client.Registry()
    const first = collect(a, { registry })

    const second = collect(b, { registry }) // no duplicate-registration error
    assert.equal(valueOf(await registry.metrics(), 'memsentry_rss_bytes'), 2)
    first.close() // a no-op now: must not unregister the second collection's metrics
    assert.equal(valueOf(await registry.metrics(), 'memsentry_rss_bytes'), 2)

    // Another prefix is another collection, side by side.
    const third = collect(a, { registry, prefix: 'other_' })
    const text = await registry.metrics()
    assert.equal(valueOf(text, 'other_rss_bytes'), 1)
    assert.equal(valueOf(text, 'memsentry_rss_bytes'), 2)

    second.close()
    third.close()
    assert.equal(await registry.metrics(), '\n')
  })

  it('refuses to clobber a metric it did not register', () => {
    const registry = new client.Registry()
    new client.Gauge({ name: 'memsentry_rss_bytes', help: 'mine', registers: [registry] })
    assert.throws(() => collect(new FakeSentry(FULL_SAMPLE), { registry }), /memsentry_rss_bytes/)
    // Nothing was half-registered.
    assert.equal(registry.getMetricsAsArray().length, 1)
  })

  it("defaults to prom-client's global register", async () => {
    const handle = collect(new FakeSentry(FULL_SAMPLE))
    try {
      assert.equal(handle.registry, client.register)
      assert.equal(valueOf(await client.register.metrics(), 'memsentry_rss_bytes'), 100)
    } finally {
      handle.close()
    }
    assert.equal(client.register.getSingleMetric('memsentry_rss_bytes'), undefined)
  })

  it('scrapes counters correctly in the OpenMetrics format', async () => {
    const registry = new client.Registry(client.Registry.OPENMETRICS_CONTENT_TYPE)
    const handle = collect(new FakeSentry(FULL_SAMPLE), { registry })
    const text = await registry.metrics()
    assert.match(text, /^# TYPE memsentry_minor_faults counter$/m)
    assert.match(text, /^memsentry_minor_faults_total 1000$/m)
    assert.match(text, /# EOF\n$/)
    handle.close()
    assert.equal(registry.getMetricsAsArray().length, 0)
  })

  it('validates its arguments', () => {
    assert.throws(() => collect(null), TypeError)
    assert.throws(() => collect(new FakeSentry(null), { registry: {} }), TypeError)
    assert.throws(() => collect(new FakeSentry(null), { prefix: 'bad-prefix' }), {
      name: 'RangeError',
      message: /options\.prefix must be a metric name prefix .*got 'bad-prefix'/,
    })
    assert.throws(() => collect(new FakeSentry(null), { prefix: 3 }), {
      name: 'TypeError',
      message: /options\.prefix must be a string, got number 3/,
    })
  })
})

// ---- a real Prometheus server scraping a Koa app in this process ----

describe('memsentry/prometheus scraped by a real Prometheus server', () => {
  const state = { prom: null, server: null, sentry: null }

  before(async () => {
    // Not a skip: CI installs it, and a silently skipped end-to-end test is a missing one.
    requirePrometheus()
    state.sentry = new MemorySentry({ intervalMs: 1000 })
    const registry = new client.Registry()
    collect(state.sentry, { registry })

    const app = new Koa()
    const router = new Router()
    router.get('/metrics', async (ctx) => {
      ctx.set('Content-Type', registry.contentType)
      ctx.body = await registry.metrics()
    })
    app.use(router.routes()).use(router.allowedMethods())
    state.server = app.listen(0, '127.0.0.1')
    await once(state.server, 'listening')
    const target = `127.0.0.1:${state.server.address().port}`
    state.prom = await startPrometheus([{ name: 'memsentry', targets: [target] }])
  })

  after(async () => {
    await state.prom?.stop()
    if (state.server) await new Promise((resolve) => state.server.close(resolve))
    await state.sentry?.close()
  })

  it('memsentry_rss_bytes reaches Prometheus within 10% of sentry.latest.rss', async () => {
    const deadline = Date.now() + 60_000
    let result
    while (Date.now() < deadline) {
      const found = await state.prom.query('memsentry_rss_bytes')
      if (found.length > 0) {
        result = found
        break
      }
      await sleep(250)
    }
    if (result === undefined) {
      const targets = await state.prom.targets()
      assert.fail(
        `no memsentry_rss_bytes in Prometheus after 60 s; targets: ${targets.join('; ')}\n` +
          state.prom.log(),
      )
    }
    assert.equal(result.length, 1)
    assert.equal(result[0].metric.job, 'memsentry')
    const scraped = Number(result[0].value[1])
    const own = state.sentry.latest.rss
    assert.ok(
      Math.abs(scraped - own) <= own * 0.1,
      `Prometheus has ${scraped}, the process's own sentry.latest.rss is ${own}`,
    )
  })
})
