'use strict'

// Validation and normalization of the options given to `new MemorySentry(options)` and
// `snapshot(options)`.
//
// Everything the user can get wrong is caught here, in JavaScript, so the native side receives a
// plain, fully-defaulted object with numbers in bytes, bytes per second and milliseconds, and
// never has to report option errors itself.
//
// Error conventions (relied upon by the tests and the docs):
//   - every message starts with 'memsentry: ', names the option path (e.g. `thresholds[1].above`)
//     and shows the value that was received;
//   - a value of the wrong type is a TypeError (`got string '1000'`, `got boolean true`);
//   - a value of the right type that is out of range, not an integer, NaN/Infinity, an unknown
//     enum string or an unparsable string is a RangeError (`got -5`, `got '12 parsecs'`);
//   - unknown keys are TypeErrors at every level, with a "did you mean" hint when one is close.
//
// Only own properties are read, so keys inherited from a prototype (or a polluted
// Object.prototype) are never picked up as options. `undefined` always means "use the default";
// `null` is accepted only where it has a meaning (the options object itself, `leak`, `cgroupRoot`,
// `leak.report`, `leak.diagnose`, `heapSnapshot`: off) or where the types say "unset or null"
// (`leak.minSlope`, `leak.warmupMs`: the default).

const { WATCHABLE, CHILD_RSS, needsOf } = require('./metrics')
const { NUMBER_SOURCE, sizeStringToBytes } = require('./sizes')

const PREFIX = 'memsentry: '

const MIB = 1024 * 1024

const MAX_INTERVAL_MS = 3_600_000
const MAX_DAY_MS = 86_400_000

// Metrics whose values are byte counts; thresholds and the leak detector accept only these. Each
// may need other options on (./metrics.js): without them the metric would never have a value,
// so a threshold or leak detector on it would silently never fire.
const BYTE_METRICS = WATCHABLE

const CHILDREN_MODES = Object.freeze(['none', 'direct', 'tree'])

const TOP_LEVEL_KEYS = Object.freeze([
  'intervalMs',
  'historySize',
  'children',
  'thresholds',
  'leak',
  'smaps',
  'heap',
  'limit',
  'procRoot',
  'cgroupRoot',
  'heapSnapshot',
  'cgroup',
])
const HEAP_SNAPSHOT_KEYS = Object.freeze(['dir', 'maxCount'])
const THRESHOLD_KEYS = Object.freeze(['name', 'metric', 'above', 'hysteresis'])
const LEAK_KEYS = Object.freeze([
  'windowMs',
  'minSlope',
  'warmupMs',
  'metric',
  'report',
  'diagnose',
])
const DIAGNOSE_KEYS = Object.freeze(['durationMs', 'samplingInterval'])
const SMAPS_KEYS = Object.freeze(['everyN'])
const SNAPSHOT_KEYS = Object.freeze(['smaps', 'children', 'procRoot', 'cgroupRoot'])

const DEFAULTS = Object.freeze({
  intervalMs: 1000,
  historySize: 3600,
  children: 'tree',
  leakWindowMs: 600_000,
  // null: the core's rule (src/detect/leak/mod.rs), which scales the evidence with the window and with the
  // metric's level: growth per window of at least max(1.5 MiB × √(window / 1 min), 2% of the
  // level). A fixed number could not fit every window.
  leakMinSlope: null,
  // null: the core's default, min(window / 2, 30 s) of the window analysed (a minute at least
  // without minSlope, so 30 s): a service's start-up is not a leak.
  leakWarmupMs: null,
  leakMetric: 'rss',
  procRoot: '/proc',
  snapshotChildren: 'none',
})

// Time units of a slope such as '1MiB/min', in seconds, matched case-insensitively.
const TIME_UNITS = new Map([
  ['s', 1],
  ['sec', 1],
  ['secs', 1],
  ['second', 1],
  ['seconds', 1],
  ['min', 60],
  ['mins', 60],
  ['minute', 60],
  ['minutes', 60],
  ['h', 3600],
  ['hr', 3600],
  ['hour', 3600],
  ['hours', 3600],
])

const PERCENT_RE = new RegExp(`^${NUMBER_SOURCE}\\s*%$`)
const SLOPE_RE = /^(.*?)\s*\/\s*([a-z]+)$/i

