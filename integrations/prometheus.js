'use strict'

// memsentry/prometheus: exports a sentry's figures as prom-client metrics.
//
//   const { MemorySentry } = require('memsentry')
//   const { collect } = require('memsentry/prometheus')
//   const sentry = new MemorySentry({ intervalMs: 1000 })
//   const metrics = collect(sentry)            // into prom-client's global `register`
//   // ... later: metrics.close()
//
// Built on memsentry's public API only. prom-client is a peer dependency.
//
// What a scrape costs: nothing is read from procfs or the cgroup fs during a scrape. Every metric
// reads the CACHED newest sample (`sentry.latest`), and that getter is called once per scrape, not
// once per metric: the first metric asked for its value in a synchronous turn reads it, the others
// reuse it, and the cache is dropped in the next microtask. prom-client's `registry.metrics()` asks
// every metric for its value in one synchronous loop, so a scrape is one read.
//
// Exported (names shown with the default prefix 'memsentry_'; all in base units, bytes and seconds):
//
//   memsentry_rss_bytes, _vsz_bytes, _shared_bytes, _text_bytes, _data_bytes, _rss_anon_bytes,
//   _rss_file_bytes, _rss_shmem_bytes, _swap_bytes, _hwm_bytes (peak RSS)
//   memsentry_memory_ratio            resident memory as a ratio of MemTotal, 0..1 (the Sample's
//                                     `memPercent` / 100; Prometheus convention is ratios, not
//                                     percents: multiply by 100 in the dashboard)
//   memsentry_threads
//   memsentry_minor_faults_total, memsentry_major_faults_total
//                                     counters (TYPE counter): the kernel's cumulative fault counts,
//                                     so rate() works; the per-second rates of the Sample are not
//                                     exported, Prometheus computes them from the counters
//   memsentry_last_sample_timestamp_seconds
//                                     when the exported sample was taken (epoch seconds): alert on
//                                     `time() - memsentry_last_sample_timestamp_seconds` to catch a
//                                     stopped sampler
//   memsentry_pss_bytes, _uss_bytes, _swap_pss_bytes                 with `smaps` on
//   memsentry_heap_used_bytes, _heap_total_bytes, _external_bytes, _array_buffers_bytes
//                                                                    with `heap: true`
//   memsentry_children, _children_rss_bytes, _tree_rss_bytes        with `children` not 'none'
//   memsentry_tree_pss_bytes                                         with children and smaps
//   memsentry_cgroup_usage_bytes, _limit_bytes, _high_bytes, _working_set_bytes,
//   _inactive_file_bytes, _anon_bytes, _file_bytes, _oom_events_total (counter),
//   _under_oom (0/1), _pressure_some_avg10, _pressure_some_avg60, _pressure_full_avg10 (memory
//   pressure stall, percent of wall time as the kernel reports it)      when the cgroup is read
//   memsentry_leak_slope_bytes_per_second
//                                     slope of the leak episode in progress, 0 when none; only with
//                                     leak detection on
//   memsentry_leak_episode_active     1 while a leak episode is in progress (between its 'leak' and
//                                     'leak-end' events), else 0; only with leak detection on
//   memsentry_leak_seconds_to_limit   at the episode's slope, seconds until the leak metric reaches
//                                     the memory limit (for a heap leak, or the heap V8's heap
//                                     limit, if sooner); only during an episode with a memory
//                                     limit, or a heap leak
//   memsentry_threshold_active{name="..."}
//                                     1 between a threshold's 'up' and 'down' events, else 0; one
//                                     series per configured threshold, and for a 'child.rss' rule
//                                     one per watched child instead: {name="...",pid="..."}
//
// A figure that is null or absent in the sample (a failed read, a group that is off, no cgroup
// limit) is left out of the scrape: never exported as NaN or 0. Metric families that the sentry's
// options can never fill (smaps, heap, children) are not registered at all.
//
// Calling `collect` again on the same registry with the same prefix REPLACES the earlier
// collection: its metrics are unregistered and its listeners removed (its `close()` becomes a
// no-op), then the new ones are registered; no duplicate-registration error. To export two sentries
// into one registry, give them different prefixes. A metric of the same name registered by someone
// else is a real conflict and throws.
//
// The leak and threshold series are the core's state read at scrape time
// (`sentry.leakEpisode`, `sentry.thresholdStates()`), not rebuilt from events: a threshold that
// went up before `collect` was called reads 1 at the first scrape.

