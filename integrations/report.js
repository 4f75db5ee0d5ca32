'use strict'

// memsentry/report: one self-contained HTML file with a sentry's history drawn as a chart.
//
//   const { MemorySentry } = require('memsentry')
//   const { attach, writeReport } = require('memsentry/report')
//   const sentry = new MemorySentry({ intervalMs: 1000 })
//   attach(sentry)                                   // start recording events now (optional)
//   // ... later, e.g. on SIGUSR2 or from an admin route:
//   writeReport(sentry, '/tmp/memory.html')          // mode 0600; open it in any browser
//
// The file needs no network to be viewed: uPlot's JS and CSS (the `uplot` package) are inlined,
// the data is embedded as JSON, and a Content-Security-Policy forbids every fetch. It draws, over
// `sentry.history()`: RSS (and PSS with `smaps`), heapUsed and external (with `heap: true`),
// treeRss (children watched), the cgroup's usage and working set, the memory limit and every
// threshold as horizontal lines, leak episodes shaded with their slope and suspect, and threshold,
// child and OOM events as markers. Times are shown in the viewer's local time zone.
//
// Events: a sample history is kept by the sentry itself, but events are not. `attach(sentry)`
// subscribes to its 'threshold', 'leak', 'leak-end', 'leak-diagnosis', 'child' and 'oom' events
// and keeps the last 1000 in memory (per sentry, dropped with it). A leak episode shows its
// diagnosis: the code that allocates what leaks (or, for a native suspect, what grew). `writeReport` attaches on first use, so events
// emitted before the first `attach` or `writeReport` call are not in any report: call `attach`
// right after creating the sentry to have them all.
//
// Command lines: arguments can hold secrets (`--token=...`), so children's command lines and this
// process's arguments are left out of every report unless `includeCmdline: true`. The header then
// shows process.title, the executable and the main script only.
//
// `writeLeakReport(sentry, dir, event)` is what the sentry's `leak: { report: dir }` option calls
// when a leak is confirmed: it returns the path at once and writes the file off the hot path
// (setImmediate), at most MAX_LEAK_REPORTS in the life of the process. When the episode's
// 'leak-diagnosis' comes (a profiler run later), the same file is written again with it.
//
// The page itself (template, client JS and CSS) lives in ./report-page/; ./dashboard.js serves the
// same page live.

const fs = require('node:fs')
const path = require('node:path')
const { formatSite } = require('./format')

const PAGE_DIR = path.join(__dirname, 'report-page')

/** Events kept per sentry (a ring: the oldest are dropped first). */
const MAX_EVENTS = 1000
/** Leak reports written in the life of the process, across sentries. */
const MAX_LEAK_REPORTS = 5
/** Allocation sites kept per leak diagnosis, and stack frames per site. */
const MAX_SITES = 10
const MAX_FRAMES = 8
/** Children listed in a report (the newest sample's; the biggest first). */
const MAX_CHILDREN = 200
/**
 * Points drawn at most. A longer history (historySize goes up to 1,000,000) is thinned to the
 * sample with the highest RSS of each run of consecutive samples, so peaks survive; the default
 * 3600 is drawn whole.
 */
const MAX_POINTS = 20_000

// The series a report may draw, in legend order: [key in the data, how to read it from a Sample].
const SERIES = [
  ['rss', (s) => s.rss],
  ['pss', (s) => s.pss],
  ['heapUsed', (s) => s.heapUsed],
  ['external', (s) => s.external],
  ['treeRss', (s) => s.treeRss],
  ['cgroupUsage', (s) => s.cgroup?.usage],
  ['workingSet', (s) => s.cgroup?.workingSet],
]

// ---------------------------------------------------------------------------------------------
// Events: a bounded ring per sentry, filled by listeners added at attach()

/** sentry → { events, dropped, since, records: WeakMap(payload → record) } */
const recorders = new WeakMap()

