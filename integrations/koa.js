'use strict'

// memsentry/koa: a memory report per batch of requests, for Koa (`memoryLogger`) and for plain
// node:http or Express (`memoryLogger.http`).
//
//   const { memoryLogger } = require('memsentry/koa')
//   app.use(memoryLogger({ every: 1000 }))
//
// Each batch (every `every` requests, or every `everyMs` milliseconds, whichever comes first when
// both are given) hands `log` one report:
//   { requests, ms, reqPerSec, rss, rssDelta, heapUsed?, heapDelta?, treeRss?, workingSet?,
//     routes?: { 'GET /orders/:id': 600, ... }, suspectRoutes?: [{ route, bytesPerRequest }],
//     leakSites?: [{ functionName, url, line, column, share }] }
// Fields whose figures the sentry does not have (heap without `heap: true`, workingSet outside a
// cgroup, treeRss without children) are left out.
//
// Per request the logger only counts (no procfs read, no native call); the memory figures come
// once per batch from `sentry.latest`, the sampler thread's newest sample (or `rss()` before the
// first sample). The Koa form counts a request as soon as its route is known: when the router
// matched it synchronously (no await upstream of the router), right after calling `next()`, with
// no async frame of its own; else when it is done.
//
// Route attribution: while the sentry is in a leak episode (`sentry.leakEpisode`, read at each
// batch end), reports carry `suspectRoutes`, the routes whose requests the memory growth follows, and the
// 'leak' event itself gets `routes` with the same list (its listener is prepended, so listeners
// added later see it). The growth is measured from GC to GC on the V8 heap (metric 'heap', the
// default: one PerformanceObserver for 'gc' entries, started on the first request) or from
// sample to sample on RSS (metric 'rss'); see ./routes.js for the fit.
//
// Leak sites: once the sentry's 'leak-diagnosis' for the episode is in, reports carry
// `leakSites`, the top three allocation sites (the code), until 'leak-end'.
//
// Without a `sentry` option the logger creates one (intervalMs 1000, leak detection and heap
// figures on), starts it on its first request and closes it when the server that served that
// request closes (it listens to `ctx.req.socket.server`'s 'close' event). `middleware.close()`
// closes it too. Until the first request it is stopped: a running sentry is held until stopped
// or closed, and a logger that is never used must not leave one running.

const { performance, PerformanceObserver, constants: perfConstants } = require('node:perf_hooks')
const v8 = require('node:v8')
const { OTHER, routeName, urlPath, RouteTable, RouteAttribution } = require('./routes')
const { formatReport } = require('./format')
const {
  MAX_TIMER_MS,
  readOptions,
  checkKnownKeys,
  ownOptions,
  typeError,
  rangeError,
  isObject,
} = require('../lib/validation')

const WHO = 'memsentry/koa'
const KEYS = ['sentry', 'every', 'everyMs', 'log', 'routes', 'maxRoutes', 'metric', 'attribution']
const ATTRIBUTION_KEYS = [
  'minObservationMs',
  'window',
  'minT',
  'minBytesPerRequest',
  'minObservations',
]

// Shortest heap attribution observation (GC to GC).
const HEAP_OBSERVATION_MS = 1000

// The RSS when the sentry has no sample with one (before its first tick, or while its reads
// fail): this process's statm, else Node's own reading; null when both fail (out of file
// descriptors, say). A report is logged at the end of a request: it must never throw there.
function readRss() {
  try {
    return require('../index.js').rss()
  } catch {
    try {
      return process.memoryUsage.rss()
    } catch {
      return null
    }
  }
}

function defaultLog(report) {
  console.log(formatReport(report))
}

function toLogFunction(log) {
  if (typeof log === 'function') return log
  if (log != null && typeof log.info === 'function') return (report) => log.info(report)
  throw new TypeError(
    `memsentry/koa: log must be a function or a logger with .info(), got ${log === null ? 'null' : typeof log}`,
  )
}

function positiveNumber(value, name, { integer = false, max = Infinity } = {}) {
  if (typeof value !== 'number') throw typeError(name, 'a number', value, WHO)
  if (
    !(value > 0 && value <= max && Number.isFinite(value)) ||
    (integer && !Number.isInteger(value))
  ) {
    const bound = max === Infinity ? '' : ` up to ${max}`
    throw rangeError(name, `a positive ${integer ? 'integer' : 'number'}${bound}`, value, WHO)
  }
  return value
}

let warnedLogError = false