const promClient = require('prom-client')
const { rangeError, readOptions, typeError } = require('../lib/validation')
const { METRICS } = require('../lib/metrics')

const { Gauge, Counter } = promClient

// Marks metrics this module made, across copies of it, so a second `collect` can replace them.
const OWNED = Symbol.for('memsentry.prometheus')

// registry -> Map(prefix -> live collection): what a second `collect` replaces.
const live = new WeakMap()

const PREFIX_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/

const NO_VALUES = Object.freeze([])
// prom-client's text formatter memoizes the formatting of a value's `sharedLabels` in a WeakMap
// keyed on that object, and defaults it to a fresh `{}` per value per scrape: a miss, a WeakMap
// insertion and garbage every time. One frozen empty object (the same meaning) always hits.
const NO_LABELS = Object.freeze({})

function toValue(v) {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null
  if (typeof v === 'boolean') return v ? 1 : 0
  return null
}

// prom-client Gauges and Counters whose values are read at scrape time. They override `get()`
// (what registries call) instead of using `collect()` + `set()`: a plain Gauge cannot be left
// without a value (an absent figure would scrape as 0) and a Counter cannot be set to the kernel's
// cumulative count.
function readAtScrape(Base) {
  return class extends Base {
    #values
    constructor(config, values) {
      super({ ...config, registers: [] })
      this.#values = values
      this[OWNED] = true
    }

    async get() {
      return {
        help: this.help,
        name: this.name,
        type: this.type,
        values: this.#values(),
        aggregator: this.aggregator,
      }
    }
  }
}

const ScrapedGauge = readAtScrape(Gauge)
const ScrapedCounter = readAtScrape(Counter)

// `read()` once per synchronous turn (a scrape asks every metric in one loop), then cached until
// the next microtask; null when it throws (a closed sentry: nothing to export).
function perScrape(read) {
  let cached
  const forget = () => {
    cached = undefined
  }
  return () => {
    if (cached === undefined) {
      try {
        cached = read() ?? null
      } catch {
        cached = null
      }
      queueMicrotask(forget)
    }
    return cached
  }
}

// The values of an unlabelled metric: one, or none when the figure is absent.
function single(read) {
  return () => {
    const v = toValue(read())
    return v === null ? NO_VALUES : [{ value: v, labels: NO_LABELS, sharedLabels: NO_LABELS }]
  }
}

/**
 * Registers prom-client metrics for `sentry`'s figures, read from its cached newest sample at
 * scrape time.
 *
 * @param {import('memsentry').MemorySentry} sentry
 * @param {{ registry?: import('prom-client').Registry, prefix?: string }} [options]
 * @returns {{ registry: import('prom-client').Registry, metrics: Record<string, import('prom-client').Metric>, close(): void }}
 */
