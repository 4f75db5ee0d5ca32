'use strict'

// The event recorder: a sentry's history keeps samples but not events, so reports (./report.js)
// and the live dashboard show the events recorded here. `attach(sentry)` subscribes to its
// 'threshold', 'leak', 'leak-end', 'leak-diagnosis', 'child' and 'oom' events and keeps the last MAX_EVENTS in
// memory (per sentry, dropped with it). The sentry attaches at construction when `leak.report` is
// set, and on the first report or `require('memsentry/report').attach(sentry)` otherwise: events
// emitted before that are in no report.

const { formatSite } = require('./allocation-site')

/** Events kept per sentry (a ring: the oldest are dropped first). */
const MAX_EVENTS = 1000
/** Allocation sites kept per leak diagnosis, and stack frames per site. */
const MAX_SITES = 10
const MAX_FRAMES = 8

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
  // The listeners hold the recorder, not the sentry: a stopped sentry nothing refers to is
  // still collectable.
  for (const type of ['threshold', 'leak', 'leak-end', 'leak-diagnosis', 'child', 'oom']) {
    sentry.on(type, (payload) => record(recorder, type, payload))
  }
  return sentry
}

/** Calls `fn()` once, after the next recorded 'leak-diagnosis' of `sentry` (the leak report's rewrite). */
function onDiagnosis(sentry, fn) {
  sentry.once('leak-diagnosis', () => setImmediate(fn))
}

/** Records one event of `sentry` now, when it is attached (each payload once, whoever is first). */
function recordNow(sentry, type, payload) {
  const recorder = recorders.get(sentry)
  if (recorder) record(recorder, type, payload)
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

module.exports = {
  attach,
  onDiagnosis,
  recordNow,
  recordedEvents,
  eventCount,
  eventTime,
  MAX_EVENTS,
}
