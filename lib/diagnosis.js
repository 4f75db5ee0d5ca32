'use strict'

// Leak diagnosis: the 'leak-diagnosis' event, once per leak episode.
//
// Heap (and unknown) suspects: on the sentry's 'leak' event, V8's sampling heap profiler runs in
// this isolate through an in-process `node:inspector` Session for a bounded time; its profile,
// the sampled allocations made since the start that are still alive, is then read, stopped and
// reduced to allocation sites (./heap-profile.js). Under a leak those are the leak's own new
// allocations: V8 runs a full GC before it builds the profile, so garbage is gone from it.
//
// The cost of that read: the inspector always asks V8 for that full GC (kSamplingForceGC, and
// node:inspector offers no way around it), a main-thread pause that grows with the live heap
// (0.4-1.3 s for 500 MB of small objects on the bench machine). So the profile is read once
// per episode, and the run is stopped by disconnecting the session, which stops the profiler
// without a second GC (HeapProfiler.stopSampling would read the profile, and GC, again).
//
// Why 'unknown' too: without `heap: true` (the default) every leak is 'unknown', and the profile
// settles it: sites that account for the growth say it is the heap. Why start on the 'leak' event
// (a confirmed leak) rather than earlier: the detector's leanings are not public, the profiler
// then costs nothing outside real episodes, and a leak that was confirmed goes on growing, so
// its new allocations are still there to be caught.
//
// Native and child suspects get no profiler run (it sees only this thread's JS heap): their
// diagnosis reports what the sentry's history knows: the growth of external/arrayBuffers, rssAnon
// against the heap, and the child process that grows.
//
// One run per isolate (V8 has one sampling heap profiler per isolate, shared by every inspector
// session): a process-wide slot holds the run, sentries that confirm a leak while it runs join
// it, and a profiler started by someone else (a debugger, another library) is detected before
// starting and left alone.

const path = require('node:path')
const { reduceProfile } = require('./heap-profile')

/**
 * Run length: a tenth of the leak window, 10 s to 60 s; longer for a leak too slow to leave
 * MIN_SAMPLES samples in that time (up to the window, at most MAX_SLOW_DURATION_MS): a leak at
 * the 10-minute window's default minimum slope (0.47 MiB/min on a small service) leaves ~4
 * samples of 128 KiB in 60 s.
 */
const MIN_DURATION_MS = 10_000
const MAX_DURATION_MS = 60_000
const MAX_SLOW_DURATION_MS = 600_000
const MIN_SAMPLES = 50
/**
 * Sampling interval bounds, in bytes. What sampling costs is a few µs per sample (a stack walk and
 * a weak handle: 3-5 µs measured here), and samples come with every byte the whole app
 * allocates, leak or not: an allocation-heavy handler allocates 300-450 bytes per µs of CPU (a
 * Koa request of the bench's app and its client in one process: ~29 KB in ~70 µs), so the CPU share is about 400 × 5 / interval:
 * 3% at 64 KiB (bench:koa measured +3.4% CPU a request there), under 2% at 128 KiB, whatever the
 * load. A slow leak (1 KB a request at 60 req/s, 3.6 MB a minute) still gets ~30 samples in 60 s
 * at 128 KiB, and they name its code (measured with fixtures/diagnosis/server.mjs: the three
 * functions of the leaking call chain held 92% of the samples). The ceiling keeps a huge leak's
 * sample count, and the profile's memory, bounded.
 */
const MIN_INTERVAL = 128 * 1024
const MAX_INTERVAL = 1024 * 1024
/** Samples of the leak's bytes aimed for: past this the interval grows with the slope. */
const TARGET_SAMPLES = 1000

const RUN_SLOT = Symbol.for('memsentry.heapSamplingRun')
/** memsentry's own code: what it allocates to read the profile is not the application's. */
const OWN_ROOTS = [__dirname + path.sep, path.join(__dirname, '..', 'integrations') + path.sep]

