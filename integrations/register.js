'use strict'

// memsentry/register: watch an app's memory with no change to its code.
//
//   node -r memsentry/register app.js
//   node --import memsentry/register app.mjs
//   NODE_OPTIONS='-r memsentry/register' npm start
//
// Starts one MemorySentry for the process, with V8's heap figures in its samples (`heap: true`),
// configured from the environment:
//
//   MEMSENTRY_INTERVAL_MS       sampling period, an integer in 10..=3600000 (default 1000)
//   MEMSENTRY_RSS_WARN          a size above 0 such as 600MiB or 1.5GB (or 90% of the cgroup
//                               limit): a threshold named 'rss-warn' on rss
//   MEMSENTRY_LEAK_WINDOW_MS    the leak detector's window (default 600000)
//   MEMSENTRY_LOG               events (default): the event lines below only; pidstat: also a
//                               `pidstat -r` header, then a line per sample; json: JSON lines,
//                               one per sample and one per event; off: nothing
//   MEMSENTRY_HEAPSNAPSHOT_DIR  write a V8 heap snapshot there when a leak is confirmed (passed as
//                               the `heapSnapshot: { dir }` option where this version has it)
//
// Everything goes to stderr, one line per write, so the app's stdout is untouched. Threshold,
// leak, leak-end, leak-diagnosis, OOM and read-error events are one line each (JSON objects with
// an "event" key in json mode; a diagnosis keeps its 3 heaviest sites and their 3 innermost
// frames there) unless MEMSENTRY_LOG=off. Writes never block the app: on a pipe or terminal that
// nobody drains a line is dropped and counted (`require('memsentry/register').droppedLines()`). A bad value is one line naming the variable and the
// value, and that variable falls back to its default; this is printed even with
// MEMSENTRY_LOG=off, since a setting silently ignored is worse than a line on stderr.
//
// It never throws into the app: construction and every listener are guarded, a failed write to
// stderr is dropped, and where memsentry cannot run at all (another platform, say) one line says
// so and the app goes on. The sentry is unref'd (the app exits when it would without it), runs
// only in the main thread (preloads also run in worker threads), and only once per process (a
// second preload, or a second copy of the package, reuses the first one's sentry). It is kept in
// this module and exported: `require('memsentry/register').sentry` (null if it could not start).

const fs = require('node:fs')
const { isMainThread } = require('node:worker_threads')
// The shared option checking's edit distance (pure JS: loads no native code).
const { editDistance, quote } = require('../lib/validation')
const { sizeStringToBytes } = require('../lib/sizes')

const REGISTERED = Symbol.for('memsentry.register')

const DEFAULT_INTERVAL_MS = 1000
const DEFAULT_LEAK_WINDOW_MS = 600_000
const LOG_MODES = ['events', 'pidstat', 'json', 'off']
const DEFAULT_LOG_MODE = 'events'
// Linux's PIPE_BUF: the longest write a pipe takes whole or not at all.
const PIPE_BUF = 4096
// What a leak-diagnosis JSON line keeps of the event: the heaviest sites, the innermost frames.
const MAX_JSON_SITES = 3
const MAX_JSON_FRAMES = 3

const VARS = {
  interval: 'MEMSENTRY_INTERVAL_MS',
  rssWarn: 'MEMSENTRY_RSS_WARN',
  leakWindow: 'MEMSENTRY_LEAK_WINDOW_MS',
  log: 'MEMSENTRY_LOG',
  heapSnapshotDir: 'MEMSENTRY_HEAPSNAPSHOT_DIR',
}
const KNOWN_VARS = Object.values(VARS)

// Top-level option named at the start of a constructor error -> the variable that set it.
const VAR_OF_OPTION = {
  intervalMs: VARS.interval,
  thresholds: VARS.rssWarn,
  leak: VARS.leakWindow,
  heapSnapshot: VARS.heapSnapshotDir,
}

// Lines written in the life of the process that stderr did not take (full, closed).
let dropped = 0
let stderrFd = null

// The fd memsentry writes its lines to. A pipe or a terminal can block a write for as long as
// nobody reads, so it is reopened through /proc with O_NONBLOCK: a file description of our own
// (the app's fd 2 keeps its flags) on which a full pipe fails at once with EAGAIN. A regular
// file or /dev/null never waits on a reader, and reopening a file would lose its offset: those
// (and a socket, which /proc cannot reopen) are written through fd 2 itself.
function lineFd() {
  if (stderrFd !== null) return stderrFd
  stderrFd = 2
  try {
    const st = fs.fstatSync(2)
    if (st.isFIFO() || st.isCharacterDevice()) {
      const { O_WRONLY, O_NONBLOCK, O_NOCTTY } = fs.constants
      stderrFd = fs.openSync('/proc/self/fd/2', O_WRONLY | O_NONBLOCK | O_NOCTTY)
    }
  } catch {
    // no /proc, or stderr closed: fd 2 as it is
  }
  return stderrFd
}