function eventTime(payload) {
  const t = payload?.sample?.time
  return typeof t === 'number' ? Math.round(t) : Date.now()
}

/** A compact copy of an event, without its Sample (the history has the figures). */
function compactEvent(type, payload) {
  const time = eventTime(payload)
  switch (type) {
    case 'threshold':
      return {
        type,
        time,
        name: payload.name,
        metric: payload.metric,
        threshold: payload.threshold,
        value: payload.value,
        direction: payload.direction,
        ...(payload.pid != null ? { pid: payload.pid, comm: payload.comm } : {}),
      }
    case 'leak':
    case 'leak-end':
      return {
        type,
        time,
        metric: payload.metric,
        slopeBytesPerSec: payload.slopeBytesPerSec,
        growthBytes: payload.growthBytes,
        windowMs: payload.windowMs,
        confidence: payload.confidence,
        msToLimit: payload.msToLimit ?? null,
        suspect: payload.suspect,
        ...(payload.routes ? { routes: payload.routes.slice(0, 10) } : {}),
        ...(payload.heapSnapshot ? { heapSnapshot: payload.heapSnapshot } : {}),
        ...(payload.report ? { report: payload.report } : {}),
      }
    case 'child':
      // A child event carries comm, never the command line; `cmdline` is kept only in case a
      // later version adds it, and is stripped when the report is built without includeCmdline.
      return {
        type,
        time,
        change: payload.type,
        pid: payload.pid,
        ppid: payload.ppid,
        comm: payload.comm,
        ...(payload.rss != null ? { rss: payload.rss } : {}),
        ...(payload.seenMs != null ? { seenMs: payload.seenMs } : {}),
        ...(payload.cmdline != null ? { cmdline: payload.cmdline } : {}),
      }
    case 'leak-diagnosis':
      // Its time is when it came; `since` + `durationMs` is the span it describes.
      return {
        type,
        time: Date.now(),
        since: payload.since,
        durationMs: payload.durationMs,
        suspect: payload.suspect,
        samplingIntervalBytes: payload.samplingIntervalBytes ?? null,
        sampledBytes: payload.sampledBytes ?? 0,
        sites: (payload.sites ?? []).slice(0, MAX_SITES).map((s) => ({
          functionName: s.functionName,
          url: s.url,
          line: s.line,
          column: s.column,
          where: formatSite(s),
          bytes: s.bytes,
          share: s.share,
          count: s.count,
          stack: (s.stack ?? []).slice(0, MAX_FRAMES),
        })),
        ...(payload.native ? { native: payload.native } : {}),
      }
    case 'oom':
      return { type, time, oomEvents: payload.oomEvents ?? null }
    default:
      return { type, time }
  }
}

function record(recorder, type, payload) {
  if (payload != null && typeof payload === 'object') {
    if (recorder.records.has(payload)) return recorder.records.get(payload)
  }
  const entry = compactEvent(type, payload ?? {})
  if (payload != null && typeof payload === 'object') {
    recorder.records.set(payload, entry)
    // Other listeners may add to a leak event after this one ran (memsentry/koa adds `routes`,
    // the leak report its path): keep the event itself (not enumerable, so never serialized) to
    // read those when a report is built. Leak events are few: one per episode.
    if (type === 'leak') Object.defineProperty(entry, 'source', { value: payload })
  }
  recorder.events.push(entry)
  recorder.count++
  if (recorder.events.length > MAX_EVENTS) {
    recorder.events.splice(0, recorder.events.length - MAX_EVENTS)
    recorder.dropped++
  }
  return entry
}

/**
 * Starts recording `sentry`'s threshold, leak, leak-end, child and oom events for reports (the
 * last 1000). Idempotent; returns the sentry. Events emitted before the first call are not known.
 */
