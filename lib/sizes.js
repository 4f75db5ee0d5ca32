'use strict'

// Size strings such as '600MiB', '1.5 GB' or '512Ki', read one way wherever a size is taken: the
// core's options (lib/options.js) and the register entry's environment variables. Pure functions
// and facts, no state.

const KIB = 1024
const MIB = 1024 * KIB
const GIB = 1024 * MIB
const TIB = 1024 * GIB

// Size units, matched case-insensitively. Without 'i' they are decimal (SI), with 'i' binary
// (IEC); the Kubernetes-style short forms 'Ki', 'Mi', ... are accepted too. 'b' means bytes,
// never bits.
const SIZE_UNITS = new Map([
  ['', 1],
  ['b', 1],
  ['k', 1e3],
  ['kb', 1e3],
  ['ki', KIB],
  ['kib', KIB],
  ['m', 1e6],
  ['mb', 1e6],
  ['mi', MIB],
  ['mib', MIB],
  ['g', 1e9],
  ['gb', 1e9],
  ['gi', GIB],
  ['gib', GIB],
  ['t', 1e12],
  ['tb', 1e12],
  ['ti', TIB],
  ['tib', TIB],
])

// A plain decimal number: '600', '1.5', '.5'. No sign (sizes are never negative), no exponent.
const NUMBER_SOURCE = '(\\d+(?:\\.\\d+)?|\\.\\d+)'
const SIZE_RE = new RegExp(`^${NUMBER_SOURCE}\\s*([a-z]*)$`, 'i')

// Bytes for a size string such as '600MiB' or '1.5 GB' (not rounded), or null if it doesn't parse.
function sizeStringToBytes(text) {
  const match = SIZE_RE.exec(text.trim())
  if (match === null) return null
  const multiplier = SIZE_UNITS.get(match[2].toLowerCase())
  if (multiplier === undefined) return null
  return Number(match[1]) * multiplier
}

module.exports = { NUMBER_SOURCE, sizeStringToBytes }
