'use strict'

// Text forms of memsentry's figures for logs and terminals (entry `memsentry/format`): byte sizes,
// `pidstat -r` lines, one-line JSON, the Koa/HTTP batch report, and leak diagnoses.

const path = require('node:path')
const { rangeError, readOptions, typeError } = require('../lib/validation')
const { formatSite } = require('../lib/allocation-site')

const WHO = 'memsentry/format'

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB']
const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB']

/**
 * A byte count for people: `formatBytes(1572864)` → '1.5 MiB'; `{ binary: false }` uses powers
 * of 1000 ('1.6 MB'). Whole bytes print without decimals ('512 B'); negative counts keep their
 * sign; null, undefined and NaN print as 'n/a'.
 */
function formatBytes(n, options) {
  const { binary = true, decimals = 1 } = readOptions(options, ['binary', 'decimals'], WHO)
  if (typeof binary !== 'boolean') throw typeError('binary', 'a boolean', binary, WHO)
  if (typeof decimals !== 'number') throw typeError('decimals', 'an integer', decimals, WHO)
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > 20) {
    throw rangeError('decimals', 'an integer in 0..=20', decimals, WHO)
  }
  if (n == null || Number.isNaN(n)) return 'n/a'
  if (typeof n !== 'number') n = Number(n)
  if (!Number.isFinite(n)) return n > 0 ? '∞' : '-∞'
  const base = binary ? 1024 : 1000
  const units = binary ? BINARY_UNITS : DECIMAL_UNITS
  const sign = n < 0 ? '-' : ''
  let v = Math.abs(n)
  let u = 0
  while (v >= base && u < units.length - 1) {
    v /= base
    u++
  }
  // 1023.96 KiB at one decimal would print as '1024.0 KiB': move up a unit instead.
  if (u > 0 && u < units.length - 1 && Number(v.toFixed(decimals)) >= base) {
    v /= base
    u++
  }
  if (u === 0) return `${sign}${Math.round(v)} B`
  return `${sign}${v.toFixed(decimals)} ${units[u]}`
}

/** A signed byte delta: '+1.5 MiB', '-512 B', '+0 B'. */
function formatDelta(n, options) {
  if (n == null || Number.isNaN(n)) return 'n/a'
  return n < 0 ? formatBytes(n, options) : `+${formatBytes(n, options)}`
}

// `pidstat -r` columns: Time, then right-aligned UID, PID, minflt/s, majflt/s, VSZ (KiB),
// RSS (KiB), %MEM, then the command after two spaces. Each column is a space and the value
// right-aligned in width - 1, as printf(" %9d") does: a value too wide widens its column.
const COLUMNS = [
  ['UID', 7],
  ['PID', 10],
  ['minflt/s', 10],
  ['majflt/s', 10],
  ['VSZ', 8],
  ['RSS', 8],
  ['%MEM', 7],
]
const TIME_WIDTH = 8

/** The header line of `formatPidstat`, like `pidstat -r` prints it. */
function pidstatHeader() {
  return (
    'Time'.padEnd(TIME_WIDTH) + COLUMNS.map(([name, w]) => column(name, w)).join('') + '  Command'
  )
}

function column(text, width) {
  return ` ${text.padStart(width - 1)}`
}

function two(n) {
  return String(n).padStart(2, '0')
}

