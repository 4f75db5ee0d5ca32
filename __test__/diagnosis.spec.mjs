// Leak diagnosis in every state of the process (lib/diagnosis.js): one profiler run per thread,
// shared by sentries; someone else's profiler left alone; stopped by close(), at exit and by
// worker termination; with --inspect and a debugger attached; without the inspector at all. Each
// case runs fixtures/diagnosis/child.cjs in a process of its own (a few seconds each), plus the
// native suspect's figures and the options.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { Session } from 'node:inspector'
import { fileURLToPath } from 'node:url'

import { runNode, describe as describeChild } from './helpers/child.mjs'

const require = createRequire(import.meta.url)
const { LeakDiagnoser, nativeGrowth, planRun } = require('../lib/diagnosis.js')
const { MemorySentry } = require('..')

const fixture = (name) => fileURLToPath(new URL(`./fixtures/diagnosis/${name}`, import.meta.url))
const childScript = fixture('child.cjs')
// `function keepOrders() {` in child.cjs: the function the diagnosis must name.
const KEEP_ORDERS_LINE = 16

/** Runs `node [execArgv] child.cjs config`; resolves { lines, code, signal, stderr, ms }. */
function runChild(config, { execArgv = [], timeoutMs = 30_000, onLine } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, [...execArgv, childScript, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const lines = []
    let out = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      out += chunk
      let nl
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = JSON.parse(out.slice(0, nl))
        out = out.slice(nl + 1)
        lines.push(line)
        onLine?.(line, child)
      }
    })
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ lines, code, signal, stderr, ms: Date.now() - started })
    })
  })
}

function assertNamesKeepOrders(d, what) {
  const [top] = d.sites
  assert.ok(top, `${what}: no site\n${JSON.stringify(d)}`)
  assert.equal(top.functionName, 'keepOrders', `${what}\n${JSON.stringify(d.sites, null, 1)}`)
  assert.equal(top.url, childScript)
  assert.equal(top.line, KEEP_ORDERS_LINE)
  assert.ok(top.share > 0.5, `${what}: share ${top.share}`)
  assert.equal(d.suspect, 'heap')
  assert.equal(d.samplingIntervalBytes, 4096)
  assert.ok(d.sampledBytes > 0 && d.durationMs >= 1000, JSON.stringify(d))
}

/** Whether a sampling heap profiler runs in this thread, asked through a session of our own. */
function samplerRuns() {
  const s = new Session()
  s.connect()
  let runs = null
  s.post('HeapProfiler.getSamplingProfile', (err) => (runs = !err))
  s.disconnect()
  return runs
}

test('a heap leak in a process of its own: the diagnosis names the keeping function', async () => {
  const r = await runChild({ durationMs: 1500, leaks: 2 })
  const info = `${JSON.stringify(r.lines)}\n${r.stderr}`
  assert.equal(r.code, 0, info)
  const diagnoses = r.lines.filter((l) => l.type === 'leak-diagnosis')
  // One per episode: two episodes, two diagnoses, each from a run of its own.
  assert.equal(diagnoses.length, 2, info)
  for (const d of diagnoses) assertNamesKeepOrders(d, info)
  assert.ok(diagnoses[1].since >= diagnoses[0].since + diagnoses[0].durationMs, info)
  assert.equal(r.lines.at(-1).type, 'done', info)
})

test('in a worker: the worker profiles its own isolate; terminated mid-run, nothing is left', async () => {
  const r = await runChild(
    { worker: true, durationMs: 1500, maxMs: 15_000 },
    {
      onLine: (line, child) => line.type === 'worker-exit' && child.kill('SIGTERM'),
    },
  )
  const info = `${JSON.stringify(r.lines)}\n${r.stderr}`
  const d = r.lines.find((l) => l.type === 'leak-diagnosis')
  assert.ok(d, info)
  assertNamesKeepOrders(d, info)
  assert.deepEqual(
    r.lines.map((l) => l.type),
    ['leak-diagnosis', 'done', 'worker-exit'],
    info,
  )

  // Terminated while its profiler runs: the worker goes, and with it the last thing the process
  // had to do: it exits cleanly at once (the run's timer does not hold it).
  const t = await runChild({ worker: true, durationMs: 10_000, terminateAfterMs: 500, maxMs: 3000 })
  const tinfo = `${JSON.stringify(t.lines)}\n${t.stderr}`
  assert.deepEqual(
    t.lines.map((l) => l.type),
    ['worker-exit'],
    tinfo,
  )
  assert.equal(t.code, 0, tinfo)
})

