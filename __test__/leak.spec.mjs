// Leak detection end to end, on real processes: a Koa server in a child process with a
// MemorySentry (__test__/fixtures/leak/server.mjs), autocannon at fixed rates in another child
// process (load.mjs), real HTTP on 127.0.0.1. About 3 minutes in all.
//
// The sentry: 250 ms samples, a 60 s window and nothing else set (no minSlope: the detector's
// evidence scales with the window), plus heap: true for the samples' heap fields. The leaks below
// grow RSS at 30-100 MiB/min; the healthy run steps its load 50 -> 300 -> 100 req/s, which makes
// V8 grow its heap and old-generation garbage raise the floors between full GCs: what used to
// fire with the defaults. npm run eval:leak runs these and the other scenarios at two windows.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'

import { floorSeries, runScenario, writeTrace } from './fixtures/leak/scenario.mjs'

const SENTRY = {
  intervalMs: 250,
  heap: true,
  leak: { windowMs: 60_000 },
}
// The detector decides after the 30 s warm-up plus 0.83 × window at the earliest (80 s); the
// eval holds it to 90 s, this spec leaves room for a busy 2-core machine.
const DEADLINE_MS = 120_000
// A heap leak is confirmed at V8's full GCs: with two a sub-window (6 s) apart or more, the
// detector knows how fast garbage alone raises the heap's floor, and V8 decides when they run.
// In one CI run (4e5fa1f) the heap grew from 11 to 185 MB in 126 s and no event came; replayed
// on recorded runs of this spec with every full GC but the first (or two 2 s apart) taken out,
// none comes in 150 s, and with any two 7 s apart or more kept, it comes at 80 s. So where V8
// runs its second full GC late, the deadline runs from it; the run goes on long enough for it.
const AFTER_SECOND_FULL_GC_MS = 30_000
const SUB_WINDOW_MS = SENTRY.leak.windowMs / 10
// The earliest a 60 s window decides: the 30 s warm-up plus 0.83 × window.
const EARLIEST_MS = 30_000 + 0.83 * SENTRY.leak.windowMs
const RUN_S = 240

const MiB = 1024 * 1024

// Where a failing run leaves its samples and heap readings, for an exact replay of what the
// detector saw (eval/README.md, "replay"); with MEMSENTRY_TRACE_DIR set, every run does.
const TRACE_DIR = process.env.MEMSENTRY_TRACE_DIR ?? path.join(os.tmpdir(), 'memsentry-leak-spec')

/** Runs `check(r)`; writes the run's trace when it fails (or always with MEMSENTRY_TRACE_DIR). */
function keepingTrace(t, label, r, check) {
  const save = () => {
    if (!r.history) return null
    const name = `${label}-${process.version}-${Date.now()}`
    writeTrace(TRACE_DIR, name, r, [SENTRY])
    return path.join(TRACE_DIR, `${name}.csv`)
  }
  try {
    check()
  } catch (err) {
    let file = null
    try {
      file = save()
    } catch (e) {
      t.diagnostic(`trace not written: ${e.message}`)
    }
    if (file) {
      // CI keeps only its log: the trace goes there too, gzipped, in lines of 200 characters
      // (zcat of the joined base64 gives the CSV back).
      t.diagnostic(`trace: ${file}; gzip, base64:`)
      const b64 = gzipSync(readFileSync(file)).toString('base64')
      for (let i = 0; i < b64.length; i += 200) t.diagnostic(b64.slice(i, i + 200))
    }
    throw err
  }
  if (process.env.MEMSENTRY_TRACE_DIR) t.diagnostic(`trace: ${save()}`)
}

/** Reports each line of `text` as a TAP diagnostic (a diagnostic is one line). */
function diagnose(t, text) {
  for (const line of text.split('\n')) t.diagnostic(line)
}

/** When V8 ran its full GCs, in ms since the load started (the heap readings flag them). */
function fullGcTimes(r) {
  const offset = r.history ? r.loadStartAt - r.history.t0 : 0
  const times = r.heapCalls.filter((c) => c[5]).map((c) => c[1] - offset)
  return [...new Set(times)]
}