const SIZE_EXAMPLE = 'a size such as 600MiB or 1.5GB'
const SIZE_OR_PERCENT_EXAMPLE = 'a size such as 600MiB, 1.5GB or 90%'
const SLOPE_EXAMPLE = 'a growth rate such as 1MiB/min, 512KiB/min or 2MB/s'

const {
  quote,
  formatValue,
  typeError,
  rangeError,
  isObject,
  own,
  suggest,
  checkKnownKeys,
} = require('./validation')

function readRoot(options, known) {
  if (options === undefined || options === null) return {}
  if (!isObject(options)) throw typeError('options', 'an object', options)
  checkKnownKeys(options, known, '')
  return options
}

function readInteger(value, path, min, max) {
  if (typeof value !== 'number') throw typeError(path, 'a number', value)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw rangeError(path, `an integer in ${min}..=${max}`, value)
  }
  return value
}

function readBoolean(value, path) {
  if (typeof value !== 'boolean') throw typeError(path, 'a boolean', value)
  return value
}

function readEnum(value, path, allowed) {
  const expected = `one of ${allowed.map(quote).join(', ')}`
  if (typeof value !== 'string') throw typeError(path, expected, value)
  if (!allowed.includes(value)) throw rangeError(path, expected, value)
  return value
}

function readPath(value, path, defaultValue, nullable) {
  if (value === undefined) return defaultValue
  if (value === null && nullable) return null
  const expected = nullable ? 'an absolute path or null' : 'an absolute path'
  if (typeof value !== 'string') throw typeError(path, expected, value)
  // A NUL byte cannot go into a C path; catch it here rather than as an I/O error later.
  if (!value.startsWith('/') || value.includes('\0')) {
    throw rangeError(path, `${expected} (starting with '/')`, value)
  }
  return value
}

// ---------------------------------------------------------------------------------------------
// Sizes and slopes

// Shared by parseSize and the threshold code. `allowZeroPercent` is for hysteresis, where '0%'
// (no hysteresis) makes sense although a 0% threshold does not. `expected` overrides the wording
// of the "must be ..." part of the messages.
function readSize(value, path, { allowPercent = false, allowZeroPercent = false, expected } = {}) {
  const example = expected ?? (allowPercent ? SIZE_OR_PERCENT_EXAMPLE : SIZE_EXAMPLE)
  let bytes
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw rangeError(path, 'a non-negative finite number of bytes', value)
    }
    bytes = value
  } else if (typeof value === 'string') {
    const percentMatch = PERCENT_RE.exec(value.trim())
    if (percentMatch !== null) {
      if (!allowPercent) {
        throw rangeError(path, `${example} (a percentage is not allowed here)`, value)
      }
      const percent = Number(percentMatch[1])
      if (percent > 100 || (percent === 0 && !allowZeroPercent)) {
        const range = allowZeroPercent ? 'in 0%..=100%' : 'above 0% and at most 100%'
        throw rangeError(path, `a percentage ${range}`, value)
      }
      return { percent }
    }
    bytes = sizeStringToBytes(value)
    if (bytes === null) throw rangeError(path, example, value)
  } else {
    throw typeError(path, example, value)
  }
  // Beyond 2^53 byte counts lose precision as JS numbers (and no machine has that much memory).
  bytes = Math.round(bytes)
  if (bytes > Number.MAX_SAFE_INTEGER) {
    throw rangeError(path, `at most ${Number.MAX_SAFE_INTEGER} bytes`, value)
  }
  return { bytes }
}

/**
 * Parse a size: a non-negative finite number of bytes (rounded to an integer) or a string such as
 * '600MiB', '1.5GB', '512 KiB', '1k'. With `allowPercent`, also a percentage such as '90%'
 * (0 < p <= 100). Returns `{ bytes }` or `{ percent }`; throws TypeError/RangeError.
 */
function parseSize(value, optionName = 'size', { allowPercent = false } = {}) {
  return readSize(value, optionName, { allowPercent })
}

/**
 * Parse a growth rate: a non-negative finite number of bytes per second, or a string
 * '<size>/<unit>' with unit s|sec|second, min|minute, h|hr|hour (plurals accepted), e.g.
 * '1MiB/min', '2MB/s'. Returns bytes per second (not rounded).
 */