test('process.exit() while the profiler runs: the process exits at once, cleanly', async () => {
  const r = await runChild({ durationMs: 60_000, exitAfterMs: 300 })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.signal, null)
  assert.deepEqual(r.lines, [])
  assert.ok(r.ms < 10_000, `${r.ms} ms`)
})

test('with --inspect and a debugger attached, the diagnosis still comes', async (t) => {
  const inspect = await runChild({ durationMs: 1500 }, { execArgv: ['--inspect=127.0.0.1:0'] })
  const d = inspect.lines.find((l) => l.type === 'leak-diagnosis')
  assert.ok(d, `${JSON.stringify(inspect.lines)}\n${inspect.stderr}`)
  assertNamesKeepOrders(d, inspect.stderr)

  // A debugger client (as DevTools) attached over the inspector's WebSocket before the leak.
  const wsFlag = typeof WebSocket === 'function' ? [] : ['--experimental-websocket']
  const child = spawn(
    process.execPath,
    [
      '--inspect=127.0.0.1:0',
      childScript,
      JSON.stringify({ durationMs: 1500, waitForDebugger: true }),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (x) => (stdout += x))
  const url = await new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (x) => {
      stderr += x
      const m = /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(stderr)
      if (m) resolve(m[0])
    })
    child.on('close', () => reject(new Error(`no inspector url\n${stderr}`)))
  })
  const dbg = spawn(process.execPath, [...wsFlag, fixture('debugger.mjs'), url], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  t.after(() => {
    dbg.kill('SIGKILL')
    child.kill('SIGKILL')
  })
  let dbgOut = ''
  dbg.stdout.setEncoding('utf8').on('data', (x) => (dbgOut += x))
  dbg.stderr.setEncoding('utf8').on('data', (x) => (dbgOut += x))
  const deadline = Date.now() + 20_000
  while (!dbgOut.includes('attached') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50))
  assert.ok(dbgOut.includes('attached'), `debugger: ${dbgOut}\n${stderr}`)
  const closed = new Promise((resolve) => child.on('close', resolve))
  while (!stdout.includes('"type":"done"') && Date.now() < deadline + 20_000) {
    await new Promise((r) => setTimeout(r, 50))
  }
  // With a debugger attached, a process waits for it to leave before exiting.
  dbg.stdin.end()
  const code = await closed
  const lines = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
  const attached = lines.find((l) => l.type === 'leak-diagnosis')
  assert.ok(attached, `${stdout}\n${stderr}\n${dbgOut}`)
  assertNamesKeepOrders(attached, stderr)
  assert.match(stderr, /Debugger attached/)
  assert.equal(code, 0)
})

/** A diagnoser over `events` (an array it fills), as a sentry would hold one. */
function diagnoser(events, { durationMs = 300, history = () => [] } = {}) {
  return new LeakDiagnoser({
    emit: (type, payload) =>
      events.push(
        payload instanceof Error
          ? { type, code: payload.code, message: payload.message }
          : { type, ...payload },
      ),
    history,
    options: { durationMs, samplingInterval: 16384 },
    windowMs: 60_000,
  })
}
const heapLeak = { suspect: 'heap', slopeBytesPerSec: 1e6, windowMs: 60_000 }
const until = async (check, ms = 10_000) => {
  for (const end = Date.now() + ms; !check() && Date.now() < end;) {
    await new Promise((r) => setTimeout(r, 20))
  }
  return check()
}