// Heap readings are only compared at GCs that empty the young generation of its garbage:
// scavenges and full GCs. The young generation holds what was allocated since the last
// scavenge, up to tens of MB under load; an entry for an incremental marking step or for weak
// callbacks comes with it full, and reading the heap there put one observation in four or five
// some 20 MB off at a few hundred requests a second, against 5-15 MB of leak. (Leaving the young
// generation out instead lags the growth by a scavenge: what a request keeps is promoted at the
// second one after it.)
const { NODE_PERFORMANCE_GC_MINOR, NODE_PERFORMANCE_GC_MAJOR } = perfConstants
const emptiesYoungGeneration = (entry) =>
  entry.detail?.kind === NODE_PERFORMANCE_GC_MINOR ||
  entry.detail?.kind === NODE_PERFORMANCE_GC_MAJOR

// perf_hooks holds a GC observer for as long as it observes, so the observer holds its logger
// only weakly: an app dropped without close() leaves no observer running. Made outside the class
// so that the callback's context holds nothing but the WeakRef.
function observeGc(ref) {
  const observer = new PerformanceObserver((list) => {
    const logger = ref.deref()
    if (logger === undefined) observer.disconnect()
    else if (list.getEntries().some(emptiesYoungGeneration)) logger.afterGc()
  })
  observer.observe({ entryTypes: ['gc'] })
  return observer
}

// The sentry (one may serve several apps) and the batch timer (it refreshes itself) outlive a
// logger dropped without close(): they too hold it only weakly, and a listener whose logger is
// gone takes itself off. Outside the class for the same reason as observeGc.
function weakListener(ref, sentry, event, method) {
  const listener = (arg) => {
    const logger = ref.deref()
    if (logger === undefined) sentry.removeListener(event, listener)
    else logger[method](arg)
  }
  return listener
}

function weakTimer(ref, ms) {
  const timer = setTimeout(() => ref.deref()?.onTimer(), ms)
  timer.unref()
  return timer
}

// A logger's own sentry (none given) is closed when the logger is collected unclosed.
const ownSentries = new FinalizationRegistry((sentry) => sentry.close().catch(() => {}))

/** The shared part of the Koa and node:http forms: counting, batching, reporting. */
class BatchLogger {
  #sentry
  #ownSentry
  #every
  #everyMs
  #log
  #routes
  #table
  #attribution
  #metric
  #minObservationMs
  #timer = null
  #gcObserver = null
  #started = false
  #closed = false
  #onLeak
  #onDiagnosis
  #leakSites = null

  // The current batch.
  #requests = 0
  #batchStart = performance.now()
  // Per route name: requests in this batch and in this attribution observation. One object per
  // route for both, so a request costs one Map lookup; routes idle in both are dropped.
  #tallies = new Map()
  // The previous report's figures, for the deltas.
  #lastRss = null
  #lastHeap = null
  // The current attribution observation: route counts since it started, when it started (ms,
  // performance.now() for 'heap', the sample's epoch time for 'rss') and the metric then.
  #obsStartMs = null
  #obsStartValue = null