/**
 * The run for a leak: `{ durationMs, samplingInterval }`, each the option's value when given.
 * The interval gives about TARGET_SAMPLES samples of the leak's bytes in the base run length (a
 * tenth of the window, 10 s to 60 s), within the bounds; then a leak too slow for MIN_SAMPLES
 * samples at that interval gets a longer run, up to the window and MAX_SLOW_DURATION_MS.
 */
function planRun({ windowMs, slopeBytesPerSec, durationMs = null, samplingInterval = null }) {
  const slope = Math.max(0, slopeBytesPerSec ?? 0)
  const baseMs = Math.min(MAX_DURATION_MS, Math.max(MIN_DURATION_MS, windowMs / 10))
  let interval = samplingInterval
  if (interval === null) {
    const ideal = (slope * (durationMs ?? baseMs)) / 1000 / TARGET_SAMPLES
    const pow2 = 2 ** Math.round(Math.log2(Math.max(1, ideal)))
    interval = Math.min(MAX_INTERVAL, Math.max(MIN_INTERVAL, pow2))
  }
  if (durationMs === null) {
    const forSamples = slope > 0 ? ((MIN_SAMPLES * interval) / slope) * 1000 : baseMs
    const cap = Math.max(baseMs, Math.min(windowMs, MAX_SLOW_DURATION_MS))
    durationMs = Math.round(Math.min(cap, Math.max(baseMs, forSamples)))
  }
  return { durationMs, samplingInterval: interval }
}

// A subscriber's done() or fail() emits to the application's listeners, which may throw. Each
// subscriber is told in its own try/catch, so one throwing listener costs the others nothing,
// and its error is thrown again on the next tick: outside the promise chain, where it is an
// 'uncaughtException' carrying the listener's own error, as a throw out of a synchronous emit in
// a timer callback would be (and as EventEmitter's captureRejections surfaces errors), rather
// than an unhandled rejection of a promise that nobody holds.
function rethrowLater(err) {
  process.nextTick(() => {
    throw err
  })
}

function tellEach(subscribers, tell) {
  for (const s of subscribers) {
    try {
      tell(s)
    } catch (err) {
      rethrowLater(err)
    }
  }
}

function codedError(code, message, cause) {
  const err = new Error(`memsentry: ${message}`)
  err.code = code
  if (cause !== undefined) err.cause = cause
  return err
}