test('two sentries in one thread share one run; the last to close stops it', async () => {
  const a = []
  const b = []
  const da = diagnoser(a)
  const db = diagnoser(b)
  da.onLeak(heapLeak)
  db.onLeak({ ...heapLeak, suspect: 'unknown' })
  await until(() => da.run !== null && db.run !== null)
  assert.equal(da.run, db.run, 'one run for both')
  assert.equal(samplerRuns(), true)
  await until(() => a.length > 0 && b.length > 0)
  assert.deepEqual(
    [a.map((e) => e.type), b.map((e) => e.type)],
    [['leak-diagnosis'], ['leak-diagnosis']],
  )
  assert.equal(a[0].since, b[0].since)
  assert.equal(a[0].suspect, 'heap')
  // The unknown suspect's diagnosis carries the history's figures too.
  assert.equal(b[0].suspect, 'unknown')
  assert.ok('native' in b[0] && !('native' in a[0]))
  assert.equal(samplerRuns(), false, 'stopped after the read')

  // Closed mid-run: the run goes on for the other one; closing that one too stops it, silently.
  const c = []
  const d = []
  const dc = diagnoser(c, { durationMs: 60_000 })
  const dd = diagnoser(d, { durationMs: 60_000 })
  dc.onLeak(heapLeak)
  dd.onLeak(heapLeak)
  await until(() => dc.run !== null && dd.run !== null)
  dc.close()
  assert.equal(samplerRuns(), true)
  dd.close()
  assert.equal(samplerRuns(), false)
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual([c, d], [[], []])
})

// Two sentries' diagnosers in one run, as two MemorySentry instances would share it (each emits
// on an EventEmitter of its own), in a child process: a listener error there must surface as an
// 'uncaughtException', which in this process would fail the test file. The run ends by its timer,
// (2 s: b joins well before it, on a loaded machine too), then (a second run) by 'leak-end'. A's
// listener throws, and A joined first, so A is told first.
const throwingListenerChild = `
const { EventEmitter } = require('node:events')
const { LeakDiagnoser } = require(${JSON.stringify(require.resolve('../lib/diagnosis.js'))})
const print = (o) => process.stdout.write(JSON.stringify(o) + '\\n')
process.on('unhandledRejection', (err) => print({ type: 'unhandledRejection', message: String(err?.message ?? err) }))
process.on('uncaughtException', (err) => print({ type: 'uncaughtException', message: err.message }))
const leak = { suspect: 'heap', slopeBytesPerSec: 1e6, windowMs: 60_000 }
const until = async (check) => {
  for (const end = Date.now() + 5000; !check();) {
    if (Date.now() > end) throw new Error('timed out: ' + check)
    await new Promise((r) => setTimeout(r, 10))
  }
}
function sentry(durationMs) {
  const emitter = new EventEmitter()
  const diagnoser = new LeakDiagnoser({
    emit: (type, payload) => emitter.emit(type, payload),
    history: () => [],
    options: { durationMs, samplingInterval: 16384 },
    windowMs: 60_000,
  })
  return { emitter, diagnoser }
}
async function round(end, durationMs) {
  const a = sentry(durationMs)
  const b = sentry(durationMs)
  a.emitter.on('leak-diagnosis', () => { throw new Error('listener a threw at ' + end) })
  const got = []
  b.emitter.on('leak-diagnosis', (d) => got.push(d))
  a.diagnoser.onLeak(leak)
  await until(() => a.diagnoser.run !== null)
  b.diagnoser.onLeak(leak)
  await until(() => b.diagnoser.run !== null)
  const shared = a.diagnoser.run === b.diagnoser.run
  if (end === 'leak-end') a.diagnoser.onLeakEnd()
  await until(() => got.length > 0)
  await new Promise((r) => setImmediate(r))
  print({
    type: 'round',
    end,
    shared,
    diagnoses: got.length,
    runsLeft: [a.diagnoser.run, b.diagnoser.run, globalThis[Symbol.for('memsentry.heapSamplingRun')] ?? null].filter((r) => r !== null).length,
  })
}
round('timer', 2000)
  .then(() => round('leak-end', 60_000))
  .then(() => print({ type: 'done' }), (err) => print({ type: 'failed', message: err.message }))
`