// One line on stderr, written synchronously (so it is not lost at exit and keeps its place among
// the app's own synchronous stderr writes) but never waiting: a line stderr cannot take now is
// dropped and counted. Never through process.stderr: an EPIPE there would be an 'error' event on
// the app's stream, which crashes an app that never wrote to stderr itself.
function writeLine(line) {
  const bytes = Buffer.from(`${line}\n`)
  try {
    if (fs.writeSync(lineFd(), bytes) < bytes.length) dropped++
  } catch {
    // EAGAIN (full), EPIPE (closed): a monitor drops its line rather than disturb the app.
    dropped++
  }
}

/** Lines memsentry could not write to stderr (full or closed) since the process started. */
function droppedLines() {
  return dropped
}

// An integer-looking string as a number; anything else as NaN, so that the constructor's range
// check produces the message (`must be an integer in 10..=3600000`), shown with the raw text.
function envNumber(raw) {
  return /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN
}

// '0', '0MiB', '0.0 GB', '0.4': a size of zero bytes once rounded, as the core reads it (the
// constructor judges every other text).
function zeroSize(raw) {
  const bytes = sizeStringToBytes(raw)
  return bytes !== null && Math.round(bytes) === 0
}

function formatDuration(ms) {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`
  const min = ms / 60_000
  if (min < 120) return `${min < 10 ? min.toFixed(1) : Math.round(min)} min`
  return `${(min / 60).toFixed(1)} h`
}

/**
 * Reads the MEMSENTRY_* variables. Returns { mode, fragments, notices }: `fragments` maps a
 * variable to { raw, apply(options), fallback(options) } for the variables that set a sentry
 * option; `notices` are lines to print (unknown variables, a bad MEMSENTRY_LOG).
 */
function readEnvironment(env) {
  const notices = []
  const value = (name) => {
    const raw = env[name]
    return typeof raw === 'string' && raw.trim() !== '' ? raw.trim() : undefined
  }

  let mode = DEFAULT_LOG_MODE
  const rawLog = value(VARS.log)
  if (rawLog !== undefined) {
    if (LOG_MODES.includes(rawLog.toLowerCase())) {
      mode = rawLog.toLowerCase()
    } else {
      notices.push(
        `memsentry: ${VARS.log} must be one of ${LOG_MODES.map(quote).join(', ')}, ` +
          `got ${quote(rawLog)}; using the default ${quote(DEFAULT_LOG_MODE)}`,
      )
    }
  }

  const fragments = new Map()
  const rawInterval = value(VARS.interval)
  if (rawInterval !== undefined) {
    fragments.set(VARS.interval, {
      raw: rawInterval,
      apply: (o) => (o.intervalMs = envNumber(rawInterval)),
      fallback: () => `using the default ${DEFAULT_INTERVAL_MS}`,
    })
  }
  const rawWarn = value(VARS.rssWarn)
  if (rawWarn !== undefined && zeroSize(rawWarn)) {
    // The core takes 0 bytes (a threshold that is always crossed); as a warning level it is a
    // mistake that would fire at once.
    notices.push(
      `memsentry: ${VARS.rssWarn} must be a size above 0 such as 600MiB, 1.5GB or 90%, ` +
        `got ${quote(rawWarn)}; no rss-warn threshold`,
    )
  } else if (rawWarn !== undefined) {
    fragments.set(VARS.rssWarn, {
      raw: rawWarn,
      apply: (o) => (o.thresholds = [{ name: 'rss-warn', metric: 'rss', above: rawWarn }]),
      fallback: () => 'no rss-warn threshold',
    })
  }
  const rawWindow = value(VARS.leakWindow)
  if (rawWindow !== undefined) {
    fragments.set(VARS.leakWindow, {
      raw: rawWindow,
      apply: (o) => (o.leak = { windowMs: envNumber(rawWindow) }),
      fallback: (o) => {
        const interval = Number.isInteger(o.intervalMs) ? o.intervalMs : DEFAULT_INTERVAL_MS
        return `using the default ${Math.max(DEFAULT_LEAK_WINDOW_MS, 4 * interval)}`
      },
    })
  }
  const rawDir = value(VARS.heapSnapshotDir)
  if (rawDir !== undefined) {
    fragments.set(VARS.heapSnapshotDir, {
      raw: rawDir,
      apply: (o) => (o.heapSnapshot = { dir: rawDir }),
      fallback: () => 'no heap snapshots',
    })
  }

  // A misspelt variable would otherwise be ignored without a word.
  for (const name of Object.keys(env)) {
    if (!name.startsWith('MEMSENTRY_') || KNOWN_VARS.includes(name)) continue
    const close = KNOWN_VARS.find(
      (known) => known.startsWith(name) || editDistance(name, known) <= 3,
    )
    if (close !== undefined)
      notices.push(`memsentry: unknown variable ${name} (did you mean ${close}?)`)
  }
  return { mode, fragments, notices }
}

function buildOptions(fragments) {
  // The leak detector reads V8's heap figures after GCs anyway; `heap: true` also puts them in
  // the samples, for the json lines and the Prometheus exporter's heap series (the dashboard's
  // "JS heap vs native" panel), at no cost more.
  const options = { heap: true }
  for (const fragment of fragments.values()) fragment.apply(options)
  return options
}

// The line for a constructor error caused by one variable: the constructor's message with the
// option replaced by the variable and the value by the variable's text.
function rejectionLine(name, fragment, err, options) {
  const message = String(err?.message ?? err).replace(/^memsentry: /, '')
  const match = /^\S+ (must be .*), got .*$/s.exec(message)
  const what = match
    ? `${name} ${match[1].replace(/\bintervalMs\b/g, VARS.interval)}, got ${quote(fragment.raw)}`
    : `${name}=${quote(fragment.raw)} was rejected: ${message}`
  return `memsentry: ${what}; ${fragment.fallback(options)}`
}

/**
 * Constructs the sentry, dropping (with one line each) the variables whose values the
 * constructor rejects. Returns the sentry, or null when memsentry cannot run here.
 */
function construct(MemorySentry, fragments, say) {
  for (let attempt = 0; attempt <= KNOWN_VARS.length; attempt++) {
    const options = buildOptions(fragments)
    try {
      return new MemorySentry(options)
    } catch (err) {
      const message = String(err?.message ?? err)
      const match = /^memsentry: (?:unknown option '([A-Za-z]+)'|([A-Za-z]+))/.exec(message)
      const option = match && (match[1] ?? match[2])
      const name = option && VAR_OF_OPTION[option]
      const fragment = name && fragments.get(name)
      if (!fragment) {
        say(
          `memsentry: not started (${message.replace(/^memsentry: /, '')}); the app runs unwatched`,
        )
        return null
      }
      if (match[1] !== undefined) {
        say(`memsentry: ${name} is not supported by this version of memsentry; ignored`)
      } else {
        say(rejectionLine(name, fragment, err, options))
      }
      fragments.delete(name)
    }
  }
  return null
}

// ---------------------------------------------------------------------------------------------
// Event lines

function textLines(format) {
  const { formatBytes } = format
  const perMin = (bytesPerSec) => `${formatBytes(bytesPerSec * 60)}/min`
  return {
    threshold(e) {
      const value = formatBytes(e.value)
      const line = formatBytes(e.threshold)
      return e.direction === 'down'
        ? `memsentry: threshold ${e.name} down: ${e.metric} ${value}, back below ${line}`
        : `memsentry: threshold ${e.name} up: ${e.metric} ${value}, above ${line}`
    },
    leak(e) {
      const parts = [
        `memsentry: leak: ${e.metric} growing ${perMin(e.slopeBytesPerSec)} ` +
          `over ${formatDuration(e.windowMs)} (+${formatBytes(e.growthBytes)}, ` +
          `confidence ${Math.round((e.confidence ?? 0) * 100)}%)`,
      ]
      if (e.suspect && e.suspect !== 'unknown') parts.push(`suspect ${e.suspect}`)
      if (e.msToLimit != null) parts.push(`limit reached in about ${formatDuration(e.msToLimit)}`)
      if (Array.isArray(e.routes) && e.routes.length > 0) {
        const routes = e.routes
          .slice(0, 3)
          .map((r) => `${r.route} (${formatBytes(r.bytesPerRequest)}/req)`)
        parts.push(`follows ${routes.join(', ')}`)
      }
      if (e.heapSnapshot) parts.push(`heap snapshot ${e.heapSnapshot}`)
      return parts.join(', ')
    },
    'leak-end'(e) {
      return `memsentry: leak ended: ${e.metric} no longer growing (${perMin(e.slopeBytesPerSec ?? 0)})`
    },
    // Where the leak allocates (heap) or what grew (native, child): empty when nothing was seen.
    'leak-diagnosis'(d) {
      return format.formatDiagnosis(d, { cwd: process.cwd() }) || null
    },
    oom(e) {
      const rss = e.sample?.rss != null ? ` (rss ${formatBytes(e.sample.rss)})` : ''
      return `memsentry: oom: the cgroup's OOM kill count rose to ${e.oomEvents}${rss}`
    },
    error(err) {
      const message = String(err?.message ?? err)
      const code = err?.code ? ` (${err.code})` : ''
      return `${message.startsWith('memsentry: ') ? '' : 'memsentry: '}${message}${code}`
    },
  }
}

