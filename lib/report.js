'use strict'

// The report page: one self-contained HTML file with a sentry's history drawn as a chart. Written
// by `sentry.writeReport(file)`, by the `leak: { report: dir }` option (./leak-actions.js), and
// served live by memsentry/dashboard; memsentry/report is its public entry.
//
// The file needs no network to be viewed: uPlot's JS and CSS (the `uplot` package) are inlined,
// the data is embedded as JSON, and a Content-Security-Policy forbids every fetch. It draws, over
// `sentry.history()`: RSS (and PSS with `smaps`), heapUsed and external (with `heap: true`),
// treeRss (children watched), the cgroup's usage and working set, the memory limit and every
// threshold as horizontal lines, leak episodes shaded with their slope and suspect, and threshold,
// child and OOM events as markers (the events ./recorder.js kept). Times are shown in the viewer's
// local time zone.
//
// Command lines: arguments can hold secrets (`--token=...`), so children's command lines and this
// process's arguments are left out of every report unless `includeCmdline: true`. The header then
// shows process.title, the executable and the main script only.
//
// The page itself (template, client JS and CSS) lives in ./report-page/.

const fs = require('node:fs')
const path = require('node:path')

const { attach, recordedEvents } = require('./recorder')
const { checkKnownKeys, ownOptions, typeError } = require('./validation')
const { metric } = require('./metrics')

const WHO = 'memsentry/report'

const PAGE_DIR = path.join(__dirname, 'report-page')

/** Children listed in a report (the newest sample's; the biggest first). */
const MAX_CHILDREN = 200
/**
 * Points drawn at most. A longer history (historySize goes up to 1,000,000) is thinned to the
 * sample with the highest RSS of each run of consecutive samples, so peaks survive; the default
 * 3600 is drawn whole.
 */
const MAX_POINTS = 20_000

// The series a report may draw, in legend order: [key in the data, how to read it from a Sample]
// (the metric table's reader).
const SERIES = ['rss', 'pss', 'heapUsed', 'external', 'treeRss', 'cgroupUsage', 'workingSet'].map(
  (name) => [name, metric(name).read],
)

// ---------------------------------------------------------------------------------------------
// The data a page draws

function finiteOrNull(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

/** Leak episodes from 'leak' / 'leak-end' events: the analysed window up to the end (or now). */
function leakEpisodes(events) {
  const episodes = []
  let open = null
  for (const e of events) {
    if (e.type === 'leak-diagnosis') {
      // The episode's diagnosis may come after its 'leak-end'.
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
 * Looked up once: a live view asks on every poll, and a stat() is a syscall on the loop.
 */
let mainScriptFound
function mainScript() {
  mainScriptFound ??= { path: findMainScript() }
  return mainScriptFound.path
}

function findMainScript() {
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
 * eventsDropped, trigger, historyLength } (all optional; historyLength: the samples `history` was
 * thinned from, for the page's note that it is).
 */
function buildData(history, events = [], meta = {}, { includeCmdline = false } = {}) {
  const options = meta.options ?? {}
  const latest = meta.latest ?? history[history.length - 1] ?? null
  const limit = finiteOrNull(meta.limit) ?? finiteOrNull(latest?.cgroup?.limit) ?? null
  const proc = meta.process ?? processInfo(includeCmdline)
  // A sentry's history({ maxPoints }) is thinned already, to at most MAX_POINTS plus the newest.
  const drawn = thin(history, MAX_POINTS + 1)
  const held = Math.max(history.length, meta.historyLength ?? 0)
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
    series: columns(drawn, { children: options.children }),
    ...(held > drawn.length ? { thinnedFrom: held } : {}),
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
  // code and MAX_POINTS samples here, not a million objects. Its length is read first, so a tick
  // in between cannot make a whole history look thinned.
  const historyLength = sinceMs == null ? sentry.stats?.().historyLength : undefined
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
      historyLength,
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
    // writeFileSync loops until all is written (writeSync is one write(), which may be short
    // when the disk fills): a short file must be an error, never a report.
    fs.writeFileSync(fd, content)
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

function checkReportOptions(given, where) {
  if (given == null) return Object.create(null)
  if (typeof given !== 'object') {
    throw typeError(`${where} options`, 'an object', given, WHO)
  }
  checkKnownKeys(given, ['includeCmdline', 'title'], '', `${WHO}: ${where}`)
  const opts = ownOptions(given)
  if (opts.includeCmdline !== undefined && typeof opts.includeCmdline !== 'boolean') {
    throw typeError('includeCmdline', 'a boolean', opts.includeCmdline, WHO)
  }
  if (opts.title !== undefined && typeof opts.title !== 'string') {
    throw typeError('title', 'a string', opts.title, WHO)
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
    throw typeError('file', 'a non-empty string', file, WHO)
  }
  const target = path.resolve(file)
  writePrivate(target, renderHtml(collectData(sentry, { includeCmdline, title })))
  return target
}

module.exports = {
  writeReport,
  writePrivate,
  checkReportOptions,
  collectData,
  buildData,
  renderHtml,
  scriptJson,
  MAX_POINTS,
}