test("a 'leak-diagnosis' listener that throws: the others in the run still get theirs, no rejection", async () => {
  const r = await runNode(['-e', throwingListenerChild], { timeoutMs: 30_000 })
  const info = describeChild(r)
  assert.equal(r.code, 0, info)
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
  // The listener's own error, once per run, as a synchronous emit's would be; the other sentry
  // has its diagnosis; the run is over and its slot free (the second run could start).
  assert.deepEqual(
    lines,
    [
      { type: 'uncaughtException', message: 'listener a threw at timer' },
      { type: 'round', end: 'timer', shared: true, diagnoses: 1, runsLeft: 0 },
      { type: 'uncaughtException', message: 'listener a threw at leak-end' },
      { type: 'round', end: 'leak-end', shared: true, diagnoses: 1, runsLeft: 0 },
      { type: 'done' },
    ],
    info,
  )
})

test("someone else's sampling profiler is left alone: one 'error' says why", async () => {
  const other = new Session()
  other.connect()
  other.post('HeapProfiler.startSampling', { samplingInterval: 65536 })
  try {
    const events = []
    const d = diagnoser(events)
    d.onLeak(heapLeak)
    await until(() => events.length > 0)
    assert.deepEqual(
      events.map((e) => [e.type, e.code]),
      [['error', 'ERR_MEMSENTRY_PROFILER_BUSY']],
    )
    assert.match(events[0].message, /already runs in this thread/)
    assert.equal(samplerRuns(), true, 'the other profiler still runs')
  } finally {
    other.disconnect()
  }
  assert.equal(samplerRuns(), false)

  // Stopped by other code while ours runs: the read fails, and an 'error' says so.
  const events = []
  const d = diagnoser(events, { durationMs: 400 })
  d.onLeak(heapLeak)
  await until(() => d.run !== null)
  const stopper = new Session()
  stopper.connect()
  stopper.post('HeapProfiler.stopSampling')
  stopper.disconnect()
  await until(() => events.length > 0)
  assert.deepEqual(
    events.map((e) => [e.type, e.code]),
    [['error', 'ERR_MEMSENTRY_PROFILER']],
  )
})

test("without node:inspector: one 'error' for the life of the sentry, no diagnosis", async () => {
  const r = await runChild(
    { durationMs: 300, leaks: 3, maxMs: 2000 },
    { execArgv: ['-r', fixture('no-inspector.cjs')] },
  )
  const info = `${JSON.stringify(r.lines)}\n${r.stderr}`
  assert.equal(r.code, 0, info)
  assert.deepEqual(
    r.lines.map((l) => [l.type, l.code]),
    [
      ['error', 'ERR_MEMSENTRY_NO_INSPECTOR'],
      ['end', undefined],
    ],
    info,
  )
  assert.match(r.lines[0].message, /needs node:inspector.*Inspector is not available/)
})

/** Samples over 60 s, every 250 ms: `fields(tSeconds)` gives each one's figures. */
function history(fields) {
  return Array.from({ length: 241 }, (_, i) => ({ time: 1e12 + i * 250, ...fields(i / 4, i) }))
}