function parseSlope(value, optionName = 'slope') {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw rangeError(optionName, 'a non-negative finite number of bytes per second', value)
    }
    return value
  }
  if (typeof value !== 'string') {
    throw typeError(optionName, `${SLOPE_EXAMPLE} or a number of bytes per second`, value)
  }
  const match = SLOPE_RE.exec(value.trim())
  const seconds = match === null ? undefined : TIME_UNITS.get(match[2].toLowerCase())
  const bytes = seconds === undefined ? null : sizeStringToBytes(match[1])
  if (bytes === null || !Number.isFinite(bytes)) throw rangeError(optionName, SLOPE_EXAMPLE, value)
  return bytes / seconds
}

// ---------------------------------------------------------------------------------------------
// Sections of the options

// `settings` holds what decides whether a metric is available: smapsEveryN, heap, children.
function readMetric(value, path, settings, { forLeak = false } = {}) {
  if (typeof value !== 'string') {
    throw typeError(path, `one of ${BYTE_METRICS.map(quote).join(', ')}`, value)
  }
  if (!BYTE_METRICS.includes(value)) {
    const guess = suggest(value, BYTE_METRICS)
    const hint = guess === undefined ? '' : ` (did you mean ${quote(guess)}?)`
    throw new RangeError(
      `${PREFIX}${path} must be one of ${BYTE_METRICS.map(quote).join(', ')}, ` +
        `got ${formatValue(value)}${hint}`,
    )
  }
  if (forLeak && value === CHILD_RSS) {
    // 'child.rss' is evaluated for each child process separately; there is no single series
    // whose slope could be measured.
    throw new RangeError(
      `${PREFIX}${path} 'child.rss' is not allowed for leak detection (it is tracked per child ` +
        `process); use 'treeRss' or 'childrenRss'`,
    )
  }
  const needs = needsOf(value)
  if (needs.includes('smaps') && settings.smapsEveryN === 0) {
    throw new RangeError(`${PREFIX}${path} ${quote(value)} needs smaps: true`)
  }
  if (needs.includes('heap') && !settings.heap) {
    throw new RangeError(`${PREFIX}${path} ${quote(value)} needs heap: true`)
  }
  if (needs.includes('cgroup') && !settings.cgroup) {
    throw new RangeError(`${PREFIX}${path} ${quote(value)} needs cgroup: true`)
  }
  if (needs.includes('children') && settings.children === 'none') {
    throw new RangeError(`${PREFIX}${path} ${quote(value)} needs children: 'direct' or 'tree'`)
  }
  return value
}

function normalizeSmaps(value) {
  if (value === undefined || value === false) return 0
  if (value === true) return 1
  if (!isObject(value)) {
    throw typeError('smaps', 'a boolean or an object such as { everyN: 10 }', value)
  }
  checkKnownKeys(value, SMAPS_KEYS, 'smaps.')
  const everyN = own(value, 'everyN')
  return everyN === undefined ? 1 : readInteger(everyN, 'smaps.everyN', 1, 1_000_000)
}

function normalizeLimit(value) {
  if (value === undefined || value === 'auto') return null
  const expected = "'auto' or a size such as 2GiB or 1.5GB"
  const { bytes } = readSize(value, 'limit', { expected })
  // A zero limit would make every percentage threshold 0 bytes and divide by zero in msToLimit.
  if (bytes === 0) throw rangeError('limit', "'auto' or a size greater than 0", value)
  return bytes
}

