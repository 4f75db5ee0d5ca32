// The metric table (lib/metrics.js) is the one place a metric's name, unit, source and needed
// options are written: everything else that names metrics must agree with it.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import client from 'prom-client'

const require = createRequire(import.meta.url)
const { METRICS, WATCHABLE, CHILD_RSS } = require('../lib/metrics.js')
const { BYTE_METRICS, normalizeOptions } = require('../lib/options.js')
const native = require('../lib/native.js')
const { MemorySentry } = require('../index.js')
const { collect } = require('../integrations/prometheus.js')

const watched = METRICS.filter((m) => m.watch).map((m) => m.name)
const sorted = (list) => [...list].sort()

test('the native core samples exactly the watchable metrics (Rust Metric::ALL)', () => {
  assert.deepEqual(sorted(native.metricNames()), sorted(watched))
})

test("index.d.ts's ByteMetric union is the watchable metrics", () => {
  const dts = fs.readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')
  const union = /export type ByteMetric =([^]*?)\n\n/.exec(dts)
  assert.ok(union, 'no ByteMetric union in index.d.ts')
  const names = [...union[1].matchAll(/\|\s*'([^']+)'/g)].map((m) => m[1])
  assert.deepEqual(sorted(names), sorted(watched))
})

test('options accept the watchable metrics and each only with the options it needs', () => {
  assert.deepEqual(BYTE_METRICS, WATCHABLE)
  const all = { smaps: true, heap: true, cgroup: true, children: 'tree' }
  const off = { smaps: false, heap: false, cgroup: false, children: 'none' }
  for (const name of WATCHABLE) {
    const needs = name === CHILD_RSS ? ['children'] : METRICS.find((m) => m.name === name).needs
    const threshold = (opts) =>
      normalizeOptions({ ...opts, thresholds: [{ metric: name, above: 1 }] })
    assert.doesNotThrow(() => threshold(all), name)
    for (const need of needs) {
      const without = { ...all, [need]: off[need] }
      assert.throws(() => threshold(without), { name: 'RangeError', message: /needs/ }, name)
    }
    if (needs.length === 0) assert.doesNotThrow(() => threshold(off), name)
  }
})

test('a Sample has no figure the table does not know, and the table reads every figure', async (t) => {
  const sentry = new MemorySentry({ intervalMs: 50, smaps: true, heap: true, children: 'tree' })
  t.after(() => sentry.close())
  const deadline = Date.now() + 10_000
  while (sentry.latest === null && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10))
  const sample = sentry.latest
  assert.ok(sample, 'no sample')
  // Structure rather than figures: the groups the table reads into.
  const structure = new Set(['pid', 'children', 'cgroup'])
  const names = new Set(METRICS.map((m) => m.name))
  const unknown = Object.keys(sample).filter((k) => !names.has(k) && !structure.has(k))
  assert.deepEqual(unknown, [])
  for (const m of METRICS) {
    const v = m.read(sample)
    assert.ok(v === undefined || v === null || ['number', 'boolean'].includes(typeof v), m.name)
  }
  for (const key of Object.keys(sample)) {
    if (structure.has(key)) continue
    assert.equal(METRICS.find((m) => m.name === key).read(sample), sample[key], key)
  }
})

test('Prometheus exports every exported row of the table, and only those besides its state series', async () => {
  const sentry = new MemorySentry({ intervalMs: 3_600_000, smaps: true, heap: true })
  after(() => sentry.close())
  const registry = new client.Registry()
  collect(sentry, { registry })
  const exported = (await registry.getMetricsAsJSON()).map((m) => m.name)
  const fromTable = METRICS.filter((m) => m.prometheus).map(
    (m) => `memsentry_${m.prometheus.suffix}`,
  )
  const state = ['leak_slope_bytes_per_second', 'leak_episode_active', 'leak_seconds_to_limit']
  assert.deepEqual(sorted(exported), sorted([...fromTable, ...state.map((s) => `memsentry_${s}`)]))
  for (const m of METRICS.filter((m) => m.prometheus?.kind === 'counter')) {
    assert.equal(registry.getSingleMetric(`memsentry_${m.prometheus.suffix}`).type, 'counter')
  }
})