test('native suspects: growth of external, rssAnon against the heap, the growing child', async () => {
  const MiB = 1024 * 1024
  const saw = (t, i) => (i % 8) * MiB // a GC sawtooth on top of the floor
  const samples = history((t, i) => ({
    rss: 200 * MiB + t * 2 * MiB,
    rssAnon: 150 * MiB + t * 2 * MiB,
    heapUsed: 50 * MiB + saw(t, i),
    external: 10 * MiB + t * 1.5 * MiB,
    arrayBuffers: 8 * MiB + t * 1.5 * MiB,
    treeRss: 300 * MiB + t * 3 * MiB,
    children: [
      { pid: 11, comm: 'worker', rss: 40 * MiB + t * MiB },
      { pid: 12, comm: 'idle', rss: 60 * MiB },
      ...(t < 30 ? [{ pid: 13, comm: 'brief', rss: t * 5 * MiB }] : []),
    ],
  }))
  const g = nativeGrowth(samples)
  assert.equal(g.spanMs, 60_000)
  const perSec = (x) => Math.round(x.bytesPerSec / (MiB / 100)) / 100 // MiB/s, 2 decimals
  assert.equal(perSec(g.growth.rssAnon), 2)
  assert.equal(perSec(g.growth.external), 1.5)
  assert.equal(perSec(g.growth.arrayBuffers), 1.5)
  // The sawtooth's floor does not grow: the heap holds none of it.
  assert.equal(perSec(g.growth.heapUsed), 0)
  assert.equal(perSec(g.outsideHeap), 2)
  assert.equal(Math.round(g.growth.rssAnon.bytes / MiB), 120)
  // pid 13 came and went inside the window: not a candidate.
  assert.deepEqual([g.child.pid, g.child.comm, perSec(g.child)], [11, 'worker', 1])

  // No heap figures, no children: those are null, the rest still there.
  const bare = nativeGrowth(history((t) => ({ rss: 1e8 + t * 1e6, rssAnon: 9e7 + t * 1e6 })))
  assert.equal(bare.growth.heapUsed, null)
  assert.equal(bare.outsideHeap, null)
  assert.equal(bare.child, null)
  assert.equal(Math.round(bare.growth.rss.bytesPerSec), 1e6)
  assert.deepEqual(nativeGrowth([]).growth.rss, null)

  // Through a diagnoser: no profiler run; the event after the 'leak' event's listeners.
  const events = []
  let asked = null
  const d = diagnoser(events, {
    history: (sinceMs) => {
      asked = sinceMs
      return samples
    },
  })
  d.onLeak({ suspect: 'native', windowMs: 60_000, sample: { time: samples.at(-1).time } })
  assert.equal(d.run, null)
  assert.deepEqual(events, [])
  await until(() => events.length > 0)
  const [e] = events
  assert.equal(asked, samples.at(-1).time - 60_000)
  assert.deepEqual(
    [e.type, e.suspect, e.sites, e.sampledBytes, e.samplingIntervalBytes, e.durationMs, e.since],
    ['leak-diagnosis', 'native', [], 0, null, 60_000, samples[0].time],
  )
  assert.deepEqual(e.native, g)
  // A child suspect (a tree metric that a child's growth explains): the same, no profiler run.
  const childEvents = []
  const dc = diagnoser(childEvents, { history: () => samples })
  dc.onLeak({ suspect: 'child', windowMs: 60_000, sample: { time: samples.at(-1).time } })
  assert.equal(dc.run, null)
  await until(() => childEvents.length > 0)
  assert.deepEqual(
    [childEvents[0].suspect, childEvents[0].sites, childEvents[0].native.child.pid],
    ['child', [], 11],
  )
  // The sentry's history keeps no children (only their total): the child comes from the event.
  const noChildren = samples.map(({ children, ...rest }) => rest)
  const fromEvent = []
  const de = diagnoser(fromEvent, { history: () => noChildren })
  const named = { pid: 11, comm: 'worker', slopeBytesPerSec: MiB }
  de.onLeak({
    suspect: 'child',
    child: named,
    windowMs: 60_000,
    sample: { time: samples.at(-1).time },
  })
  await until(() => fromEvent.length > 0)
  assert.deepEqual(fromEvent[0].native.child, {
    pid: 11,
    comm: 'worker',
    bytesPerSec: MiB,
    bytes: 60 * MiB,
  })
  // Once per episode: a second 'leak' before 'leak-end' gets nothing.
  d.onLeak({ suspect: 'native', windowMs: 60_000, sample: { time: samples.at(-1).time } })
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(events.length, 1)
})