function normalizeLeak(value, intervalMs, settings) {
  if (value === false || value === null) return null
  // The slope is fitted over the window; fewer than ~4 samples in it gives a meaningless fit.
  const minWindowMs = 4 * intervalMs
  let leak = value
  if (leak === undefined || leak === true) {
    leak = {}
  } else if (!isObject(leak)) {
    const expected = "a boolean or an object such as { windowMs: 600000, minSlope: '1MiB/min' }"
    throw typeError('leak', expected, leak)
  }
  checkKnownKeys(leak, LEAK_KEYS, 'leak.')

  let windowMs
  const rawWindow = own(leak, 'windowMs')
  if (rawWindow === undefined) {
    // Grow the default window with long sampling intervals instead of failing on an option the
    // user never set. At most 4 × 3_600_000, well within the 86_400_000 maximum.
    windowMs = Math.max(DEFAULTS.leakWindowMs, minWindowMs)
  } else {
    windowMs = readInteger(rawWindow, 'leak.windowMs', 1000, MAX_DAY_MS)
    if (windowMs < minWindowMs) {
      throw new RangeError(
        `${PREFIX}leak.windowMs must be at least 4 × intervalMs ` +
          `(4 × ${intervalMs} = ${minWindowMs}), got ${windowMs}`,
      )
    }
  }

  const rawSlope = own(leak, 'minSlope')
  const minSlope = rawSlope == null ? DEFAULTS.leakMinSlope : parseSlope(rawSlope, 'leak.minSlope')

  const rawWarmup = own(leak, 'warmupMs')
  const warmupMs =
    rawWarmup == null
      ? DEFAULTS.leakWarmupMs
      : readInteger(rawWarmup, 'leak.warmupMs', 0, MAX_DAY_MS)

  const rawMetric = own(leak, 'metric')
  const metric = readMetric(
    rawMetric === undefined ? DEFAULTS.leakMetric : rawMetric,
    'leak.metric',
    settings,
    { forLeak: true },
  )

  // `report: dir`: write an HTML report (memsentry/report) into dir when a leak is confirmed.
  const rawReport = own(leak, 'report')
  let report = null
  if (rawReport !== undefined && rawReport !== null && rawReport !== false) {
    report = readDirectory(rawReport, 'leak.report')
  }

  const diagnose = normalizeDiagnose(own(leak, 'diagnose'))

  // Only when set, so the normalized shape without them is unchanged.
  return {
    windowMs,
    minSlope,
    warmupMs,
    metric,
    ...(diagnose !== undefined ? { diagnose } : {}),
    ...(report !== null ? { report } : {}),
  }
}

// `diagnose`: V8's sampling heap profiler names the leaking code (lib/diagnosis.js). On by
// default, which normalizes to undefined (no key); off is null; a null field means "derived from
// the leak" (see there).
function normalizeDiagnose(value) {
  if (value === false || value === null) return null
  if (value === undefined || value === true) return undefined
  if (!isObject(value)) {
    const expected =
      "a boolean or an object such as { durationMs: 30000, samplingInterval: '32KiB' }"
    throw typeError('leak.diagnose', expected, value)
  }
  checkKnownKeys(value, DIAGNOSE_KEYS, 'leak.diagnose.')
  const rawDuration = own(value, 'durationMs')
  const durationMs =
    rawDuration === undefined
      ? null
      : readInteger(rawDuration, 'leak.diagnose.durationMs', 1000, MAX_INTERVAL_MS)
  const rawInterval = own(value, 'samplingInterval')
  let samplingInterval = null
  if (rawInterval !== undefined) {
    const path = 'leak.diagnose.samplingInterval'
    const { bytes } = readSize(rawInterval, path, { expected: 'a size such as 32KiB' })
    if (bytes < 1024 || bytes > 64 * MIB)
      throw rangeError(path, 'a size in 1KiB..=64MiB', rawInterval)
    samplingInterval = bytes
  }
  return { durationMs, samplingInterval }
}