function attach(sentry) {
  if (sentry == null || typeof sentry.on !== 'function') {
    throw new TypeError('memsentry/report: attach(sentry) needs a MemorySentry')
  }
  if (recorders.has(sentry)) return sentry
  const recorder = { events: [], count: 0, dropped: 0, since: Date.now(), records: new WeakMap() }
  recorders.set(sentry, recorder)
  // The listeners hold the recorder, not the sentry: an abandoned sentry is still collectable.
  for (const type of ['threshold', 'leak', 'leak-end', 'leak-diagnosis', 'child', 'oom']) {
    sentry.on(type, (payload) => record(recorder, type, payload))
  }
  // The leak report written for this episode is written again with its diagnosis. The listener
  // holds the sentry weakly, like the recorder's.
  const ref = new WeakRef(sentry)
  sentry.on('leak-diagnosis', () => {
    const written = recorder.leakReport
    recorder.leakReport = null
    const s = ref.deref()
    if (written && s) setImmediate(() => renderLeakReport(s, written))
  })
  return sentry
}

/** How many events were ever recorded for `sentry`: changes whenever its events do. */
function eventCount(sentry) {
  return recorders.get(sentry)?.count ?? 0
}

/** The events recorded for `sentry` (oldest first) and since when, or null when not attached. */
function recordedEvents(sentry) {
  const recorder = recorders.get(sentry)
  if (!recorder) return null
  const events = recorder.events.map((e) => {
    const src = e.source
    if (!src) return e
    return {
      ...e,
      ...(Array.isArray(src.routes) ? { routes: src.routes.slice(0, 10) } : {}),
      ...(src.heapSnapshot ? { heapSnapshot: src.heapSnapshot } : {}),
      ...(src.report ? { report: src.report } : {}),
    }
  })
  return { events, since: recorder.since, dropped: recorder.dropped }
}

// ---------------------------------------------------------------------------------------------
// The data a page draws