/**
 * The deadline for the first 'leak': DEADLINE_MS, or later when V8's second full GC was, or when
 * V8 ran none from the earliest the window decides until the deadline: the heap's evidence then
 * waits for the next one (one CI run, 1f7bbdf: full GCs to 50.1 s, then none until 138.2 s; the
 * 'leak' came at 139.8 s). That run's trace, `tests/fixtures/leak-traces/fast-heap-j.csv`, now
 * replays to 84 s; its check in `src/detect/replay.rs`, not this spec, guards the rule that
 * brought it there, since this deadline would let it slip.
 */
function deadline(r) {
  return deadlineFrom(fullGcTimes(r))
}

function deadlineFrom(times) {
  const [first, ...rest] = times
  const second = rest.find((t) => t - first >= SUB_WINDOW_MS)
  const due = second == null ? DEADLINE_MS : Math.max(DEADLINE_MS, second + AFTER_SECOND_FULL_GC_MS)
  const next = times.find((t) => t >= EARLIEST_MS)
  return next != null && next > due ? next + AFTER_SECOND_FULL_GC_MS : due
}

/** What a failure message (and the diagnostics) should show: events and the detector's input. */
function evidence(r) {
  const offset = r.history ? r.loadStartAt - r.history.t0 : 0
  const events = r.events.map((e) => ({
    type: e.type,
    latencyS: Math.round(e.latencyMs / 100) / 10,
    suspect: e.suspect,
    slopeMiBPerMin: Math.round(((e.slopeBytesPerSec * 60) / MiB) * 10) / 10,
    confidence: e.confidence,
  }))
  return [
    `events: ${JSON.stringify(events)}`,
    `load started ${offset} ms after the server; samples in history: ${r.history?.samples.length ?? 0}`,
    `rss floors (6 s, server time s:MiB): ${floorSeries(r.history, 1)}`,
    `heapUsed floors: ${floorSeries(r.history, 2)}`,
    `external floors (Buffers included): ${floorSeries(r.history, 3)}`,
    `V8's full GCs (s after load start): ${fullGcTimes(r)
      .map((t) => (t / 1000).toFixed(1))
      .join(' ')}`,
    `server exit ${JSON.stringify(r.serverExit)} stderr: ${r.serverStderr.slice(-1000)}`,
    `load exit ${JSON.stringify(r.loadExit)} stderr: ${r.loadStderr.slice(-1000)}`,
  ].join('\n')
}

/** A leak at 200 req/s: returns the run, stopped once the first 'leak' event is in. */
async function leakRun(retain) {
  return runScenario({
    server: { retain, bytesPerRequest: 10_000, sentry: SENTRY, recordHeap: true },
    phases: [{ rate: 200, durationS: RUN_S }],
    stopWhen: (r) => r.leaks.length > 0,
  })
}

function assertLeak(t, r, suspect) {
  const info = evidence(r)
  diagnose(t, info)
  const served = r.ticks.at(-1)?.requests ?? 0
  assert.ok(served > 0, `the server saw no request\n${info}`)
  assert.ok(r.leaks.length >= 1, `no 'leak' event within the run\n${info}`)
  const [first] = r.leaks
  assert.equal(r.events[0].type, 'leak', `the first event is not 'leak'\n${info}`)
  t.diagnostic(
    `'leak' ${(first.latencyMs / 1000).toFixed(1)} s after load start: suspect ${first.suspect}, ` +
      `slope ${((first.slopeBytesPerSec * 60) / MiB).toFixed(1)} MiB/min, ` +
      `confidence ${first.confidence.toFixed(3)}, ${served} requests served by the last tick`,
  )
  const due = deadline(r)
  assert.ok(
    first.latencyMs <= due,
    `'leak' came ${first.latencyMs} ms after load start, deadline ${due}\n${info}`,
  )
  assert.equal(first.suspect, suspect, `suspect\n${info}`)
  assert.equal(first.metric, 'rss')
  // At least the default minimum for a 60 s window (1.5 MiB/min), at most what the handler keeps.
  assert.ok(first.slopeBytesPerSec >= (1.5 * MiB) / 60, `slope below the minimum\n${info}`)
  assert.ok(first.confidence >= 0.95, `confidence ${first.confidence}\n${info}`)
}