// `seenNames` maps each name already used to the index of its threshold.
function normalizeThreshold(raw, index, settings, seenNames) {
  const path = `thresholds[${index}]`
  if (!isObject(raw)) {
    throw typeError(path, "an object such as { metric: 'rss', above: '600MiB' }", raw)
  }
  checkKnownKeys(raw, THRESHOLD_KEYS, `${path}.`)

  const rawMetric = own(raw, 'metric')
  const metric = readMetric(rawMetric === undefined ? 'rss' : rawMetric, `${path}.metric`, settings)

  const rawAbove = own(raw, 'above')
  if (rawAbove === undefined) {
    throw new TypeError(
      `${PREFIX}${path}.above is required and must be ${SIZE_OR_PERCENT_EXAMPLE}, got undefined`,
    )
  }
  const aboveSize = readSize(rawAbove, `${path}.above`, { allowPercent: true })
  const isPercent = aboveSize.percent !== undefined

  // Byte thresholds carry hysteresis in bytes. Percentage thresholds carry it in percentage
  // points (hysteresisPercent) with hysteresis: 0, because the bytes depend on the limit, which
  // only the native side resolves.
  let above = null
  let abovePercent = null
  let hysteresis = 0
  let hysteresisPercent = null
  const rawHysteresis = own(raw, 'hysteresis')
  const hysteresisPath = `${path}.hysteresis`
  if (isPercent) {
    abovePercent = aboveSize.percent
    if (rawHysteresis === undefined) {
      // 1 percentage point, at most half the threshold, so that a tiny one can re-arm.
      hysteresisPercent = Math.min(1, abovePercent / 2)
    } else {
      const h = readSize(rawHysteresis, hysteresisPath, {
        allowPercent: true,
        allowZeroPercent: true,
      })
      if (h.percent === undefined) {
        const expected = 'a percentage such as 1% when above is a percentage'
        throw rangeError(hysteresisPath, expected, rawHysteresis)
      }
      if (h.percent >= abovePercent) {
        const expected = `less than ${path}.above (${abovePercent}%)`
        throw rangeError(hysteresisPath, expected, rawHysteresis)
      }
      hysteresisPercent = h.percent
    }
  } else {
    above = aboveSize.bytes
    // A rule above 0 could fire 'up' but never re-arm (no value falls below 0 - hysteresis); for
    // "any at all", 1 byte re-arms when the figure is back at 0.
    if (above === 0) {
      throw rangeError(`${path}.above`, 'at least 1 byte (1 for "any at all")', rawAbove)
    }
    if (rawHysteresis === undefined) {
      // 1% of the threshold but at least 1 MiB (RSS routinely jitters by that much), at most
      // half the threshold, so that a tiny one can re-arm.
      hysteresis = Math.min(Math.max(Math.round(above / 100), MIB), Math.floor(above / 2))
    } else {
      // Any percentage (0% and 150% too) is refused with the reason, before it is parsed.
      if (typeof rawHysteresis === 'string' && PERCENT_RE.test(rawHysteresis.trim())) {
        const expected = 'a size in bytes when above is a size in bytes'
        throw rangeError(hysteresisPath, expected, rawHysteresis)
      }
      const h = readSize(rawHysteresis, hysteresisPath, {
        expected: 'a size in bytes such as 16MiB or 1.5MB (above is a size in bytes)',
      })
      if (h.bytes >= above) {
        throw rangeError(hysteresisPath, `less than ${path}.above (${above} bytes)`, rawHysteresis)
      }
      hysteresis = h.bytes
    }
  }

  let name
  const rawName = own(raw, 'name')
  if (rawName === undefined) {
    name = `${metric}>${typeof rawAbove === 'string' ? rawAbove.trim() : String(rawAbove)}`
  } else {
    if (typeof rawName !== 'string') throw typeError(`${path}.name`, 'a string', rawName)
    if (rawName.trim() === '') throw rangeError(`${path}.name`, 'a non-empty string', rawName)
    name = rawName
  }
  // Names identify thresholds in events, so two thresholds must never share one.
  if (seenNames.has(name)) {
    const other = `thresholds[${seenNames.get(name)}]`
    throw new RangeError(
      `${PREFIX}${path}.name must be unique, got ${quote(name)} (also the name of ${other})`,
    )
  }
  seenNames.set(name, index)

  return { name, metric, above, abovePercent, hysteresis, hysteresisPercent }
}

function normalizeThresholds(value, settings) {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw typeError('thresholds', 'an array', value)
  const seenNames = new Map()
  return value.map((raw, index) => normalizeThreshold(raw, index, settings, seenNames))
}

// ---------------------------------------------------------------------------------------------
// Entry points

// `heapSnapshot: { dir, maxCount = 1 }`: write a V8 heap snapshot into `dir` when a leak episode
// is confirmed. Off (null) by default; a relative dir is resolved against the working directory.
function normalizeHeapSnapshot(value) {
  if (value === undefined || value === null || value === false) return null
  if (!isObject(value)) throw typeError('heapSnapshot', 'an object such as { dir }', value)
  checkKnownKeys(value, HEAP_SNAPSHOT_KEYS, 'heapSnapshot.')
  const dir = readDirectory(own(value, 'dir'), 'heapSnapshot.dir')
  const rawMax = own(value, 'maxCount')
  const maxCount = rawMax === undefined ? 1 : readInteger(rawMax, 'heapSnapshot.maxCount', 1, 100)
  return { dir, maxCount }
}

// A directory to write into, resolved against the working directory. Refused now rather than as
// an 'error' at the leak: a NUL byte (it cannot go into a C path), and blank or space-padded
// values (' /var/reports' would resolve to a folder named ' ' inside the working directory).
function readDirectory(value, name) {
  if (typeof value !== 'string') throw typeError(name, 'a directory path', value)
  if (value.trim() === '') throw rangeError(name, 'a directory path', value)
  if (value.includes('\0')) throw rangeError(name, 'a directory path without a NUL byte', value)
  if (value.trim() !== value) {
    throw rangeError(name, 'a directory path without surrounding spaces', value)
  }
  return require('node:path').resolve(value)
}

