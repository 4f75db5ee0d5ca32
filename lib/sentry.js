'use strict'

const { EventEmitter } = require('node:events')
const { PerformanceObserver, constants: perfConstants } = require('node:perf_hooks')
const v8 = require('node:v8')
const { normalizeOptions, forNative } = require('./options')
const { attach: attachRecorder } = require('./recorder')
const { writeHeapSnapshot, writeLeakReport } = require('./leak-actions')
const { own, readOptions, typeError, rangeError } = require('./validation')

const HISTORY_OPTIONS = ['sinceMs', 'maxPoints']

// Native errors for option values only the native side can judge (a percent threshold with no
// known limit) come back with code 'InvalidArg': they are RangeErrors to the user.
function rethrow(err) {
  if (err && err.code === 'InvalidArg') throw new RangeError(err.message)
  throw err
}

// V8's heap figures for the leak detector. process.memoryUsage() also reads the RSS from /proc,
// which fails when the process is out of file descriptors (EMFILE), and a throw in a GC
// observer would end the process: then V8's own statistics, which read no file (the same
// figures; only arrayBuffers is not among them, so the last one read stands).
let lastArrayBuffers = 0
function heapFigures() {
  try {
    const m = process.memoryUsage()
    lastArrayBuffers = m.arrayBuffers
    return m
  } catch {
    const h = v8.getHeapStatistics()
    return {
      heapUsed: h.used_heap_size,
      heapTotal: h.total_heap_size,
      external: h.external_memory,
      arrayBuffers: lastArrayBuffers,
    }
  }
}

// Running sentries, held here as an active timer is held by the runtime: a sentry subscribed to
// and never referred to again (a `const` at the top of a CommonJS file, which nothing captures)
// would otherwise be collected at the next full GC and stop without a word. stop() and close()
// let go of it; a stopped sentry nothing refers to is collected and its thread's resources freed.
const running = new Set()

/** Freezes a sample and the objects and arrays in it (cgroup, pressure, children). */
function deepFreeze(value) {
  Object.freeze(value)
  for (const v of Object.values(value)) {
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) deepFreeze(v)
  }
  return value
}

class MemorySentry extends EventEmitter {
  #native
  #options
  #closed = false
  #refed = false
  #heapObserver = null
  #latest = null
  #latestTicks = -1
  #diagnoser = null