/** HH:MM:SS in local time. */
function clock(ms) {
  const d = new Date(ms)
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`
}

function fixed2(n) {
  return n == null || !Number.isFinite(n) ? '-' : n.toFixed(2)
}

function kib(n) {
  return n == null || !Number.isFinite(n) ? '-' : String(Math.round(n / 1024))
}

function defaultCommand() {
  if (process.title) return process.title
  return path.basename(process.argv[0] ?? 'node')
}

function defaultUid() {
  return typeof process.getuid === 'function' ? process.getuid() : '-'
}

/**
 * One `pidstat -r` line for a Sample: time (HH:MM:SS, local), UID, PID, minflt/s, majflt/s, VSZ
 * and RSS in KiB, %MEM, command. Missing figures print as '-'.
 */
function formatPidstat(sample, options) {
  const { command = defaultCommand(), uid = defaultUid() } = readOptions(
    options,
    ['command', 'uid'],
    WHO,
  )
  const values = [
    String(uid),
    String(sample.pid),
    fixed2(sample.minorFaultsPerSec),
    fixed2(sample.majorFaultsPerSec),
    kib(sample.vsz),
    kib(sample.rss),
    fixed2(sample.memPercent),
  ]
  return (
    clock(sample.time).padEnd(TIME_WIDTH) +
    values.map((v, i) => column(v, COLUMNS[i][1])).join('') +
    `  ${command}`
  )
}

/**
 * A Sample as one line of JSON. Children's command lines are left out unless
 * `includeCmdline: true` (they can hold secrets passed as arguments).
 */
function formatJson(sample, options) {
  const { includeCmdline = false } = readOptions(options, ['includeCmdline'], WHO)
  let value = sample
  if (!includeCmdline && Array.isArray(sample?.children)) {
    value = {
      ...sample,
      children: sample.children.map((child) => {
        if (child == null || typeof child !== 'object' || !('cmdline' in child)) return child
        const { cmdline, ...rest } = child
        return rest
      }),
    }
  }
  return JSON.stringify(value)
}

function formatRate(n) {
  if (n == null || !Number.isFinite(n)) return 'n/a'
  return n >= 100 ? String(Math.round(n)) : n.toFixed(1)
}

/**
 * A batch report of memsentry/koa as one line:
 * `memsentry: 1000 req in 812 ms (1232 req/s) rss 80.2 MiB (+1.1 MiB) heap 20.4 MiB (+0.9 MiB)
 * routes GET /orders/:id=600 GET /products=400 suspects GET /orders/:id 20.0 KiB/req`.
 */
function formatReport(report) {
  const parts = [
    `memsentry: ${report.requests} req in ${Math.round(report.ms)} ms (${formatRate(report.reqPerSec)} req/s)`,
    `rss ${formatBytes(report.rss)} (${formatDelta(report.rssDelta)})`,
  ]
  if (report.heapUsed != null) {
    const delta = report.heapDelta != null ? ` (${formatDelta(report.heapDelta)})` : ''
    parts.push(`heap ${formatBytes(report.heapUsed)}${delta}`)
  }
  if (report.treeRss != null) parts.push(`tree ${formatBytes(report.treeRss)}`)
  if (report.workingSet != null) parts.push(`workingSet ${formatBytes(report.workingSet)}`)
  if (report.routes) {
    const routes = Object.entries(report.routes)
      .sort((a, b) => b[1] - a[1])
      .map(([route, n]) => `${route}=${n}`)
    if (routes.length > 0) parts.push(`routes ${routes.join(' ')}`)
  }
  if (report.suspectRoutes) {
    const suspects = report.suspectRoutes.map(
      (s) => `${s.route} ${formatBytes(s.bytesPerRequest)}/req`,
    )
    parts.push(`suspects ${suspects.length > 0 ? suspects.join(', ') : 'none'}`)
  }
  if (report.leakSites?.length > 0) {
    const sites = notableSites(report.leakSites, 3).map(
      (s) => `${formatSite(s)} ${percent(s.share)}`,
    )
    parts.push(`allocated in ${sites.join(', ')}`)
  }
  return parts.join(' ')
}

/** The sites worth a mention in one line: the top one, and those above 1%. */
function notableSites(sites, max) {
  return sites.filter((s, i) => i === 0 || (s.share ?? 0) >= 0.01).slice(0, max)
}

function percent(share) {
  return `${Math.round((share ?? 0) * 100)}%`
}

/**
 * A 'leak-diagnosis' event as one line. A heap (or unknown) suspect:
 * `memsentry: leak allocated in getData (examples/demo.js:54) 97%, ... (18.0 MiB sampled over
 * 10 s)`; a native one: what grew outside the JS heap.
 */
function formatDiagnosis(d, options) {
  const { cwd, maxSites = 3 } = readOptions(options, ['cwd', 'maxSites'], WHO)
  if (cwd !== undefined && typeof cwd !== 'string') throw typeError('cwd', 'a string', cwd, WHO)
  if (typeof maxSites !== 'number') throw typeError('maxSites', 'an integer', maxSites, WHO)
  if (!(Number.isInteger(maxSites) || maxSites === Infinity) || maxSites < 1) {
    throw rangeError('maxSites', 'an integer >= 1 or Infinity', maxSites, WHO)
  }
  const seconds = `${Math.round((d.durationMs ?? 0) / 1000)} s`
  const parts = []
  if (d.sites?.length > 0) {
    const sites = notableSites(d.sites, maxSites).map(
      (s) => `${formatSite(s, { cwd })} ${percent(s.share)}`,
    )
    parts.push(
      `memsentry: leak allocated in ${sites.join(', ')} ` +
        `(${formatBytes(d.sampledBytes)} sampled over ${seconds})`,
    )
  } else if (d.suspect !== 'native') {
    parts.push(`memsentry: leak diagnosis: no live JS allocation sampled over ${seconds}`)
  }
  const n = d.native
  if (n) {
    const g = n.growth ?? {}
    const grew = (label, x) => (x ? `${label} ${formatDelta(x.bytes)}` : null)
    const figures = [
      grew('rssAnon', g.rssAnon),
      grew('heap', g.heapUsed),
      grew('external', g.external),
      grew('arrayBuffers', g.arrayBuffers),
      n.outsideHeap ? `outside the heap ${formatDelta(n.outsideHeap.bytes)}` : null,
      n.child ? `child ${n.child.comm} [${n.child.pid}] ${formatDelta(n.child.bytes)}` : null,
    ].filter(Boolean)
    const head = d.sites?.length > 0 ? ';' : 'memsentry: leak outside the JS heap:'
    if (figures.length > 0) {
      parts.push(`${head} over ${Math.round(n.spanMs / 1000)} s ${figures.join(', ')}`)
    }
  }
  return parts.join(' ')
}

module.exports = {
  formatBytes,
  formatDelta,
  pidstatHeader,
  formatPidstat,
  formatJson,
  formatReport,
  formatSite,
  formatDiagnosis,
}