/**
 * Validates the options of `new MemorySentry(options)` (TypeError / RangeError naming the option
 * and the value) and returns them with defaults filled in:
 *   { intervalMs, historySize, children, thresholds: [{ name, metric, above, abovePercent,
 *     hysteresis, hysteresisPercent }], leak: null | { windowMs, minSlope, warmupMs, metric,
 *     report?, diagnose? }, smapsEveryN, heap, cgroup, limit, procRoot, cgroupRoot,
 *     heapSnapshot }
 * Sizes are in bytes, slopes in bytes per second, durations in milliseconds. `forNative` drops
 * its nulls for the native side.
 */
function normalizeOptions(options) {
  const opts = readRoot(options, TOP_LEVEL_KEYS)

  const rawInterval = own(opts, 'intervalMs')
  const intervalMs =
    rawInterval === undefined
      ? DEFAULTS.intervalMs
      : readInteger(rawInterval, 'intervalMs', 10, MAX_INTERVAL_MS)

  const rawHistory = own(opts, 'historySize')
  const historySize =
    rawHistory === undefined
      ? DEFAULTS.historySize
      : readInteger(rawHistory, 'historySize', 1, 1_000_000)

  const rawChildren = own(opts, 'children')
  const children =
    rawChildren === undefined
      ? DEFAULTS.children
      : readEnum(rawChildren, 'children', CHILDREN_MODES)

  const smapsEveryN = normalizeSmaps(own(opts, 'smaps'))

  const rawHeap = own(opts, 'heap')
  const heap = rawHeap === undefined ? false : readBoolean(rawHeap, 'heap')

  const rawCgroup = own(opts, 'cgroup')
  const cgroup = rawCgroup === undefined ? true : readBoolean(rawCgroup, 'cgroup')

  const limit = normalizeLimit(own(opts, 'limit'))
  const procRoot = readPath(own(opts, 'procRoot'), 'procRoot', DEFAULTS.procRoot, false)
  const cgroupRoot = readPath(own(opts, 'cgroupRoot'), 'cgroupRoot', null, true)
  const heapSnapshot = normalizeHeapSnapshot(own(opts, 'heapSnapshot'))

  // Metric availability depends on these three, so they are read before thresholds and leak.
  const settings = { smapsEveryN, heap, children, cgroup }
  const leak = normalizeLeak(own(opts, 'leak'), intervalMs, settings)
  const thresholds = normalizeThresholds(own(opts, 'thresholds'), settings)

  return {
    intervalMs,
    historySize,
    children,
    thresholds,
    leak,
    smapsEveryN,
    heap,
    cgroup,
    limit,
    procRoot,
    cgroupRoot,
    heapSnapshot,
  }
}

/**
 * Validate the options of the one-shot `snapshot(options?)`: { smaps: boolean, children
 * (default 'none'), procRoot, cgroupRoot }. Returns { smapsEveryN: 0 | 1, children, procRoot,
 * cgroupRoot }.
 */
function normalizeSnapshotOptions(options) {
  const opts = readRoot(options, SNAPSHOT_KEYS)

  const rawSmaps = own(opts, 'smaps')
  const smaps = rawSmaps === undefined ? false : readBoolean(rawSmaps, 'smaps')

  const rawChildren = own(opts, 'children')
  const children =
    rawChildren === undefined
      ? DEFAULTS.snapshotChildren
      : readEnum(rawChildren, 'children', CHILDREN_MODES)

  return {
    smapsEveryN: smaps ? 1 : 0,
    children,
    procRoot: readPath(own(opts, 'procRoot'), 'procRoot', DEFAULTS.procRoot, false),
    cgroupRoot: readPath(own(opts, 'cgroupRoot'), 'cgroupRoot', null, true),
  }
}

// The native side reads optional fields as "absent"; napi-rs object fields take `undefined`
// but not `null` there, so nulls are dropped at the boundary (recursively, through arrays).
function forNative(value) {
  if (Array.isArray(value)) return value.map(forNative)
  if (value === null || typeof value !== 'object') return value
  const out = {}
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = forNative(v)
  return out
}

module.exports = {
  BYTE_METRICS,
  forNative,
  parseSize,
  parseSlope,
  normalizeOptions,
  normalizeSnapshotOptions,
}