  constructor(options) {
    super()
    const opts = normalizeOptions(options)
    this.#options = opts
    const { NativeSentry } = require('./native')
    try {
      // V8's heap limit: a heap leak's msToLimit counts to it too, since in a container V8
      // sizes it from the cgroup's limit and ends the process there first.
      this.#native = new NativeSentry(
        { ...forNative(opts), heapLimit: v8.getHeapStatistics().heap_size_limit },
        MemorySentry.#eventCallback(new WeakRef(this)),
      )
    } catch (err) {
      rethrow(err)
    }
    this.#watchSampleListeners()
    // The leak detector needs the heap's figures and the full GCs to tell a leak from garbage
    // and from V8 resizing its heap; `heap: true` also puts the figures into the samples.
    if (opts.heap || opts.leak) this.#observeHeap()
    if (opts.leak && opts.leak.diagnose !== null) {
      this.#diagnoser = MemorySentry.#makeDiagnoser(new WeakRef(this), opts.leak)
    }
    // A leak report shows the events that led up to the leak: record them from the start.
    if (opts.leak?.report) attachRecorder(this)
    this.start()
  }

  // 'sample' events cost a call into JS per tick, so they are sent only while listened to.
  #onNewListener = (event) => {
    if (event === 'sample') this.#native.setWantSamples(true)
  }
  #onRemoveListener = (event) => {
    if (event === 'sample') this.#native.setWantSamples(this.listenerCount('sample') > 0)
  }

  #watchSampleListeners() {
    if (!this.listeners('newListener').includes(this.#onNewListener)) {
      this.on('newListener', this.#onNewListener)
    }
    if (!this.listeners('removeListener').includes(this.#onRemoveListener)) {
      this.on('removeListener', this.#onRemoveListener)
    }
    this.#native.setWantSamples(this.listenerCount('sample') > 0)
  }

  /** EventEmitter's, but 'sample' listeners added after it still get samples. */
  removeAllListeners(...args) {
    // EventEmitter tells "no event" from `undefined` by the count of arguments.
    super.removeAllListeners(...args)
    // Without an event (or for these two) it also removed the listeners that turn 'sample'
    // events on and off.
    const [event] = args
    if (args.length === 0 || event === 'newListener' || event === 'removeListener') {
      this.#watchSampleListeners()
    }
    return this
  }

  // The native side holds this callback strongly (through the threadsafe function), so it must
  // hold the sentry only weakly: then a stopped sentry nothing refers to can be collected and
  // its thread's resources freed (a running one is held in `running`). It is made in a static
  // method because a closure made in the constructor would share the constructor's context,
  // which holds `this`.
  static #eventCallback(ref) {
    return (name, payload) => ref.deref()?.#dispatch(name, payload)
  }

  // 'leak-diagnosis' after a confirmed leak (./diagnosis.js). Holds the sentry weakly, as above:
  // a profiler run in progress must not keep a stopped sentry nothing refers to alive.
  static #makeDiagnoser(ref, leak) {
    const { LeakDiagnoser } = require('./diagnosis')
    return new LeakDiagnoser({
      emit: (name, payload) => {
        const sentry = ref.deref()
        if (sentry && (name !== 'error' || sentry.listenerCount('error') > 0)) {
          sentry.emit(name, payload)
        }
      },
      history: (sinceMs) => ref.deref()?.history({ sinceMs }) ?? [],
      options: leak.diagnose ?? { durationMs: null, samplingInterval: null },
      windowMs: leak.windowMs,
    })
  }

  #dispatch(name, payload) {
    // Queued by the thread before close() but delivered after it: a closed sentry says nothing
    // more, and writes no heap snapshot or report for it.
    if (this.#closed) return
    if (name === 'error') {
      // The sampler thread has ended: say so in `running`, and let go of the event loop even
      // after ref(), as stop() does.
      if (payload.code === 'EPANIC') this.stop()
      // An unhandled 'error' on an EventEmitter throws, which would crash the host process:
      // a monitor reports read failures only to those who listen.
      if (this.listenerCount('error') === 0) return
      const err = new Error(`memsentry: ${payload.message}`)
      err.code = payload.code
      if (payload.path != null) err.path = payload.path
      this.emit('error', err)
      return
    }
    if (name === 'leak' && this.#options.heapSnapshot) {
      writeHeapSnapshot(this, this.#options.heapSnapshot, payload)
    }
    if (name === 'leak' && this.#options.leak?.report) {
      // Sets payload.report now; the file is written in a setImmediate callback, at most 5 per
      // process (failures are 'error' events).
      writeLeakReport(this, this.#options.leak.report, payload)
    }
    this.emit(name, payload)
    if (name === 'leak') this.#diagnoser?.onLeak(payload)
    if (name === 'leak-end') this.#diagnoser?.onLeakEnd(payload)
  }

  // Records V8's heap figures after each GC, at most once per half sampling period (a busy
  // server runs many scavenges a second; the sampler reads the newest figures each tick), and
  // after every full GC (rare, and what the leak detector waits for).
  #observeHeap() {
    // Weak for the same reason as the event callback: perf_hooks holds the observer.
    const nativeRef = new WeakRef(this.#native)
    const minGapMs = this.#options.intervalMs / 2
    const MAJOR = perfConstants.NODE_PERFORMANCE_GC_MAJOR
    let last = -Infinity
    const observer = new PerformanceObserver((list) => {
      const native = nativeRef.deref()
      if (!native) return observer.disconnect()
      const entries = list.getEntries()
      const now = entries[entries.length - 1].startTime
      const major = entries.some((e) => e.detail?.kind === MAJOR)
      if (!major && now - last < minGapMs) return
      last = now
      const m = heapFigures()
      native.setHeap(m.heapUsed, m.heapTotal, m.external, m.arrayBuffers, major)
    })
    observer.observe({ entryTypes: ['gc'] })
    const m = heapFigures()
    this.#native.setHeap(m.heapUsed, m.heapTotal, m.external, m.arrayBuffers, false)
    this.#heapObserver = observer
  }

  /**
   * The newest Sample, or null before the first tick. Reads nothing: the object is built once
   * per tick and shared by every caller until the next one (frozen, with its cgroup and
   * children, so no caller can change what another sees).
   */
  get latest() {
    const ticks = this.#native.ticks
    if (ticks !== this.#latestTicks) {
      // Read the count first: the sample fetched after it is at least as new as that tick.
      this.#latestTicks = ticks
      this.#latest = this.#native.latest()
      if (this.#latest !== null) deepFreeze(this.#latest)
    }
    return this.#latest
  }

  /**
   * Each threshold rule's state now, read from the core (not rebuilt from events, so it is right
   * whenever it is asked): `[{ name, metric, active, value, pid? }]` in rule order, one per
   * child for a 'child.rss' rule. `value` is the figure last judged, null before there was one.
   */
  thresholdStates() {
    if (this.#closed) return []
    return this.#native
      .thresholdStates()
      .map(({ name, metric, active, value, pid }) =>
        pid === undefined
          ? { name, metric, active, value: value ?? null }
          : { name, metric, active, value: value ?? null, pid },
      )
  }

  /**
   * The leak episode in progress, read from the core: `{ since, metric, slopeBytesPerSec,
   * suspect, msToLimit }` (since: when it was confirmed, epoch ms; msToLimit null without a
   * limit; a heap leak's counts to V8's heap limit too), or null.
   */
  get leakEpisode() {
    if (this.#closed) return null
    const e = this.#native.leakEpisode()
    if (e == null) return null
    const { since, metric, slopeBytesPerSec, suspect, msToLimit } = e
    return { since, metric, slopeBytesPerSec, suspect, msToLimit: msToLimit ?? null }
  }

  /** The memory limit in force (bytes): the `limit` option, else the cgroup's; null if none. */
  get limit() {
    return this.#native.limit
  }

  /** Whether the sampler thread runs. */
  get running() {
    return !this.#closed && this.#native.running
  }

  get closed() {
    return this.#closed
  }

  /** The normalized options (bytes, ms); a copy. */
  get options() {
    return structuredClone(this.#options)
  }

  /**
   * What sampling has cost so far: `{ ticks, cpuNs, maxCpuNs, meanCpuNs }`, measured as the
   * sampler thread's own CPU time around each tick; and `droppedEvents`, the events dropped
   * because too many were waiting for a blocked event loop; `historyLength`, the samples the
   * history holds now (at most `historySize`).
   */
  stats() {
    const { ticks, cpuNs, maxCpuNs, droppedEvents, historyLength } = this.#native.stats()
    const meanCpuNs = ticks > 0 ? cpuNs / ticks : 0
    return { ticks, cpuNs, maxCpuNs, meanCpuNs, droppedEvents, historyLength }
  }

  /**
   * Writes a self-contained HTML report of the history and the events recorded since the first
   * report or `require('memsentry/report').attach(sentry)` (mode 0600); returns its absolute path.
   * Command lines only with `{ includeCmdline: true }`. See ./report.js.
   */
  writeReport(file, options) {
    return require('./report').writeReport(this, file, options)
  }

  /**
   * A fresh Sample, read now; the call blocks until it is read (the children's figures on the
   * sentry's reader thread, the rest on the calling one). It does not enter the history.
   */
  snapshot() {
    this.#assertOpen('snapshot')
    return this.#native.snapshot()
  }

  /**
   * Samples from the ring buffer, oldest first; `sinceMs` is an epoch time in ms. With
   * `maxPoints`, at most that many (plus the newest): each run of samples gives its highest-RSS
   * one, so a chart of a long history costs what it draws.
   */
  history(options) {
    // The same conventions as the constructor's options: unknown keys and null are TypeErrors,
    // and only own properties are read.
    const given = readOptions(options, HISTORY_OPTIONS, 'memsentry: history')
    const givenSince = own(given, 'sinceMs')
    const sinceMs = givenSince === undefined ? 0 : givenSince
    const maxPoints = own(given, 'maxPoints')
    if (typeof sinceMs !== 'number') throw typeError('history sinceMs', 'a number', sinceMs)
    if (Number.isNaN(sinceMs)) throw rangeError('history sinceMs', 'a number, not NaN', sinceMs)
    if (maxPoints !== undefined) {
      if (typeof maxPoints !== 'number') {
        throw typeError('history maxPoints', 'an integer', maxPoints)
      }
      if (!Number.isInteger(maxPoints) || maxPoints < 1 || maxPoints > 1_000_000) {
        throw rangeError('history maxPoints', 'an integer in 1..=1000000', maxPoints)
      }
    }
    return this.#native.history(sinceMs, maxPoints)
  }

  start() {
    this.#assertOpen('start')
    this.#native.start()
    running.add(this)
    this.#native.setRef(this.#refed)
    return this
  }

  stop() {
    if (this.#closed) return this
    running.delete(this)
    this.#native.stop()
    // A stopped sentry never holds the event loop open, whatever ref() said.
    this.#native.setRef(false)
    return this
  }

  /** Keep the process alive while sampling (like a ref'd timer). Off by default. */
  ref() {
    this.#refed = true
    if (this.running) this.#native.setRef(true)
    return this
  }

  unref() {
    this.#refed = false
    if (!this.#closed) this.#native.setRef(false)
    return this
  }

  /** Stops and joins the sampler thread and releases its resources; resolves when done. */
  async close() {
    if (this.#closed) return
    this.#closed = true
    running.delete(this)
    this.#heapObserver?.disconnect()
    this.#heapObserver = null
    this.#diagnoser?.close()
    this.#native.close()
  }

  #assertOpen(what) {
    if (this.#closed) throw new Error(`memsentry: cannot ${what}() a closed sentry`)
  }
}

module.exports = { MemorySentry }