/** Session.post as a promise (the in-process session answers synchronously, but need not). */
function post(session, method, params) {
  return new Promise((resolve, reject) => {
    session.post(method, params, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

// ---------------------------------------------------------------------------------------------
// One sampling run per isolate

class SamplingRun {
  #session = null
  #subscribers = new Set()
  #timer = null
  #finished = false
  #onExit = () => this.#stopNow()

  constructor({ samplingInterval, durationMs }) {
    this.samplingInterval = samplingInterval
    this.durationMs = durationMs
    this.since = null
    /** Main-thread time of the last read: { readMs (V8's GC included), reduceMs }. */
    this.lastStall = null
  }

  /**
   * Starts the run, or fails with a coded error: the inspector is missing, or another sampling
   * heap profiler already runs in this isolate.
   */
  async start() {
    let inspector
    try {
      inspector = require('node:inspector')
      this.#session = new inspector.Session()
      this.#session.connect()
    } catch (err) {
      this.#session = null
      throw codedError(
        'ERR_MEMSENTRY_NO_INSPECTOR',
        `leak diagnosis needs node:inspector, which is not available here (${err.message}); ` +
          `leak events still come, without allocation sites`,
        err,
      )
    }
    // getSamplingProfile fails unless a sampling profiler runs: if it succeeds, someone else's
    // does, and startSampling would silently share it (and our stop would end theirs).
    const foreign = await post(this.#session, 'HeapProfiler.getSamplingProfile').then(
      () => true,
      () => false,
    )
    if (foreign) {
      this.#disconnect()
      throw codedError(
        'ERR_MEMSENTRY_PROFILER_BUSY',
        'leak diagnosis skipped: V8 sampling heap profiler already runs in this thread ' +
          '(a debugger or other code started it)',
      )
    }
    try {
      await post(this.#session, 'HeapProfiler.startSampling', {
        samplingInterval: this.samplingInterval,
        // Only live objects: what the leak keeps, not what the app allocates and drops.
        includeObjectsCollectedByMajorGC: false,
        includeObjectsCollectedByMinorGC: false,
      })
    } catch (err) {
      this.#disconnect()
      throw codedError('ERR_MEMSENTRY_PROFILER', `leak diagnosis: ${err.message}`, err)
    }
    this.since = Date.now()
    process.once('exit', this.#onExit)
    // Unref'd: a run never keeps the process alive.
    this.#timer = setTimeout(() => this.finish().catch(rethrowLater), this.durationMs)
    this.#timer.unref()
  }

  /** Adds a subscriber `{ done(result), fail(err) }`; returns a function that removes it. */
  join(subscriber) {
    this.#subscribers.add(subscriber)
    return () => {
      this.#subscribers.delete(subscriber)
      // Nobody left to tell: stop without reading the profile.
      if (this.#subscribers.size === 0 && !this.#finished) this.#stopNow()
    }
  }

  /** The run could not start: tells those who joined while it was starting. */
  abort(err) {
    this.#finished = true
    if (globalThis[RUN_SLOT] === this) delete globalThis[RUN_SLOT]
    const subscribers = [...this.#subscribers]
    this.#subscribers.clear()
    tellEach(subscribers, (s) => s.fail(err))
  }

  /** Reads and reduces the profile now, stops the profiler, and tells every subscriber. */
  async finish() {
    if (this.#finished) return
    this.#finished = true
    const session = this.#session
    const durationMs = Date.now() - this.since
    let outcome
    try {
      const start = performance.now()
      const { profile } = await post(session, 'HeapProfiler.getSamplingProfile')
      const read = performance.now()
      const reduced = reduceProfile(profile, { ownRoots: OWN_ROOTS })
      this.lastStall = { readMs: read - start, reduceMs: performance.now() - read }
      outcome = {
        ok: true,
        result: {
          since: this.since,
          durationMs,
          samplingIntervalBytes: this.samplingInterval,
          ...reduced,
        },
      }
    } catch (err) {
      outcome = {
        ok: false,
        error: codedError(
          'ERR_MEMSENTRY_PROFILER',
          `leak diagnosis failed: could not read the heap profile (${err.message}); ` +
            `was the sampling heap profiler stopped by other code?`,
          err,
        ),
      }
    }
    this.#stopNow()
    // Cleared first: the list is empty whatever the listeners do.
    const subscribers = [...this.#subscribers]
    this.#subscribers.clear()
    tellEach(subscribers, (s) => (outcome.ok ? s.done(outcome.result) : s.fail(outcome.error)))
  }

  /**
   * Stops the profiler and releases everything, synchronously (also from 'exit'): disconnecting
   * the session disables its HeapProfiler agent, which stops the sampling it started. (V8's
   * disable also stops heap object tracking and clears heap snapshot object ids, isolate-wide, as
   * any inspector session's disconnect does: a debugger recording an allocation timeline at that
   * moment would see it end.)
   */
  #stopNow() {
    this.#finished = true
    clearTimeout(this.#timer)
    process.removeListener('exit', this.#onExit)
    this.#disconnect()
    if (globalThis[RUN_SLOT] === this) delete globalThis[RUN_SLOT]
  }

  #disconnect() {
    try {
      this.#session?.disconnect()
    } catch {
      // already disconnected
    }
    this.#session = null
  }
}

/**
 * Joins the run in progress in this isolate or starts one. `subscriber` is `{ done(result),
 * fail(err) }`; resolves to `{ run, leave }`, or rejects with a coded error when no run can start.
 */
async function joinOrStartRun(config, subscriber) {
  const current = globalThis[RUN_SLOT]
  if (current !== undefined) {
    if (typeof current.join !== 'function') {
      throw codedError('ERR_MEMSENTRY_PROFILER_BUSY', 'leak diagnosis skipped: a run is under way')
    }
    return { run: current, leave: current.join(subscriber) }
  }
  const run = new SamplingRun(config)
  // Claimed before the first await: a second sentry in the same tick joins this run.
  Object.defineProperty(globalThis, RUN_SLOT, { value: run, configurable: true, writable: true })
  try {
    await run.start()
  } catch (err) {
    run.abort(err)
    throw err
  }
  return { run, leave: run.join(subscriber) }
}

// ---------------------------------------------------------------------------------------------
// Native suspects: growth figures from the sentry's history

/** Buckets over the span; each bucket's minimum is a post-GC floor. */
const FLOOR_BUCKETS = 10

/**
 * The growth of one series over `samples` (oldest first): the least-squares slope of its
 * per-bucket minima. `{ bytesPerSec, bytes }` (bytes: slope × span), or null with too few points.
 */
function floorGrowth(samples, read) {
  const points = samples
    .map((s) => [s.time, read(s)])
    .filter(([, v]) => typeof v === 'number' && Number.isFinite(v))
  if (points.length < 3) return null
  const t0 = points[0][0]
  const span = points[points.length - 1][0] - t0
  if (!(span > 0)) return null
  const floors = new Map()
  for (const [t, v] of points) {
    const b = Math.min(FLOOR_BUCKETS - 1, Math.floor(((t - t0) / span) * FLOOR_BUCKETS))
    const f = floors.get(b)
    if (f === undefined || v < f[1]) floors.set(b, [t, v])
  }
  if (floors.size < 3) return null
  const xs = [...floors.values()].map(([t]) => (t - t0) / 1000)
  const ys = [...floors.values()].map(([, v]) => v)
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length
  const my = ys.reduce((a, b) => a + b, 0) / ys.length
  let num = 0
  let den = 0
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my)
    den += (xs[i] - mx) ** 2
  }
  const bytesPerSec = den > 0 ? num / den : 0
  return { bytesPerSec, bytes: Math.round((bytesPerSec * span) / 1000) }
}

/**
 * What the history says about memory growing outside the JS heap, over `samples` (the leak
 * window, oldest first): `{ spanMs, growth: { rss, rssAnon, heapUsed, external, arrayBuffers,
 * treeRss } (each { bytesPerSec, bytes } or null when not sampled), outsideHeap, child }`.
 * `outsideHeap` is rssAnon's growth less the heap's (null without heap figures); `child` the
 * child process whose RSS grew most, `{ pid, comm, bytesPerSec, bytes }`, or null.
 */
function nativeGrowth(samples) {
  const spanMs =
    samples.length > 1 ? Math.round(samples[samples.length - 1].time - samples[0].time) : 0
  const growth = {}
  for (const key of ['rss', 'rssAnon', 'heapUsed', 'external', 'arrayBuffers', 'treeRss']) {
    growth[key] = floorGrowth(samples, (s) => s[key])
  }
  let outsideHeap = null
  if (growth.rssAnon && growth.heapUsed) {
    const bytesPerSec = growth.rssAnon.bytesPerSec - growth.heapUsed.bytesPerSec
    outsideHeap = { bytesPerSec, bytes: Math.round((bytesPerSec * spanMs) / 1000) }
  }
  // Children seen in the first and the last sample of the window: a child that came and went
  // inside it has no growth to speak of.
  let child = null
  const first = samples[0]?.children ?? []
  const last = samples[samples.length - 1]?.children ?? []
  const lastByPid = new Map(last.map((c) => [c.pid, c]))
  for (const c of first) {
    if (!lastByPid.has(c.pid)) continue
    const g = floorGrowth(samples, (s) => s.children?.find((x) => x.pid === c.pid)?.rss)
    if (g !== null && g.bytesPerSec > 0 && (child === null || g.bytesPerSec > child.bytesPerSec)) {
      child = { pid: c.pid, comm: lastByPid.get(c.pid).comm, ...g }
    }
  }
  return { spanMs, growth, outsideHeap, child }
}

// ---------------------------------------------------------------------------------------------
// Per sentry

/**
 * Turns a sentry's leak episodes into 'leak-diagnosis' events. `emit(name, payload)` delivers
 * on the sentry; `history(sinceMs)` reads its ring buffer; `options` is the normalized
 * `leak.diagnose` ({ durationMs, samplingInterval }, each null for the default).
 */
class LeakDiagnoser {
  #emit
  #history
  #options
  #windowMs
  #episode = null // { leave, run } while this sentry's episode has a diagnosis under way
  #diagnosed = false
  #closed = false
  #unavailable = false

  constructor({ emit, history, options, windowMs }) {
    this.#emit = emit
    this.#history = history
    this.#options = options
    this.#windowMs = windowMs
  }

  /** The run this sentry takes part in now, or null (for tests and the benchmark). */
  get run() {
    return this.#episode?.run ?? null
  }

  onLeak(event) {
    if (this.#closed || this.#diagnosed || this.#episode !== null) return
    this.#diagnosed = true
    const suspect = event.suspect
    if (suspect === 'native' || suspect === 'child') {
      // After the 'leak' listeners: diagnosis follows the warning, as for the heap.
      setImmediate(() => this.#emitNative(event))
      return
    }
    if (this.#unavailable) return
    const { durationMs, samplingInterval } = planRun({
      windowMs: this.#windowMs,
      slopeBytesPerSec: event.slopeBytesPerSec,
      ...this.#options,
    })
    const episode = { leave: null, run: null }
    this.#episode = episode
    const subscriber = {
      done: (result) => {
        if (this.#episode === episode) this.#episode = null
        if (this.#closed) return
        const d = { ...result, suspect }
        if (suspect !== 'heap') d.native = this.#nativeFigures(event)
        this.#emit('leak-diagnosis', d)
      },
      fail: (err) => {
        if (this.#episode === episode) this.#episode = null
        this.#fail(err)
      },
    }
    joinOrStartRun({ samplingInterval, durationMs }, subscriber)
      .then(
        ({ run, leave }) => {
          episode.run = run
          episode.leave = leave
          // Closed while the inspector was starting.
          if (this.#closed) leave()
        },
        (err) => {
          if (this.#episode === episode) this.#episode = null
          if (err.code === 'ERR_MEMSENTRY_NO_INSPECTOR') this.#unavailable = true
          this.#fail(err)
        },
      )
      // An 'error' listener that throws: see rethrowLater.
      .catch(rethrowLater)
  }

  /** The growth stopped: read what the run has now (an episode's diagnosis covers the episode). */
  onLeakEnd() {
    this.#diagnosed = false
    this.#episode?.run?.finish().catch(rethrowLater)
  }

  #nativeFigures(event) {
    const end = typeof event.sample?.time === 'number' ? event.sample.time : Date.now()
    const windowMs = event.windowMs ?? this.#windowMs
    let native
    try {
      native = nativeGrowth(this.#history(end - windowMs).filter((s) => s.time <= end))
    } catch {
      // closed meanwhile
      return null
    }
    // The history keeps the children's total, not each child: the child the detector named
    // (on a 'child' suspect) is the one that grew, at the detector's slope.
    const named = event.child
    if (native.child === null && named != null && Number.isFinite(named.slopeBytesPerSec)) {
      const bytesPerSec = named.slopeBytesPerSec
      native.child = {
        pid: named.pid,
        comm: named.comm,
        bytesPerSec,
        bytes: Math.round((bytesPerSec * native.spanMs) / 1000),
      }
    }
    return native
  }

  #emitNative(event) {
    if (this.#closed) return
    const native = this.#nativeFigures(event)
    if (native === null) return
    const end = typeof event.sample?.time === 'number' ? event.sample.time : Date.now()
    this.#emit('leak-diagnosis', {
      since: Math.round(end - native.spanMs),
      durationMs: Math.round(native.spanMs),
      samplingIntervalBytes: null,
      sampledBytes: 0,
      sites: [],
      suspect: event.suspect,
      native,
    })
  }

  #fail(err) {
    if (!this.#closed) this.#emit('error', err)
  }

  /** Leaves the run (which stops when nobody else is in it); no event after this. */
  close() {
    this.#closed = true
    const episode = this.#episode
    this.#episode = null
    episode?.leave?.()
  }
}

module.exports = {
  LeakDiagnoser,
  nativeGrowth,
  planRun,
  MIN_INTERVAL,
  MAX_INTERVAL,
  // For the benchmark and tests: a run outside any sentry.
  joinOrStartRun,
}
