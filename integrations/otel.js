'use strict'

// memsentry/otel: reports a sentry's figures through an OpenTelemetry Meter.
//
//   const { MemorySentry } = require('memsentry')
//   const { observe } = require('memsentry/otel')
//   const sentry = new MemorySentry({ intervalMs: 1000 })
//   const otel = observe(sentry)       // or observe(sentry, { meter: provider.getMeter('app') })
//   // ... later: otel.close()
//
// Built on memsentry's public API only. @opentelemetry/api is a peer dependency; the SDK (or
// whatever implements the API) is the user's.
//
// Instruments (observable, all in base units):
//
//   process.memory.usage              UpDownCounter  By        rss
//   process.memory.virtual            UpDownCounter  By        vsz
//   process.paging.faults             Counter        {fault}   minorFaults, majorFaults, with the
//                                                              attribute process.paging.fault_type
//                                                              = 'minor' | 'major' (cumulative)
//   process.thread.count              UpDownCounter  {thread}  threads
//   memsentry.memory.pss              Gauge          By        pss (with `smaps`)
//   memsentry.memory.swap             Gauge          By        swap
//   memsentry.cgroup.memory.usage     Gauge          By        cgroup.usage
//   memsentry.cgroup.memory.limit     Gauge          By        cgroup.limit (none when unlimited)
//   memsentry.cgroup.memory.working_set  Gauge       By        cgroup.workingSet
//   memsentry.children.memory.usage   Gauge          By        childrenRss (with `children`)
//   memsentry.tree.memory.usage       Gauge          By        treeRss (with `children`)
//   memsentry.leak.slope              Gauge          By/s      slope of the leak episode in progress
//                                                              (`sentry.leakEpisode`), 0 when none;
//                                                              with leak detection on
//
// The process.* names and instrument kinds are those of OpenTelemetry's semantic conventions for
// OS process metrics (UpDownCounter for the additive sizes and thread count, Counter for the
// cumulative fault counts), so dashboards made for other runtimes' process metrics work. The
// other names start with `prefix` (default 'memsentry').
//
// What a collection costs: one batch observable callback serves every instrument, and it reads
// the sentry's CACHED newest sample (`sentry.latest`) once: nothing is read from procfs or the
// cgroup fs during a collection. A figure that is null or absent in that sample (a failed read, a
// group the options turn off, no cgroup limit) is not observed: no data point rather than 0 or NaN.
// Instruments for groups the sentry's options can never fill (smaps, children, leak) are not
// created. Before the sentry's first sample, nothing is observed.

const api = require('@opentelemetry/api')
const { readOptions, typeError } = require('../lib/validation')

const FAULT_TYPE = 'process.paging.fault_type'
const MINOR = Object.freeze({ [FAULT_TYPE]: 'minor' })
const MAJOR = Object.freeze({ [FAULT_TYPE]: 'major' })

// OpenTelemetry's instrument name syntax (the API spec allows 255 characters).
const NAME_RE = /^[A-Za-z][-_./A-Za-z0-9]*$/
const MAX_NAME = 255

let version
function packageVersion() {
  if (version === undefined) {
    try {
      version = require('../package.json').version
    } catch {
      version = ''
    }
  }
  return version || undefined
}

function isFiniteNumber(v) {
  return typeof v === 'number' && Number.isFinite(v)
}

/**
 * Registers observable instruments for `sentry`'s figures on `meter` (default
 * `metrics.getMeter('memsentry')` of @opentelemetry/api). Returns `{ close() }`, which removes the
 * callback; the instruments stay in the meter but are no longer observed.
 *
 * @param {import('../index').MemorySentry} sentry
 * @param {{ meter?: import('@opentelemetry/api').Meter, prefix?: string }} [options]
 * @returns {{ close(): void }}
 */