function jsonLines() {
  const line = (event, e) => {
    const { sample, ...rest } = e ?? {}
    return JSON.stringify({
      event,
      time: sample?.time ?? Date.now(),
      pid: process.pid,
      ...rest,
      ...(sample?.rss != null ? { rss: sample.rss } : {}),
    })
  }
  return {
    threshold: (e) => line('threshold', e),
    leak: (e) => line('leak', e),
    'leak-end': (e) => line('leak-end', e),
    'leak-diagnosis': (d) => {
      // A pipe takes a write of up to PIPE_BUF bytes whole or not at all; a longer one can land
      // in part and tear the line. The top sites with the head of their stacks fit in that.
      const sites = (d?.sites ?? [])
        .slice(0, MAX_JSON_SITES)
        .map((s) => ({ ...s, stack: (s.stack ?? []).slice(0, MAX_JSON_FRAMES) }))
      const listed = sites.reduce((sum, s) => sum + (s.bytes ?? 0), 0)
      const otherBytes = Math.max(0, (d?.sampledBytes ?? 0) - listed)
      const full = line('leak-diagnosis', { ...d, sites, otherBytes })
      if (Buffer.byteLength(full) < PIPE_BUF) return full
      return line('leak-diagnosis', { ...d, sites: sites.map(({ stack, ...s }) => s), otherBytes })
    },
    oom: (e) => line('oom', e),
    error: (err) =>
      JSON.stringify({
        event: 'error',
        time: Date.now(),
        pid: process.pid,
        code: err?.code,
        path: err?.path,
        message: String(err?.message ?? err),
      }),
  }
}