test("the deadline follows V8's full GCs (times in ms after the load's start)", () => {
  const s = (list) => list.map((t) => t * 1000)
  // Full GCs every ~5-20 s: the deadline stands.
  assert.equal(deadlineFrom(s([0.1, 9.1, 17.1, 40.1, 50.1, 60.2, 81.0, 95.0])), DEADLINE_MS)
  // The second a sub-window after the first came late: 30 s from it.
  assert.equal(deadlineFrom(s([0.1, 1.2, 110.0, 130.0])), 140_000)
  // None from 50.1 s until 138.2 s (the CI run in deadline()'s comment): 30 s from the next.
  assert.equal(deadlineFrom(s([0.1, 9.1, 17.1, 21.1, 40.1, 50.1, 138.2])), 168_200)
  // One in time, a gap after it: the deadline stands.
  assert.equal(deadlineFrom(s([0.1, 9.1, 40.1, 100.0, 200.0])), DEADLINE_MS)
})

// The healthy run (3 minutes) goes beside the two leaks, which go one after the other (80 s
// each): about 3 minutes in all instead of 6, with two servers at a time. Not all three at once:
// the diagnosis spec's same heap leak, three at a time, came at 123 and 138 s in two of twelve
// runs (V8's next full GC late; whether the load made it late is not known), past this
// deadline.
describe('leak detection on real Koa servers under load', { concurrency: true }, () => {
  describe('two leaks, one after the other', { concurrency: false }, () => {
    test(
      'a handler keeping ~10 KB of JS strings per request at 200 req/s: leak, suspect heap',
      { timeout: (RUN_S + 60) * 1000 },
      async (t) => {
        const r = await leakRun('heap')
        keepingTrace(t, 'heap-leak', r, () => assertLeak(t, r, 'heap'))
      },
    )

    test(
      'a handler keeping a Buffer.alloc(10_000) per request at 200 req/s: leak, suspect native',
      { timeout: (RUN_S + 60) * 1000 },
      async (t) => {
        const r = await leakRun('native')
        keepingTrace(t, 'native-leak', r, () => assertLeak(t, r, 'native'))
      },
    )
  })

  test(
    'no retention under load that changes 50 -> 300 -> 100 req/s: no leak in 3 minutes',
    { timeout: 300_000 },
    async (t) => {
      const phases = [
        { rate: 50, durationS: 60 },
        { rate: 300, durationS: 60 },
        { rate: 100, durationS: 60 },
      ]
      const r = await runScenario({
        server: { retain: 'none', sentry: SENTRY, recordHeap: true },
        phases,
        tailMs: 1000,
      })
      keepingTrace(t, 'healthy-steps', r, () => {
        const info = evidence(r)
        diagnose(t, info)
        // The load must have been what the test claims, or the absence of a leak proves nothing.
        assert.equal(r.phases.length, phases.length, `the load did not run every phase\n${info}`)
        for (const [i, p] of r.phases.entries()) {
          t.diagnostic(`phase ${i}: ${p.rate} req/s asked, ${p.rps} achieved, ${p.errors} errors`)
          assert.ok(p.rps >= 0.8 * p.rate, `phase ${i}: ${p.rps} req/s of ${p.rate}\n${info}`)
          assert.equal(p.errors + p.non2xx, 0, `phase ${i}: failed requests\n${info}`)
        }
        assert.ok(r.history && r.history.samples.length >= 600, `too few samples\n${info}`)
        assert.deepEqual(r.events, [], `leak events on a healthy server\n${info}`)
      })
    },
  )
})