  constructor(options) {
    const {
      sentry,
      every,
      everyMs,
      log = defaultLog,
      routes = true,
      maxRoutes = 100,
      metric = 'heap',
      attribution = {},
    } = readOptions(options, KEYS, WHO)
    this.#everyMs =
      everyMs === undefined ? undefined : positiveNumber(everyMs, 'everyMs', { max: MAX_TIMER_MS })
    this.#every =
      every === undefined
        ? this.#everyMs === undefined
          ? 1000
          : Infinity
        : positiveNumber(every, 'every', { integer: true })
    this.#log = toLogFunction(log)
    // Not Boolean(routes): the string 'false' would turn counting on.
    if (typeof routes !== 'boolean') throw typeError('routes', 'a boolean', routes, WHO)
    this.#routes = routes
    this.#table = new RouteTable(positiveNumber(maxRoutes, 'maxRoutes', { integer: true }))
    if (typeof metric !== 'string') throw typeError('metric', "'heap' or 'rss'", metric, WHO)
    if (metric !== 'heap' && metric !== 'rss') {
      throw new RangeError(
        `memsentry/koa: metric must be 'heap' or 'rss', got ${JSON.stringify(metric)}`,
      )
    }
    this.#metric = metric
    if (!isObject(attribution)) throw typeError('attribution', 'an object', attribution, WHO)
    checkKnownKeys(attribution, ATTRIBUTION_KEYS, 'attribution.', WHO)
    // RouteAttribution checks the fit's options, with the same names and messages.
    const { minObservationMs, ...fit } = ownOptions(attribution)
    this.#attribution = new RouteAttribution(fit)
    this.#minObservationMs =
      minObservationMs === undefined
        ? undefined
        : positiveNumber(minObservationMs, 'attribution.minObservationMs')

    if (sentry == null) {
      const { MemorySentry } = require('../index.js')
      this.#sentry = new MemorySentry({ intervalMs: 1000, leak: {}, heap: true }).stop()
      this.#ownSentry = true
    } else {
      if (typeof sentry.on !== 'function' || !('latest' in sentry)) {
        throw new TypeError('memsentry/koa: sentry must be a MemorySentry')
      }
      this.#sentry = sentry
      this.#ownSentry = false
    }

    const ref = new WeakRef(this)
    // Prepended, so that listeners the application adds see `routes` on the event.
    this.#onLeak = weakListener(ref, this.#sentry, 'leak', 'onLeak')
    this.#onDiagnosis = weakListener(ref, this.#sentry, 'leak-diagnosis', 'onDiagnosis')
    this.#sentry.prependListener('leak', this.#onLeak)
    this.#sentry.on('leak-diagnosis', this.#onDiagnosis)
    if (this.#ownSentry) ownSentries.register(this, this.#sentry, this)

    if (this.#everyMs !== undefined) this.#timer = weakTimer(ref, this.#everyMs)
  }

  get sentry() {
    return this.#sentry
  }

  get attribution() {
    return this.#attribution
  }

  /** Whether requests are counted per route. */
  get routes() {
    return this.#routes
  }

  /** Whether the sentry is in a leak episode (between 'leak' and 'leak-end'), as it says now. */
  get leaking() {
    try {
      return this.#sentry.leakEpisode != null
    } catch {
      return false // a closed or foreign sentry
    }
  }

  /**
   * On each request's start; the first one starts a sentry of our own and hooks the server's
   * 'close' to close it, and starts the GC observer of the heap attribution.
   */
  begin(req) {
    if (this.#started) return
    this.#started = true
    if (this.#closed) return
    if (this.#ownSentry) {
      this.#sentry.start()
      const server = req?.socket?.server
      if (server != null && typeof server.once === 'function') {
        server.once('close', () => this.close())
      }
    }
    if (this.#routes && this.#metric === 'heap') this.#observeGc()
  }

  /** Counts one request under `route` (null: no route counting). */
  count(route) {
    if (this.#closed) return
    this.#requests++
    if (this.#routes && route != null) {
      const name = this.#table.intern(route, this.#evicted)
      let tally = this.#tallies.get(name)
      if (tally === undefined) this.#tallies.set(name, (tally = { batch: 0, obs: 0 }))
      tally.batch++
      tally.obs++
    }
    if (this.#requests >= this.#every) this.flush()
  }

  /** Internal: the sentry's 'leak' event, given the routes the growth follows. */
  onLeak(event) {
    if (!this.#routes || event == null || typeof event !== 'object') return
    if (!Object.isExtensible(event) && !('routes' in event)) return
    const suspects = this.#attribution.suspects()
    try {
      event.routes = Array.isArray(event.routes) ? [...event.routes, ...suspects] : suspects
    } catch {
      // a frozen event: listeners see it as it came
    }
  }

  /** Internal: a diagnosis is an event, not state: its top sites go in this episode's reports. */
  onDiagnosis(d) {
    if (!this.leaking || !Array.isArray(d?.sites) || d.sites.length === 0) return
    this.#leakSites = d.sites.slice(0, 3).map(({ functionName, url, line, column, share }) => ({
      functionName,
      url,
      line,
      column,
      share,
    }))
  }

  /** Internal: the batch timer fired. */
  onTimer() {
    if (this.#closed) return
    if (this.#requests > 0) this.flush()
    else this.#batchStart = performance.now()
    this.#timer.refresh()
  }

  #latest() {
    const sentry = this.#sentry
    if (sentry.closed) return null
    try {
      return sentry.latest ?? null
    } catch {
      return null
    }
  }

  #minObsMs() {
    if (this.#minObservationMs === undefined) {
      if (this.#metric === 'heap') {
        this.#minObservationMs = HEAP_OBSERVATION_MS
      } else {
        let intervalMs = 1000
        try {
          intervalMs = this.#sentry.options?.intervalMs ?? 1000
        } catch {
          // not a MemorySentry with options: keep the default
        }
        this.#minObservationMs = 4 * intervalMs
      }
    }
    return this.#minObservationMs
  }

  /** Ends the current observation with the metric at `value` (bytes) at `timeMs`. */
  #closeObservation(timeMs, value) {
    const counts = this.#takeCounts('obs')
    if (this.#obsStartValue !== null) {
      this.#attribution.add({
        counts,
        growthBytes: value - this.#obsStartValue,
        seconds: (timeMs - this.#obsStartMs) / 1000,
      })
    }
    this.#obsStartMs = timeMs
    this.#obsStartValue = value
  }

  /**
   * A name the route table let go: its counts go on under 'other', so that the tallies, and
   * the observations they feed, hold no more names than the table (paths with ids the
   * collapsing misses would grow them without bound while an observation stays open).
   */
  #evicted = (name) => {
    const tally = this.#tallies.get(name)
    if (tally === undefined) return
    this.#tallies.delete(name)
    let other = this.#tallies.get(OTHER)
    if (other === undefined) this.#tallies.set(OTHER, (other = { batch: 0, obs: 0 }))
    other.batch += tally.batch
    other.obs += tally.obs
  }

  /** The requests per route of the batch or of the observation, zeroed as they are taken. */
  #takeCounts(which) {
    const out = new Map()
    for (const [name, tally] of this.#tallies) {
      if (tally[which] > 0) out.set(name, tally[which])
      tally[which] = 0
      if (tally.batch === 0 && tally.obs === 0) this.#tallies.delete(name)
    }
    return out
  }

  // Heap attribution: observations run from one scavenge or full GC to another (see
  // emptiesYoungGeneration), at least minObservationMs apart, with the V8 heap in use right
  // after each (read with v8.getHeapStatistics(), no procfs).
  // Aligning both ends on GCs matters: the heap in use between GCs includes the garbage made
  // since the last one, and the sentry's heap figures date from the last GC before each sample,
  // which under load can be hundreds of ms and thousands of requests before the sample.
  #observeGc() {
    this.#gcObserver = observeGc(new WeakRef(this))
  }