function finiteOrNull(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

/**
 * Leak episodes from 'leak' / 'leak-end' events: the analysed window up to the end (or now), with
 * the episode's 'leak-diagnosis' (which may come after its 'leak-end') as `diagnosis`.
 */
function leakEpisodes(events) {
  const episodes = []
  let open = null
  for (const e of events) {
    if (e.type === 'leak-diagnosis') {
      const ep = open ?? episodes[episodes.length - 1]
      if (ep && !ep.diagnosis) {
        const { type, time, ...diagnosis } = e
        ep.diagnosis = diagnosis
      }
    } else if (e.type === 'leak') {
      if (open) episodes.push(open)
      const windowMs = finiteOrNull(e.windowMs) ?? 0
      open = {
        start: e.time - windowMs,
        detected: e.time,
        end: null,
        metric: e.metric,
        slopeBytesPerSec: e.slopeBytesPerSec,
        growthBytes: e.growthBytes,
        windowMs,
        confidence: e.confidence,
        msToLimit: e.msToLimit,
        suspect: e.suspect,
        ...(e.routes ? { routes: e.routes } : {}),
        ...(e.heapSnapshot ? { heapSnapshot: e.heapSnapshot } : {}),
        ...(e.report ? { report: e.report } : {}),
      }
    } else if (e.type === 'leak-end' && open) {
      open.end = e.time
      episodes.push(open)
      open = null
    }
  }
  if (open) episodes.push(open)
  return episodes
}

/** Horizontal lines: the limit, memory.high, every threshold resolved to bytes. */
function horizontalLines(options, limit, cgroup) {
  const lines = []
  if (limit != null) lines.push({ kind: 'limit', name: 'limit', metric: null, bytes: limit })
  const high = finiteOrNull(cgroup?.high)
  if (high != null && high !== limit) {
    lines.push({ kind: 'high', name: 'memory.high', metric: null, bytes: high })
  }
  for (const t of options?.thresholds ?? []) {
    let bytes = finiteOrNull(t.above)
    if (bytes == null && finiteOrNull(t.abovePercent) != null && limit != null) {
      bytes = (t.abovePercent / 100) * limit
    }
    if (bytes == null) continue
    lines.push({
      kind: 'threshold',
      name: t.name ?? `${t.metric}>${bytes}`,
      metric: t.metric ?? 'rss',
      bytes: Math.round(bytes),
      ...(t.abovePercent != null ? { percent: t.abovePercent } : {}),
    })
  }
  return lines
}

/** At most `max` samples: the highest-RSS sample of each run of ceil(n / max), and the last. */
function thin(history, max) {
  const n = history.length
  if (n <= max) return history
  const run = Math.ceil(n / max)
  const out = []
  for (let i = 0; i < n; i += run) {
    let best = history[i]
    for (let j = i + 1; j < Math.min(i + run, n); j++) {
      if ((history[j].rss ?? -1) > (best.rss ?? -1)) best = history[j]
    }
    out.push(best)
  }
  if (out[out.length - 1] !== history[n - 1]) out.push(history[n - 1])
  return out
}

/** Columns { time, rss, ... } from samples; a series with no value at all is left out. */
function columns(history, { children }) {
  const n = history.length
  const out = { time: new Array(n) }
  for (let i = 0; i < n; i++) out.time[i] = Math.round(history[i].time)
  for (const [key, read] of SERIES) {
    if (key === 'treeRss' && children === 'none') continue
    const col = new Array(n)
    let any = false
    for (let i = 0; i < n; i++) {
      const v = finiteOrNull(read(history[i]))
      col[i] = v
      if (v !== null) any = true
    }
    if (any) out[key] = col
  }
  return out
}

function latestFigures(s) {
  if (!s) return null
  const pick = (keys) => {
    const o = {}
    for (const k of keys) if (s[k] !== undefined) o[k] = s[k]
    return o
  }
  return {
    ...pick([
      'time',
      'pid',
      'rss',
      'hwm',
      'vsz',
      'rssAnon',
      'rssFile',
      'swap',
      'memPercent',
      'threads',
      'pss',
      'uss',
      'heapUsed',
      'heapTotal',
      'external',
      'arrayBuffers',
      'childrenRss',
      'treeRss',
      'treePss',
    ]),
    cgroup: s.cgroup
      ? {
          version: s.cgroup.version,
          usage: s.cgroup.usage,
          workingSet: s.cgroup.workingSet,
          limit: s.cgroup.limit,
          high: s.cgroup.high,
          oomEvents: s.cgroup.oomEvents,
          pressure: s.cgroup.pressure ?? null,
        }
      : null,
  }
}

function childList(children, includeCmdline) {
  if (!Array.isArray(children)) return []
  return children
    .slice()
    .sort((a, b) => (b.rss ?? 0) - (a.rss ?? 0))
    .slice(0, MAX_CHILDREN)
    .map((c) => ({
      pid: c.pid,
      ppid: c.ppid,
      comm: c.comm,
      rss: c.rss ?? null,
      ...(c.pss != null ? { pss: c.pss } : {}),
      ...(includeCmdline && c.cmdline != null ? { cmdline: c.cmdline } : {}),
    }))
}

let packageVersion = null
function memsentryVersion() {
  if (packageVersion === null) {
    try {
      packageVersion = require('../package.json').version
    } catch {
      packageVersion = ''
    }
  }
  return packageVersion
}

/**
 * The main script's path, or null. argv[1] is that only when Node runs a file: with `-e`/`-p`
 * (or a script read from stdin) it is the user's first argument, which may be a secret
 * (`--api-key=...`), so it is shown only when it names a regular file and no eval flag is set.
 */
function mainScript() {
  const arg = process.argv[1]
  if (typeof arg !== 'string' || arg === '' || arg === '-') return null
  const evalFlag = /^(?:-e|--eval|-p|--print|-pe|-ep)(?:=|$)/
  if (process.execArgv.some((a) => evalFlag.test(a))) return null
  try {
    return fs.statSync(arg).isFile() ? arg : null
  } catch {
    return null
  }
}

/** What the header says about the process. Arguments only with includeCmdline. */
function processInfo(includeCmdline) {
  const info = {
    pid: process.pid,
    title: process.title,
    exec: process.execPath,
    script: mainScript(),
    node: process.version,
    uptimeMs: Math.round(process.uptime() * 1000),
    memsentry: memsentryVersion(),
  }
  if (includeCmdline) {
    info.argv = process.argv.slice()
    info.execArgv = process.execArgv.slice()
  }
  return info
}

/**
 * The page's data, from plain inputs (no sentry needed: tests and tools feed it synthetic
 * figures). `history` is Sample[] oldest first; `events` compact events as `attach` records them
 * (type, time, ...); `meta` carries { options, limit, latest, process, title, eventsSince,
 * eventsDropped, trigger } (all optional).
 */
function buildData(history, events = [], meta = {}, { includeCmdline = false } = {}) {
  const options = meta.options ?? {}
  const latest = meta.latest ?? history[history.length - 1] ?? null
  const limit = finiteOrNull(meta.limit) ?? finiteOrNull(latest?.cgroup?.limit) ?? null
  const proc = meta.process ?? processInfo(includeCmdline)
  const evs = events.map((e) => {
    if (includeCmdline || e.cmdline === undefined) return e
    const { cmdline, ...rest } = e
    return rest
  })
  return {
    version: 1,
    title: meta.title ?? `memsentry: pid ${proc.pid}`,
    generatedAt: Date.now(),
    process: proc,
    sentry: {
      intervalMs: options.intervalMs ?? null,
      historySize: options.historySize ?? null,
      children: options.children ?? null,
      leakWindowMs: options.leak ? (options.leak.windowMs ?? null) : null,
      leakMinSlope: options.leak ? (options.leak.minSlope ?? null) : null,
    },
    latest: latestFigures(latest),
    children: childList(latest?.children, includeCmdline),
    series: columns(thin(history, MAX_POINTS), { children: options.children }),
    ...(history.length > MAX_POINTS ? { thinnedFrom: history.length } : {}),
    lines: horizontalLines(options, limit, latest?.cgroup),
    leaks: leakEpisodes(evs),
    events: evs,
    eventsSince: meta.eventsSince ?? null,
    eventsDropped: meta.eventsDropped ?? 0,
    trigger: meta.trigger ?? null,
    live: meta.live ?? null,
  }
}

function sentryLimit(sentry, options) {
  return (
    finiteOrNull(sentry.limit) ??
    finiteOrNull(options?.limit) ??
    finiteOrNull(sentry.latest?.cgroup?.limit) ??
    null
  )
}

/**
 * The page's data for a live sentry. With `sinceMs`, only samples newer than that go in the
 * series (the live page's polls); events, lines and figures are always whole.
 */
function collectData(sentry, { includeCmdline = false, title, sinceMs, trigger, live } = {}) {
  attach(sentry)
  const options = sentry.options ?? {}
  // Thinned by the sentry itself: a history of up to 1,000,000 samples costs a scan in native
  // code and MAX_POINTS samples here, not a million objects.
  const history = sentry.history({ sinceMs: sinceMs ?? 0, maxPoints: MAX_POINTS })
  // history({ sinceMs }) includes a sample taken at exactly sinceMs; the page wants newer ones.
  const samples = sinceMs != null ? history.filter((s) => Math.round(s.time) > sinceMs) : history
  const rec = recordedEvents(sentry)
  return buildData(
    samples,
    rec.events,
    {
      options,
      limit: sentryLimit(sentry, options),
      latest: sentry.latest ?? history[history.length - 1] ?? null,
      title,
      eventsSince: rec.since,
      eventsDropped: rec.dropped,
      trigger,
      live,
    },
    { includeCmdline },
  )
}

// ---------------------------------------------------------------------------------------------
// The page

let assets = null
function pageAssets() {
  if (assets === null) {
    const read = (file) => fs.readFileSync(file, 'utf8')
    assets = {
      template: read(path.join(PAGE_DIR, 'template.html')),
      css: read(path.join(PAGE_DIR, 'page.css')),
      js: read(path.join(PAGE_DIR, 'page.js')),
      uplotJs: read(require.resolve('uplot/dist/uPlot.iife.min.js')),
      uplotCss: read(require.resolve('uplot/dist/uPlot.min.css')),
    }
  }
  return assets
}

/**
 * JSON that is safe inside <script type="application/json">: '<', '>' and '&' are escaped as
 * \u003c, \u003e, \u0026 (still the same JSON), so '</script>' or '<!--' in any string (a command
 * line, a route, a title) cannot end the element. U+2028/2029 are escaped for old parsers.
 */
function scriptJson(value) {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

/** Inline JS that cannot end its <script> element. */
function scriptText(js) {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--')
}

function styleText(css) {
  return css.replace(/<\/(style)/gi, '<\\/$1')
}

function htmlText(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
}

// A report file may fetch nothing; the live page may fetch its own data.json.
const CSP_FILE =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'none'"
const CSP_LIVE =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'"

/** The whole HTML page for `data` (from buildData / collectData). */
function renderHtml(data) {
  const a = pageAssets()
  const parts = {
    TITLE: htmlText(data.title ?? 'memsentry report'),
    CSP: htmlText(data.live ? CSP_LIVE : CSP_FILE),
    UPLOT_CSS: styleText(a.uplotCss),
    PAGE_CSS: styleText(a.css),
    DATA: scriptJson(data),
    UPLOT_JS: scriptText(a.uplotJs),
    PAGE_JS: scriptText(a.js),
  }
  // One pass, with a function: '$' in the inlined code must not be read as a replacement pattern.
  // Placeholders are `{{NAME}}`, or `/* {{NAME}} */` where the template must stay valid CSS/JS.
  return a.template.replace(/\/\* \{\{(\w+)\}\} \*\/|\{\{(\w+)\}\}/g, (m, k1, k2) => {
    const key = k1 ?? k2
    return Object.hasOwn(parts, key) ? parts[key] : m
  })
}

/**
 * Writes `content` to `file` with mode 0600, atomically: a new temporary file (O_EXCL, 0600) in
 * the same directory, renamed over `file`. An existing file (or a symlink planted there) is
 * replaced, never written through, and never keeps a wider mode. With `exclusive`, an existing
 * `file` is an EEXIST error instead.
 */
function writePrivate(file, content, { exclusive = false } = {}) {
  const dir = path.dirname(file)
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`)
  const fd = fs.openSync(tmp, 'wx', 0o600)
  try {
    fs.fchmodSync(fd, 0o600) // in case the umask took bits away that 0600 needs
    fs.writeSync(fd, content)
    fs.fsyncSync(fd)
  } catch (err) {
    fs.closeSync(fd)
    fs.rmSync(tmp, { force: true })
    throw err
  }
  fs.closeSync(fd)
  try {
    // link() fails with EEXIST instead of replacing: `exclusive` never overwrites a file.
    if (exclusive) fs.linkSync(tmp, file)
    else fs.renameSync(tmp, file)
  } finally {
    fs.rmSync(tmp, { force: true })
  }
}

function checkReportOptions(opts, where) {
  if (opts == null) return {}
  if (typeof opts !== 'object') {
    throw new TypeError(`memsentry/report: ${where} options must be an object, got ${typeof opts}`)
  }
  for (const key of Object.keys(opts)) {
    if (key !== 'includeCmdline' && key !== 'title') {
      throw new TypeError(`memsentry/report: unknown ${where} option '${key}'`)
    }
  }
  if (opts.includeCmdline !== undefined && typeof opts.includeCmdline !== 'boolean') {
    throw new TypeError(
      `memsentry/report: includeCmdline must be a boolean, got ${typeof opts.includeCmdline}`,
    )
  }
  if (opts.title !== undefined && typeof opts.title !== 'string') {
    throw new TypeError(`memsentry/report: title must be a string, got ${typeof opts.title}`)
  }
  return opts
}

/**
 * Writes one self-contained HTML report of `sentry` to `file` (mode 0600, replacing the file
 * atomically) and returns its absolute path. Synchronous: a few milliseconds for 3600 samples.
 * Children's command lines and this process's arguments only with `includeCmdline: true`.
 */
function writeReport(sentry, file, options) {
  const { includeCmdline = false, title } = checkReportOptions(options, 'writeReport')
  if (typeof file !== 'string' || file === '') {
    throw new TypeError(`memsentry/report: file must be a non-empty string, got ${typeof file}`)
  }
  const target = path.resolve(file)
  writePrivate(target, renderHtml(collectData(sentry, { includeCmdline, title })))
  return target
}

let leakReportsWritten = 0

/** Writes a leak report (see writeLeakReport); false on failure (an 'error' event). */
function renderLeakReport(sentry, { file, time, includeCmdline, exclusive }) {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
    const trigger = { type: 'leak', time, report: file }
    const title = `memsentry: leak in pid ${process.pid}`
    const html = renderHtml(collectData(sentry, { includeCmdline, title, trigger }))
    writePrivate(file, html, { exclusive })
    return true
  } catch (err) {
    if (typeof sentry.listenerCount === 'function' && sentry.listenerCount('error') > 0) {
      const e = new Error(`memsentry: leak report not written: ${err.message}`)
      e.code = err.code ?? 'EIO'
      e.path = file
      sentry.emit('error', e)
    }
    return false
  }
}

/**
 * For the sentry's `leak: { report: dir }` option, called with each 'leak' event: returns the
 * path `<dir>/memsentry-leak-<pid>-<time>.html` at once, sets it on `event.report`, and writes the
 * report in a setImmediate callback (off the sampler callback's path). At most MAX_LEAK_REPORTS
 * (5) in the life of the process; past that it returns null and writes nothing. A failure is
 * reported as an 'error' event on the sentry (only when someone listens), with the system error's
 * code (EACCES, ENOSPC, EEXIST...) and `path`; the process goes on.
 */
function writeLeakReport(sentry, dir, event, options) {
  const { includeCmdline = false } = checkReportOptions(options, 'writeLeakReport')
  if (typeof dir !== 'string' || dir === '') {
    throw new TypeError(`memsentry/report: dir must be a non-empty string, got ${typeof dir}`)
  }
  if (leakReportsWritten >= MAX_LEAK_REPORTS) return null
  leakReportsWritten++
  attach(sentry)
  const time = eventTime(event)
  const stamp = new Date(time).toISOString().replace(/[:.]/g, '-')
  const file = path.join(path.resolve(dir), `memsentry-leak-${process.pid}-${stamp}.html`)
  if (event != null && typeof event === 'object') event.report = file
  const job = { file, time, includeCmdline, exclusive: true }
  setImmediate(() => {
    // The event may not have reached the recorder yet (this runs before or inside its emit).
    const recorder = recorders.get(sentry)
    if (event != null && typeof event === 'object' && recorder) record(recorder, 'leak', event)
    // Its diagnosis, when it comes, rewrites the file this wrote (see attach).
    if (renderLeakReport(sentry, job) && recorder) {
      recorder.leakReport = { ...job, exclusive: false }
    }
  })
  return file
}

module.exports = {
  attach,
  writeReport,
  writeLeakReport,
  // For ./dashboard.js and tests:
  collectData,
  buildData,
  renderHtml,
  scriptJson,
  recordedEvents,
  eventCount,
  MAX_EVENTS,
  MAX_LEAK_REPORTS,
  MAX_POINTS,
}