function collect(sentry, collectOptions) {
  const { registry = promClient.register, prefix = 'memsentry_' } = readOptions(
    collectOptions,
    ['registry', 'prefix'],
    'memsentry/prometheus',
  )
  if (sentry == null || typeof sentry.on !== 'function' || !('latest' in sentry)) {
    throw new TypeError('memsentry/prometheus: collect(sentry) needs a MemorySentry')
  }
  if (registry == null || typeof registry.registerMetric !== 'function') {
    throw new TypeError('memsentry/prometheus: options.registry must be a prom-client Registry')
  }
  if (typeof prefix !== 'string') {
    throw typeError('options.prefix', 'a string', prefix, 'memsentry/prometheus')
  }
  if (prefix !== '' && !PREFIX_RE.test(prefix)) {
    const expected = 'a metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)'
    throw rangeError('options.prefix', expected, prefix, 'memsentry/prometheus')
  }

  const options = sentry.options

  // One read of each per scrape: cached for the current synchronous turn.
  const sample = perScrape(() => sentry.latest)
  const episode = perScrape(() => sentry.leakEpisode)
  const thresholdStates = perScrape(() => sentry.thresholdStates())

  const metrics = {}
  const add = (metric) => {
    metrics[metric.name] = metric
  }
  // The metric table's exported rows, for the groups the options can fill. Whether the cgroup
  // can be read is known only at run time: its rows are always registered, empty without one.
  const on = {
    smaps: options.smapsEveryN > 0,
    heap: Boolean(options.heap),
    children: options.children !== 'none',
    cgroup: true,
  }
  for (const m of METRICS) {
    const p = m.prometheus
    if (p === null || !m.needs.every((need) => on[need])) continue
    const Base = p.kind === 'counter' ? ScrapedCounter : ScrapedGauge
    const value = () => {
      const s = sample()
      return s == null ? null : p.read(s)
    }
    add(
      new Base({ name: prefix + p.suffix, help: p.help, aggregator: p.aggregator }, single(value)),
    )
  }

  // The leak episode in progress, as the core has it now.
  const leakOn = options.leak != null && options.leak !== false
  if (leakOn) {
    const gauge = (suffix, help, aggregator, read) =>
      add(new ScrapedGauge({ name: prefix + suffix, help, aggregator }, single(read)))
    gauge(
      'leak_slope_bytes_per_second',
      'Growth rate of the leak episode in progress, bytes per second; 0 when none.',
      'max',
      () => episode()?.slopeBytesPerSec ?? 0,
    )
    gauge(
      'leak_episode_active',
      "1 while a leak episode is in progress (between 'leak' and 'leak-end'), else 0.",
      'max',
      () => episode() != null,
    )
    gauge(
      'leak_seconds_to_limit',
      "At the leak episode slope, seconds until the memory limit (or, for a heap leak, V8's heap limit, if sooner); absent without an episode, or without a memory limit unless the heap leaks.",
      'min',
      () => {
        const ms = episode()?.msToLimit
        return typeof ms === 'number' ? ms / 1000 : null
      },
    )
  }

  // Threshold states, as the core has them now: one series per rule in option order, one per
  // watched child for a 'child.rss' rule.
  if ((options.thresholds ?? []).length > 0) {
    const config = {
      name: `${prefix}threshold_active`,
      help: "1 while a threshold is crossed (between its 'up' and 'down' events), else 0.",
      labelNames: ['name', 'pid'],
      aggregator: 'max',
    }
    // Fresh objects: a registry with default labels rewrites the values' labels in place.
    const values = () =>
      (thresholdStates() ?? []).map((t) => ({
        value: t.active ? 1 : 0,
        labels: t.pid === undefined ? { name: t.name } : { name: t.name, pid: t.pid },
        sharedLabels: NO_LABELS,
      }))
    add(new ScrapedGauge(config, values))
  }

  // Replace an earlier collection of ours on this registry and prefix; refuse to clobber others'.
  let byPrefix = live.get(registry)
  if (byPrefix === undefined) {
    byPrefix = new Map()
    live.set(registry, byPrefix)
  }
  for (const name of Object.keys(metrics)) {
    const existing = registry.getSingleMetric?.(name)
    if (existing !== undefined && !existing[OWNED]) {
      throw new Error(
        `memsentry/prometheus: the registry already has a metric named ${name} that memsentry did not register; pass another prefix`,
      )
    }
  }
  byPrefix.get(prefix)?.close()
  for (const [name, metric] of Object.entries(metrics)) {
    // An earlier collection under another prefix may own this name only if prefixes overlap;
    // drop it so registration cannot throw.
    if (registry.getSingleMetric?.(name)) registry.removeSingleMetric(name)
    registry.registerMetric(metric)
  }

  let closed = false
  const handle = {
    registry,
    metrics,
    close() {
      if (closed) return
      closed = true
      for (const [name, metric] of Object.entries(metrics)) {
        // Registered under `name`; prom-client may have renamed a counter for OpenMetrics.
        if (registry.getSingleMetric?.(name) === metric) registry.removeSingleMetric(name)
      }
      if (byPrefix.get(prefix) === handle) byPrefix.delete(prefix)
    },
  }
  byPrefix.set(prefix, handle)
  return handle
}

module.exports = { collect }