function observe(sentry, rawOptions) {
  if (sentry == null || typeof sentry !== 'object' || typeof sentry.on !== 'function') {
    throw new TypeError('memsentry/otel: observe(sentry) needs a MemorySentry')
  }
  const options = readOptions(rawOptions, ['meter', 'prefix'], 'memsentry/otel')
  const meter = options.meter ?? api.metrics.getMeter('memsentry', packageVersion())
  if (
    typeof meter?.addBatchObservableCallback !== 'function' ||
    typeof meter?.createObservableGauge !== 'function'
  ) {
    throw new TypeError('memsentry/otel: options.meter must be an OpenTelemetry Meter')
  }
  let prefix = options.prefix ?? 'memsentry'
  if (typeof prefix !== 'string') {
    throw typeError('options.prefix', 'a string', prefix, 'memsentry/otel')
  }
  prefix = prefix.replace(/\.+$/, '')
  const longest = `${prefix}.cgroup.memory.working_set`
  if (!NAME_RE.test(prefix) || longest.length > MAX_NAME) {
    throw new RangeError(
      `memsentry/otel: options.prefix must start with a letter and hold only letters, digits, ` +
        `'_', '-', '.' and '/', got '${prefix}'`,
    )
  }

  // What the sentry's options can fill. A sentry without `options` (not a MemorySentry of this
  // version) gets every instrument; absent figures are simply not observed.
  let settings = null
  try {
    settings = sentry.options ?? null
  } catch {
    settings = null
  }
  const smapsOn = settings == null || settings.smapsEveryN > 0
  const childrenOn = settings == null || settings.children !== 'none'
  const leakOn = settings == null || (settings.leak != null && settings.leak !== false)

  // [instrument, read(sample) -> number | null | undefined]
  const gauges = []
  const upDown = (name, unit, description, read) =>
    gauges.push([meter.createObservableUpDownCounter(name, { unit, description }), read])
  const gauge = (name, unit, description, read) =>
    gauges.push([meter.createObservableGauge(`${prefix}.${name}`, { unit, description }), read])

  upDown('process.memory.usage', 'By', 'The amount of physical memory in use (RSS).', (s) => s.rss)
  upDown('process.memory.virtual', 'By', 'The amount of virtual memory (VSZ).', (s) => s.vsz)
  upDown('process.thread.count', '{thread}', 'Process threads count.', (s) => s.threads)
  const faults = meter.createObservableCounter('process.paging.faults', {
    unit: '{fault}',
    description: 'Number of page faults the process has made.',
  })
  if (smapsOn) {
    gauge(
      'memory.pss',
      'By',
      'Proportional set size: shared pages split (smaps_rollup).',
      (s) => s.pss,
    )
  }
  gauge('memory.swap', 'By', 'Swapped-out memory of the process (VmSwap).', (s) => s.swap)
  gauge('cgroup.memory.usage', 'By', "The memory cgroup's usage.", (s) => s.cgroup?.usage)
  gauge('cgroup.memory.limit', 'By', "The memory cgroup's limit.", (s) => s.cgroup?.limit)
  gauge(
    'cgroup.memory.working_set',
    'By',
    "The memory cgroup's working set: usage minus inactive file pages.",
    (s) => s.cgroup?.workingSet,
  )
  if (childrenOn) {
    gauge('children.memory.usage', 'By', 'RSS of the child processes.', (s) => s.childrenRss)
    gauge('tree.memory.usage', 'By', 'RSS of the process and its children.', (s) => s.treeRss)
  }

  let leakGauge = null
  if (leakOn) {
    leakGauge = meter.createObservableGauge(`${prefix}.leak.slope`, {
      unit: 'By/s',
      description: 'Growth rate of the leak episode in progress; 0 when none.',
    })
  }
  // The core's episode at collection time, not one rebuilt from events.
  const leakSlope = () => {
    let slope
    try {
      slope = sentry.leakEpisode?.slopeBytesPerSec
    } catch {
      slope = undefined
    }
    return isFiniteNumber(slope) ? slope : 0
  }

  const observables = gauges.map(([instrument]) => instrument)
  observables.push(faults)
  if (leakGauge) observables.push(leakGauge)

  // One read of the cached sample per collection, whatever the number of instruments.
  const callback = (result) => {
    let sample
    try {
      sample = sentry.latest
    } catch {
      sample = null
    }
    if (leakGauge) result.observe(leakGauge, leakSlope())
    if (sample == null) return
    for (const [instrument, read] of gauges) {
      const value = read(sample)
      if (isFiniteNumber(value)) result.observe(instrument, value)
    }
    if (isFiniteNumber(sample.minorFaults)) result.observe(faults, sample.minorFaults, MINOR)
    if (isFiniteNumber(sample.majorFaults)) result.observe(faults, sample.majorFaults, MAJOR)
  }
  meter.addBatchObservableCallback(callback, observables)

  let closed = false
  return {
    close() {
      if (closed) return
      closed = true
      meter.removeBatchObservableCallback(callback, observables)
    },
  }
}

module.exports = { observe }
