'use strict'

// Checking options, for every entry point: the core's constructor (./options.js) and each
// integration (memsentry/koa, /prometheus, /otel, /report, /dashboard, /format, /register), so
// that all of them answer a mistake the same way:
//   - the message starts with who is speaking ('memsentry: ', 'memsentry/koa: '), names the
//     option path and shows the value received;
//   - a wrong type is a TypeError (`got string '1000'`), a value out of range a RangeError;
//   - an unknown key is a TypeError with a "did you mean" hint when a known key is close.
// Only own properties are read: keys inherited from a (polluted) prototype are never options.

const CORE = 'memsentry'

// setTimeout's longest delay: a longer one fires after 1 ms, with only a warning. A period an
// integration passes to a timer is checked against it.
const MAX_TIMER_MS = 2 ** 31 - 1

function quote(text) {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text
  const escaped = shown
    .replace(/[\\']/g, '\\$&')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return `'${escaped}'`
}

// The value as shown after 'got' in a RangeError: strings quoted, numbers as is, objects and
// arrays by kind only (their contents are rarely useful and can be huge).
function formatValue(value) {
  if (typeof value === 'string') return quote(value)
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'boolean' || typeof value === 'symbol') return String(value)
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value // 'object', 'function', 'undefined'
}

function typeName(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

// The value as shown after 'got' in a TypeError: the type word, then the value when it adds
// something (`string '1000'`, `boolean true`, but just `object`, `array`, `null`).
function describeWithType(value) {
  const type = typeName(value)
  const shown = formatValue(value)
  return type === shown ? type : `${type} ${shown}`
}

function typeError(path, expected, value, who = CORE) {
  return new TypeError(`${who}: ${path} must be ${expected}, got ${describeWithType(value)}`)
}

function rangeError(path, expected, value, who = CORE) {
  return new RangeError(`${who}: ${path} must be ${expected}, got ${formatValue(value)}`)
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// Own property only; see the header comment.
function own(obj, key) {
  return Object.hasOwn(obj, key) ? obj[key] : undefined
}

// The own enumerable properties of `obj` in an object with no prototype: destructured with
// defaults, it never yields a key inherited from a polluted Object.prototype (an `authorize`
// that lets everyone in, an `includeCmdline: true`).
function ownOptions(obj) {
  return Object.assign(Object.create(null), obj)
}

function editDistance(a, b) {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    }
    prev = cur
  }
  return prev[b.length]
}

// The known name closest to `name`: a case-insensitive match first, else the nearest within an
// edit distance of 2 (compared case-insensitively). Undefined when nothing is close.
function suggest(name, known) {
  const lower = name.toLowerCase()
  const exact = known.find((k) => k.toLowerCase() === lower)
  if (exact !== undefined) return exact
  let best
  let bestDistance = 3
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase())
    if (d < bestDistance) {
      best = k
      bestDistance = d
    }
  }
  return best
}

// `prefix` is the path of the object followed by a dot ('thresholds[0].'), or '' at top level;
// `who` names the entry point in the message.
function checkKnownKeys(obj, known, prefix = '', who = CORE) {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue
    const guess = suggest(key, known)
    const hint =
      guess === undefined
        ? `known options: ${known.join(', ')}`
        : `did you mean ${quote(prefix + guess)}?`
    throw new TypeError(`${who}: unknown option ${quote(prefix + key)} (${hint})`)
  }
}

/**
 * The options object of an integration: `{}` for undefined, else a plain object whose keys are
 * all in `known` (TypeError otherwise, naming `who`).
 */
function readOptions(options, known, who) {
  if (options === undefined) return Object.create(null)
  if (!isObject(options)) throw typeError('options', 'an object', options, who)
  checkKnownKeys(options, known, '', who)
  return ownOptions(options)
}

module.exports = {
  MAX_TIMER_MS,
  quote,
  formatValue,
  describeWithType,
  typeError,
  rangeError,
  isObject,
  own,
  ownOptions,
  editDistance,
  suggest,
  checkKnownKeys,
  readOptions,
}