  /** Internal: called by the GC observer after each scavenge or full GC. */
  afterGc() {
    if (this.#closed) return
    const now = performance.now()
    if (this.#obsStartMs !== null && now - this.#obsStartMs < this.#minObsMs()) return
    this.#closeObservation(now, v8.getHeapStatistics().used_heap_size)
  }

  // RSS attribution: observations run from one sample to another, at least minObservationMs
  // (4 sampling periods by default) apart, fed at batch ends.
  #observeRss(sample) {
    if (sample == null || typeof sample.rss !== 'number') return
    if (this.#obsStartMs !== null && sample.time - this.#obsStartMs < this.#minObsMs()) return
    this.#closeObservation(sample.time, sample.rss)
  }

  /** Ends the current batch now and logs its report (nothing when it has no request). */
  flush() {
    if (this.#requests === 0) return null
    const now = performance.now()
    const ms = now - this.#batchStart
    const sample = this.#latest()
    const rss = typeof sample?.rss === 'number' ? sample.rss : readRss()
    const report = {
      requests: this.#requests,
      ms: Math.round(ms * 10) / 10,
      reqPerSec: ms > 0 ? Math.round((this.#requests / ms) * 10000) / 10 : null,
      rss,
      rssDelta: rss === null ? null : this.#lastRss === null ? 0 : rss - this.#lastRss,
    }
    if (rss !== null) this.#lastRss = rss
    if (typeof sample?.heapUsed === 'number') {
      report.heapUsed = sample.heapUsed
      report.heapDelta = this.#lastHeap === null ? 0 : sample.heapUsed - this.#lastHeap
      this.#lastHeap = sample.heapUsed
    }
    // The tree's RSS only says something when there are children.
    if (typeof sample?.treeRss === 'number' && sample.children?.length > 0) {
      report.treeRss = sample.treeRss
    }
    if (typeof sample?.cgroup?.workingSet === 'number') report.workingSet = sample.cgroup.workingSet
    if (this.#routes) {
      report.routes = Object.fromEntries(this.#takeCounts('batch'))
      if (this.#metric === 'rss') this.#observeRss(sample)
      if (this.leaking) report.suspectRoutes = this.#attribution.suspects()
    }
    // A new episode's sites replace the last one's; none are shown outside an episode.
    if (!this.leaking) this.#leakSites = null
    if (this.#leakSites !== null) report.leakSites = this.#leakSites

    this.#requests = 0
    this.#table.endBatch()
    this.#batchStart = now
    this.#timer?.refresh()

    try {
      this.#log(report)
    } catch (err) {
      // A failing logger must not fail the request that happened to end the batch.
      if (!warnedLogError) {
        warnedLogError = true
        process.emitWarning(`memsentry/koa: the log function threw: ${err?.message ?? err}`)
      }
    }
    return report
  }

  /**
   * Stops reporting, removes the sentry listeners and the GC observer, and closes the sentry if
   * the logger created it. Requests after this are not counted.
   */
  close() {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#gcObserver?.disconnect()
    this.#gcObserver = null
    this.#sentry.removeListener('leak', this.#onLeak)
    this.#sentry.removeListener('leak-diagnosis', this.#onDiagnosis)
    if (this.#ownSentry) {
      ownSentries.unregister(this)
      this.#sentry.close()
    }
  }
}

function decorate(fn, logger) {
  Object.defineProperties(fn, {
    sentry: { get: () => logger.sentry, enumerable: true },
    attribution: { get: () => logger.attribution, enumerable: true },
    leaking: { get: () => logger.leaking, enumerable: true },
  })
  /** Routes the memory growth follows, now (whether or not a leak episode is on). */
  fn.suspects = () => logger.attribution.suspects()
  fn.flush = () => logger.flush()
  fn.close = () => logger.close()
  return fn
}

/**
 * Koa middleware that logs a memory report per batch of requests.
 *
 * @param {object} [options]
 * @param {import('../index').MemorySentry} [options.sentry] the sentry to read; default: one of
 *   its own (intervalMs 1000, leak on, heap on), started by the first request and closed when
 *   the server that served it closes
 * @param {number} [options.every=1000] requests per batch (default 1000 unless only everyMs given)
 * @param {number} [options.everyMs] also end a batch after this many ms
 * @param {Function|{info: Function}} [options.log] receives each report object; default prints one
 *   line with console.log
 * @param {boolean} [options.routes=true] count requests per route and attribute leaks to routes
 * @param {number} [options.maxRoutes=100] distinct routes kept; a new route takes the place of the
 *   least recently seen one not seen in the current batch, else counts as 'other'
 * @param {'heap'|'rss'} [options.metric='heap'] the growth route attribution fits: the V8 heap in
 *   use right after GCs (observations from GC to GC), or the sentry's RSS (sample to sample)
 * @param {object} [options.attribution] minObservationMs (shortest observation; default 1000 for
 *   'heap', 4 sampling periods for 'rss'), and RouteAttribution's window (1..=500),
 *   minT (>= 0), minBytesPerRequest (>= 0), minObservations (1..=window); unknown keys throw
 */
function memoryLogger(options = {}) {
  const logger = new BatchLogger(options)
  const name = routeNamer()
  const middleware = function memsentryLogger(ctx, next) {
    logger.begin(ctx.req)
    if (!logger.routes) {
      logger.count(null)
      return next()
    }
    const method = ctx.method
    const path = ctx.path
    // Downstream runs synchronously up to its first await, and a router matches in that part:
    // with the template known the request is counted now, which spares it an async frame.
    const done = next()
    const template = ctx._matchedRoute
    if (template != null && template !== '') {
      logger.count(name(method, path, template))
      return done
    }
    // Not matched yet (an await upstream of the router): named when it is done.
    const count = () => logger.count(name(method, path, ctx._matchedRoute))
    return done.then(count, (err) => {
      count()
      throw err
    })
  }
  return decorate(middleware, logger)
}

// Route names for matched router templates, cached per (template, method): a routed request then
// builds no string, and the Maps that count it hash a string whose hash V8 already knows. This
// per-request path is what the Koa A/B benchmark weighs. Unmatched paths are collapsed afresh
// (their ids vary); the cache holds only the router's templates, a fixed set.
function routeNamer() {
  const byTemplate = new Map()
  return (method, path, template) => {
    if (template == null || template === '') return routeName(method, path, template)
    let byMethod = byTemplate.get(template)
    if (byMethod === undefined) byTemplate.set(template, (byMethod = new Map()))
    let cached = byMethod.get(method)
    if (cached === undefined) byMethod.set(method, (cached = routeName(method, path, template)))
    return cached
  }
}

/**
 * The same reports for node:http and Express: `(req, res, next?)`, counting each request when
 * its response finishes. Route names: Express's `req.baseUrl + req.route.path` when matched,
 * else the path with ids collapsed.
 *
 *   const log = memoryLogger.http()
 *   http.createServer((req, res) => { log(req, res); handle(req, res) })
 *   app.use(memoryLogger.http())   // Express
 */
memoryLogger.http = function http(options = {}) {
  const logger = new BatchLogger(options)
  const handler = function memsentryHttpLogger(req, res, next) {
    logger.begin(req)
    res.once('finish', () => {
      if (!logger.routes) return logger.count(null)
      const template = req.route?.path != null ? `${req.baseUrl ?? ''}${req.route.path}` : null
      logger.count(routeName(req.method, urlPath(req.originalUrl ?? req.url), template))
    })
    if (typeof next === 'function') next()
  }
  return decorate(handler, logger)
}

module.exports = { memoryLogger, BatchLogger }