// A sample as one JSON line. With some 27 children or more, the per-child list takes it past
// PIPE_BUF, and a pipe may then take the write in part and tear the line: such a line keeps the
// sums (childrenRss, treeRss) and leaves the list out, as history() entries do.
function jsonSampleLine(format, s) {
  const full = format.formatJson(s)
  if (Buffer.byteLength(full) < PIPE_BUF || !Array.isArray(s?.children)) return full
  const { children, ...sums } = s
  return format.formatJson(sums)
}

function attachLog(sentry, mode, format, say) {
  if (mode === 'off') return
  const lines = mode === 'json' ? jsonLines() : textLines(format)
  for (const event of ['threshold', 'leak', 'leak-end', 'leak-diagnosis', 'oom', 'error']) {
    sentry.on(event, (e) => {
      try {
        const text = lines[event](e)
        if (text) say(text)
      } catch {
        // A listener throwing would surface in the app as an uncaught exception.
      }
    })
  }
  // A line per sample only when asked for: by default an app's stderr gets events alone.
  if (mode === 'events') return
  const sampleLine =
    mode === 'json' ? (s) => jsonSampleLine(format, s) : (s) => format.formatPidstat(s)
  if (mode === 'pidstat') say(format.pidstatHeader())
  sentry.on('sample', (s) => {
    try {
      say(sampleLine(s))
    } catch {
      // as above
    }
  })
}

// ---------------------------------------------------------------------------------------------

function register() {
  const previous = globalThis[REGISTERED]
  if (previous !== undefined) return previous
  // Marked before anything can fail, so a failing start is not retried by a second preload.
  Object.defineProperty(globalThis, REGISTERED, {
    value: null,
    writable: true,
    configurable: true,
    enumerable: false,
  })
  const { mode, fragments, notices } = readEnvironment(process.env)
  // In json mode every line memsentry writes is JSON, so a log pipeline can parse them all.
  const notice =
    mode === 'json'
      ? (message) =>
          writeLine(
            JSON.stringify({ event: 'warning', time: Date.now(), pid: process.pid, message }),
          )
      : writeLine
  for (const line of notices) notice(line)

  let MemorySentry
  let format
  try {
    ;({ MemorySentry } = require('../index.js'))
    format = require('./format.js')
  } catch (err) {
    const message = String(err?.message ?? err).split('\n')[0]
    notice(
      `memsentry: not started (${message.replace(/^memsentry: /, '')}); the app runs unwatched`,
    )
    return null
  }
  const created = construct(MemorySentry, fragments, notice)
  if (created === null) return null
  try {
    created.unref()
    attachLog(created, mode, format, writeLine)
  } catch (err) {
    notice(`memsentry: logging not set up (${String(err?.message ?? err)})`)
  }
  globalThis[REGISTERED] = created
  return created
}

// The sentry lives as long as this module (module scope), so it is never garbage-collected.
let sentry = null
if (isMainThread) {
  try {
    sentry = register()
  } catch (err) {
    writeLine(`memsentry: not started (${String(err?.message ?? err)}); the app runs unwatched`)
  }
}

module.exports = { sentry, droppedLines }