test('the run: 128 KiB for ~1000 samples of the leak; a tenth of the window, longer for a slow leak', () => {
  const plan = (windowMs, slopeBytesPerSec, opts = {}) => {
    const p = planRun({ windowMs, slopeBytesPerSec, ...opts })
    return [p.durationMs, p.samplingInterval]
  }
  const KiB = 1024
  // The specs' leaks: 2 MB/s against a 60 s window: 10 s at 128 KiB (150 samples).
  assert.deepEqual(plan(60_000, 2e6), [10_000, 128 * KiB])
  // A tenth of the window, 10 s to 60 s, for a leak fast enough.
  assert.deepEqual(plan(300_000, 2e6), [30_000, 128 * KiB])
  assert.deepEqual(plan(86_400_000, 4e6), [60_000, 256 * KiB])
  // Faster: the interval grows (a power of two) to keep ~1000 samples, up to 1 MiB.
  assert.deepEqual(plan(600_000, 1e9), [60_000, 1024 * KiB])
  // 1 KB/request at 60 req/s (60 kB/s) against the default 10 min window: 50 samples of 128 KiB
  // take 109 s.
  assert.deepEqual(plan(600_000, 60_000), [109_227, 128 * KiB])
  // At the default minSlope (512 KiB/min): up to the window, at most 10 min.
  assert.deepEqual(plan(600_000, (512 * KiB) / 60), [600_000, 128 * KiB])
  assert.deepEqual(plan(3_600_000, (512 * KiB) / 60), [600_000, 128 * KiB])
  assert.deepEqual(plan(20_000, 1000), [20_000, 128 * KiB])
  // No slope known: the base length.
  assert.deepEqual(plan(600_000, 0), [60_000, 128 * KiB])
  // The options win.
  assert.deepEqual(plan(600_000, 60_000, { durationMs: 5000 }), [5000, 128 * KiB])
  assert.deepEqual(plan(600_000, 1e9, { samplingInterval: 4096 }), [60_000, 4096])
})

test('options: leak.diagnose on by default, false turns it off, bad values throw', async () => {
  const opts = (diagnose) =>
    new MemorySentry({ leak: diagnose === undefined ? {} : { diagnose } }).options.leak.diagnose
  const sentries = []
  const make = (diagnose) => {
    const s = new MemorySentry({ intervalMs: 3_600_000, leak: { diagnose } })
    sentries.push(s)
    return s.options.leak.diagnose
  }
  try {
    // On by default: the normalized options then have no diagnose key at all.
    assert.equal(make(undefined), undefined)
    assert.equal(make(true), undefined)
    assert.equal(make(false), null)
    assert.deepEqual(make({ durationMs: 30_000, samplingInterval: '64KiB' }), {
      durationMs: 30_000,
      samplingInterval: 65536,
    })
  } finally {
    await Promise.all(sentries.map((s) => s.close()))
  }
  const throws = (diagnose, type, pattern) =>
    assert.throws(
      () => opts(diagnose),
      (err) => err instanceof type && pattern.test(err.message),
    )
  throws(
    'yes',
    TypeError,
    /^memsentry: leak\.diagnose must be a boolean or an object .*got string 'yes'/,
  )
  throws(
    { durationMs: 500 },
    RangeError,
    /leak\.diagnose\.durationMs must be an integer in 1000\.\.=3600000, got 500/,
  )
  throws(
    { durationMs: '1s' },
    TypeError,
    /leak\.diagnose\.durationMs must be a number, got string '1s'/,
  )
  throws(
    { samplingInterval: 100 },
    RangeError,
    /leak\.diagnose\.samplingInterval must be a size in 1KiB\.\.=64MiB, got 100/,
  )
  throws(
    { samplingInterval: '1 parsec' },
    RangeError,
    /leak\.diagnose\.samplingInterval must be a size such as 32KiB, got '1 parsec'/,
  )
  throws({ samplingInterval: [] }, TypeError, /leak\.diagnose\.samplingInterval .*got array/)
  throws(
    { duration: 1000 },
    TypeError,
    /unknown option 'leak\.diagnose\.duration' \(did you mean 'leak\.diagnose\.durationMs'\?\)/,
  )
})
