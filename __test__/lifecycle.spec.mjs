// The sampler thread's life: it never keeps a process alive unless asked, never crashes it, and
// is stopped and joined at stop() and close(), at worker termination and at exit; a running
// sentry is held until then, a stopped one nothing refers to is garbage-collected.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import fs, { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { threadNames } from './helpers/proc.mjs'
import { drainEvents, sleep, waitFor } from './helpers/wait.mjs'
import { childScript, describe, runNode, startNode } from './helpers/child.mjs'

const require = createRequire(import.meta.url)
const { MemorySentry, snapshot } = require('../index.js')

// Signs of a crash in a child's stderr: a V8/Node check, a Rust panic, a fatal signal.
const CRASH_MARKERS = ['Check failed', 'FATAL ERROR', 'panicked', 'Segmentation fault', 'Aborted']

function assertNoCrash(result) {
  assert.equal(result.timedOut, false, `the child hung: ${describe(result)}`)
  assert.equal(result.signal, null, `killed by a signal: ${describe(result)}`)
  for (const marker of CRASH_MARKERS) {
    assert.ok(!result.stderr.includes(marker), `stderr has '${marker}': ${describe(result)}`)
  }
}

function jsonLines(result) {
  return result.stdout
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
}

// A sentry's threads, as the child fixtures count them (memsentry-once, the module-level
// snapshot()'s reader, lives for the process and is not one).
const { samplerThreads } = require('./fixtures/children/threads.js')

test('a process whose only work left is a sampling sentry exits by itself, with its exit code', async () => {
  const result = await runNode([childScript('idle-exit.js')], { timeoutMs: 15_000 })
  assertNoCrash(result)
  assert.equal(result.code, 7, describe(result))
  const [exit] = jsonLines(result)
  assert.ok(exit && exit.type === 'exit', describe(result))
  assert.ok(exit.samples > 0, `'sample' events were flowing: ${describe(result)}`)
  assert.equal(exit.running, true, 'the sentry was still sampling when the process exited')
  assert.ok(exit.idleAt !== null, describe(result))
  assert.ok(exit.exitAt - exit.idleAt <= 1000, `exited ${exit.exitAt - exit.idleAt} ms after idle`)
  // Node start-up on a loaded machine, the 300 ms of work, then the exit.
  assert.ok(result.elapsedMs <= 3000, `wall time ${Math.round(result.elapsedMs)} ms`)
})

for (const where of ['timer', 'listener']) {
  test(`process.exit(3) from a ${where} while three sentries sample at 10 ms`, async () => {
    // A few runs: the exit lands at a different point of a tick each time.
    for (let run = 0; run < 3; run++) {
      const result = await runNode([childScript('process-exit.js'), where], { timeoutMs: 15_000 })
      assertNoCrash(result)
      assert.equal(result.code, 3, `run ${run}: ${describe(result)}`)
      assert.equal(result.stderr.trim(), '', `run ${run}: ${describe(result)}`)
    }
  })
}

test('sentry.ref() keeps the process alive until close()', async () => {
  const { child, done, lines } = startNode([childScript('ref-alive.js'), 'ref', '2500'], {
    timeoutMs: 20_000,
  })
  await waitFor(() => lines.some((l) => l.type === 'ready'), {
    timeoutMs: 10_000,
    message: "the child's 'ready' line",
  })
  const readyAt = Date.now()
  await sleep(1000)
  assert.equal(child.exitCode, null, 'still running 1 s after ready')
  assert.equal(child.signalCode, null)
  const result = await done
  assertNoCrash(result)
  assert.equal(result.code, 0, describe(result))
  assert.deepEqual(
    lines.map((l) => l.type),
    ['ready', 'closing', 'exit'],
    describe(result),
  )
  const closing = lines.find((l) => l.type === 'closing')
  const exit = lines.find((l) => l.type === 'exit')
  assert.ok(closing.samples > 0, 'it was sampling while it held the process')
  assert.ok(exit.at - closing.at <= 1000, `exited ${exit.at - closing.at} ms after close()`)
  assert.ok(Date.now() - readyAt <= 10_000)
})

for (const mode of ['plain', 'ref-unref', 'ref-stop']) {
  test(`a sentry after ${mode === 'plain' ? 'no ref()' : mode.replace('-', '() then ') + '()'} does not keep the process alive`, async () => {
    const result = await runNode([childScript('ref-alive.js'), mode, '5000'], { timeoutMs: 20_000 })
    assertNoCrash(result)
    assert.equal(result.code, 0, describe(result))
    assert.deepEqual(
      jsonLines(result).map((l) => l.type),
      ['ready', 'exit'],
      `exits before the 5 s close timer: ${describe(result)}`,
    )
    assert.ok(result.elapsedMs < 4000, `wall time ${Math.round(result.elapsedMs)} ms`)
  })
}

test('10,000 start/stop cycles and 100 sentries closed leave no threads and no descriptors', async () => {
  const result = await runNode(['--expose-gc', childScript('churn.js'), '10000', '100'], {
    timeoutMs: 50_000,
  })
  assertNoCrash(result)
  assert.equal(result.code, 0, describe(result))
  const [report] = jsonLines(result)
  assert.ok(report && !report.fatal, describe(result))
  const { baseline } = report
  // Counts only; the descriptors left over are named in the message of the phase that failed.
  const info = JSON.stringify(report, (key, value) => (key === 'extraFds' ? undefined : value))

  // The measurement sees sampler threads and their files while they run.
  assert.equal(report.manyTicked, true, info)
  assert.equal(report.manyRunning.samplers, 100, info)
  assert.ok(report.manyRunning.fdCount >= baseline.fdCount + 100, info)

  for (const phase of ['cyclesStopped', 'cyclesClosed', 'manyClosed', 'afterGc']) {
    assert.equal(report[phase].samplers, 0, `${phase}: sampler threads left\n${info}`)
    assert.equal(report[phase].threads, baseline.threads, `${phase}: thread count\n${info}`)
  }
  for (const phase of ['cyclesClosed', 'manyClosed', 'afterGc']) {
    assert.equal(
      report[phase].fdCount,
      baseline.fdCount,
      `${phase}: descriptors left open after close(): ${report[phase].extraFds.join(', ')}\n${info}`,
    )
  }
})

test('a running sentry nothing refers to goes on sampling (a top-level const in CommonJS)', async () => {
  const result = await runNode(['--expose-gc', childScript('top-level-sentry.js')], {
    timeoutMs: 30_000,
  })
  assertNoCrash(result)
  assert.equal(result.code, 0, describe(result))
  const [report] = jsonLines(result)
  assert.ok(report, describe(result))
  const info = JSON.stringify(report)
  assert.equal(report.collected, false, `the running sentry was not collected: ${info}`)
  assert.equal(report.samplers, 1, `its thread still samples: ${info}`)
  // 500 ms at 20 ms: ~25 samples; a loaded machine delivers fewer, none only if it stopped.
  assert.ok(report.samplesAfterGc >= 3, `'sample' events after the full GCs: ${info}`)
})

test('a full GC when the process is out of file descriptors: no crash, the heap still read', () => {
  // process.memoryUsage() fails with EMFILE then; V8's own statistics stand in for it.
  const out = execFileSync(
    'sh',
    [
      '-c',
      'ulimit -n 64 && exec "$0" "$@"',
      process.execPath,
      '--expose-gc',
      childScript('no-fds-gc.js'),
    ],
    { encoding: 'utf8', timeout: 30_000 },
  )
  const report = JSON.parse(out)
  const info = JSON.stringify(report)
  assert.equal(report.limit, 'EMFILE', info)
  assert.equal(report.memoryUsageFails, true, `memoryUsage() fails at the limit: ${info}`)
  assert.ok(
    report.heapUsedAfter - report.heapUsedBefore >= 0.8 * report.grownBytes,
    `heapUsed follows the ~32 MB kept: ${info}`,
  )
})

test('a stopped sentry dropped without close() is garbage-collected', async () => {
  const result = await runNode(['--expose-gc', childScript('gc-collect.js')], { timeoutMs: 30_000 })
  assertNoCrash(result)
  assert.equal(result.code, 0, describe(result))
  const [report] = jsonLines(result)
  assert.ok(report && !report.fatal, describe(result))
  const info = JSON.stringify(report)
  assert.equal(report.during.samplers, 3, `three sampler threads while in use: ${info}`)
  assert.equal(report.collected, 3, `all three sentries were collected: ${info}`)
  assert.equal(report.after.samplers, 0, `no sampler thread after GC: ${info}`)
  assert.equal(report.after.threads, report.baseline, `thread count back to baseline: ${info}`)
})

test('8 workers with sampling sentries, terminated mid-sampling, 50 rounds', async () => {
  const result = await runNode([childScript('workers.js'), '50', '8'], { timeoutMs: 120_000 })
  assertNoCrash(result)
  assert.equal(result.code, 0, describe(result))
  const [report] = jsonLines(result)
  assert.ok(report && !report.fatal, describe(result))
  const info = JSON.stringify(report)
  assert.deepEqual(report.earlyExits, [], `no worker died before it sampled: ${info}`)
  assert.equal(report.maxSamplers, 8, `eight sampler threads ran at once: ${info}`)
  assert.equal(report.after.samplers, 0, `no sampler thread left: ${info}`)
  assert.equal(report.after.count, report.baseline.count, `thread count back to baseline: ${info}`)
})

test('close() joins the thread, is idempotent and returns a Promise; a closed sentry cannot start', async () => {
  const before = samplerThreads()
  const sentry = new MemorySentry({ intervalMs: 10 })
  await waitFor(() => sentry.latest, { message: 'a first sample' })
  assert.equal(sentry.running, true)
  assert.equal(samplerThreads(), before + 1, 'one sampler thread while running')

  assert.equal(sentry.stop(), sentry, 'stop() returns the sentry')
  assert.equal(sentry.stop(), sentry, 'stop() twice is fine')
  assert.equal(sentry.running, false)
  assert.equal(samplerThreads(), before, 'stop() joins the thread')
  const ticksStopped = sentry.stats().ticks
  await sleep(60)
  assert.equal(sentry.stats().ticks, ticksStopped, 'no tick while stopped')

  sentry.start()
  sentry.start()
  // A new thread takes its name a moment after it starts.
  await waitFor(() => samplerThreads() === before + 1, { message: 'the restarted thread' })
  await sleep(30)
  assert.equal(samplerThreads(), before + 1, 'start() twice makes one thread')
  await waitFor(() => sentry.stats().ticks > ticksStopped, { message: 'ticks after restart' })

  const first = sentry.close()
  assert.ok(first instanceof Promise, 'close() returns a Promise')
  await first
  assert.equal(samplerThreads(), before, 'the thread is gone once close() resolved')
  assert.equal(sentry.closed, true)
  assert.equal(sentry.running, false)
  const second = sentry.close()
  assert.ok(second instanceof Promise, 'a second close() returns a Promise too')
  await second

  assert.throws(
    () => sentry.start(),
    (err) => err instanceof Error && /closed/.test(err.message),
  )
  assert.throws(() => sentry.snapshot(), /closed/)
  sentry.stop()
  sentry.stop()
  // What was sampled stays readable.
  assert.ok(sentry.latest.rss > 0)
  assert.ok(sentry.history().length > 0)
  const ticks = sentry.stats().ticks
  await sleep(60)
  assert.equal(sentry.stats().ticks, ticks, 'no tick after close()')
})

test('events the thread queued before close() are not delivered after it', async () => {
  const sentry = new MemorySentry({
    intervalMs: 10,
    children: 'none',
    thresholds: [{ name: 'any', metric: 'rss', above: 1 }],
  })
  const seen = []
  let closed = false
  for (const name of ['sample', 'threshold']) sentry.on(name, () => seen.push({ name, closed }))
  // Hold the event loop while the thread ticks, so that its events wait in the queue (a starved
  // machine may take a while to run the thread: spin until it has ticked twice, up to 5 s).
  const until = performance.now() + 5000
  while (sentry.stats().ticks < 2 && performance.now() < until);
  assert.ok(sentry.stats().ticks >= 2, `ticks while the loop was held: ${sentry.stats().ticks}`)
  closed = true
  const done = sentry.close()
  await done
  await sleep(50)
  assert.deepEqual(
    seen.filter((e) => e.closed),
    [],
    'nothing after close()',
  )
})

test("unreadable procfs and no 'error' listener: no crash, figures are null", async () => {
  const result = await runNode([childScript('error-no-listener.js')], { timeoutMs: 20_000 })
  assertNoCrash(result)
  assert.equal(result.code, 0, describe(result))
  const [report] = jsonLines(result)
  assert.ok(report, describe(result))
  assert.ok(report.ticks >= 10, `kept ticking: ${JSON.stringify(report)}`)
  assert.equal(report.running, true)
  assert.equal(report.hasLatest, true)
  assert.equal(report.latestRss, null)
  assert.equal(report.latestThreads, null)
})

test("'error' events carry a code and come once per distinct failure, not once per tick", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'memsentry-empty-'))
  mkdirSync(path.join(root, 'self'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  const sentry = new MemorySentry({ intervalMs: 20, procRoot: root })
  t.after(() => sentry.close())
  const errors = []
  sentry.on('error', (err) => errors.push(err))

  await waitFor(() => sentry.stats().ticks >= 2 && errors.length > 0, { message: 'errors' })
  await sleep(50)
  await drainEvents()
  const early = errors.length
  const ticksEarly = sentry.stats().ticks
  await waitFor(() => sentry.stats().ticks >= ticksEarly + 10, { message: '10 more ticks' })
  await sleep(50)
  await drainEvents()

  assert.equal(
    errors.length,
    early,
    `no repeat over 10 more ticks: ${errors.map((e) => e.message)}`,
  )
  for (const err of errors) {
    assert.ok(err instanceof Error, 'an Error')
    assert.equal(err.code, 'ENOENT', err.message)
    assert.match(err.message, /^memsentry: /)
    assert.ok(err.path.startsWith(root), `path ${err.path} is under the proc root`)
  }
  const paths = errors.map((e) => e.path)
  assert.equal(new Set(paths).size, paths.length, `one error per failing file: ${paths}`)
  assert.ok(
    paths.some((p) => p.endsWith(path.join('self', 'statm'))),
    `statm is among the failures: ${paths}`,
  )
  assert.equal(sentry.latest.rss, null)
  assert.equal(sentry.running, true, 'sampling goes on')
})

// --- reads that hang ----------------------------------------------------------------------------

/** A FIFO at `file`: opening it blocks until a writer comes, as a read of a D-state child does. */
function fifo(file) {
  execFileSync('mkfifo', [file])
  // Releases whoever is blocked in open() (a non-blocking writer open works once a reader waits).
  return (content) => {
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)
      fs.writeSync(fd, content)
      fs.closeSync(fd)
    } catch {
      // nobody waiting
    }
  }
}

/**
 * A proc root (removed after the test) whose self/statm is a FIFO: every tick's read blocks
 * until the statm content is written, every `releaseEveryMs`; without a bound, each wait in the
 * tests below lasts that long.
 */
function hangingProcRoot(t, prefix, releaseEveryMs) {
  const root = mkdtempSync(path.join(tmpdir(), prefix))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(path.join(root, 'self'))
  const release = fifo(path.join(root, 'self', 'statm'))
  const releaser = setInterval(() => release('1 1 1 1 0 1 0\n'), releaseEveryMs)
  t.after(() => clearInterval(releaser))
  return root
}

/**
 * A copy of the children fixture (removed after the test) as a proc root, with process 100 as
 * `self`, whose child 101's cmdline is a FIFO: reading it blocks until `release(content)`.
 */
function procWithHangingChild(t, prefix) {
  const fixture = fileURLToPath(
    new URL('../tests/fixtures/children/with-children-files/proc', import.meta.url),
  )
  const root = mkdtempSync(path.join(tmpdir(), prefix))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  fs.cpSync(fixture, root, { recursive: true })
  fs.symlinkSync('100', path.join(root, 'self'))
  fs.rmSync(path.join(root, '101', 'cmdline'))
  return { root, release: fifo(path.join(root, '101', 'cmdline')) }
}

test('a tick blocked in a read holds up neither close(), nor GC, nor process exit', async (t) => {
  const root = hangingProcRoot(t, 'memsentry-hang-', 12_000)
  const started = performance.now()
  const { done, lines } = startNode(['--expose-gc', childScript('hang.js'), root], {
    timeoutMs: 40_000,
  })
  const result = await done
  assertNoCrash(result)
  const [{ closeMs, gcMaxGapMs }] = jsonLines(result)
  const exitMs = result.elapsedMs
  t.diagnostic(
    `close ${Math.round(closeMs)} ms, GC gap ${Math.round(gcMaxGapMs)} ms, exit ${Math.round(exitMs)} ms`,
  )
  assert.ok(closeMs < 1000, `close() took ${closeMs} ms`)
  assert.ok(gcMaxGapMs < 1000, `the event loop stalled ${gcMaxGapMs} ms around GC`)
  assert.ok(exitMs < 8000, `the process took ${exitMs} ms to end (${performance.now() - started})`)
  assert.equal(lines.length, 1)
})

test('snapshot() with children whose read hangs throws after about a second, later calls of that tree at once; the process exits', async (t) => {
  const root = hangingProcRoot(t, 'memsentry-hang-snap-', 12_000)
  const probe = `
    const { snapshot } = require(${JSON.stringify(require.resolve('../index.js'))})
    const calls = []
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now()
      let error = null
      try {
        snapshot({ procRoot: ${JSON.stringify(root)}, children: 'direct' })
      } catch (e) {
        error = e.message
      }
      calls.push({ ms: performance.now() - t0, error })
    }
    // Another tree is not refused because this one hangs.
    const t0 = performance.now()
    const other = snapshot({ children: 'direct' })
    const elsewhere = { ms: performance.now() - t0, pid: other.pid }
    process.stdout.write(JSON.stringify({ calls, elsewhere }) + '\\n')
  `
  const { done } = startNode(['-e', probe], { timeoutMs: 40_000 })
  const result = await done
  assertNoCrash(result)
  const [
    {
      calls: [first, ...later],
      elsewhere,
    },
  ] = jsonLines(result)
  t.diagnostic(
    `snapshot() gave up after ${Math.round(first.ms)} ms, then ${later.map((c) => Math.round(c.ms)).join(' and ')} ms; exit ${Math.round(result.elapsedMs)} ms`,
  )
  assert.match(first.error, /memsentry: cannot read now: a read is hanging \(waited 1 s\)/)
  assert.ok(first.ms < 5000, `snapshot() blocked ${first.ms} ms`)
  // The first read still hangs: the later calls neither wait for it again nor leave another
  // thread in the same read.
  for (const c of later) {
    assert.match(c.error, /memsentry: cannot read now: a read is hanging \(an earlier call's/)
    assert.ok(c.ms < 500, `a later snapshot() blocked ${c.ms} ms`)
  }
  assert.ok(elsewhere.pid > 0, 'a snapshot of /proc read while the fixture root hangs')
  assert.ok(elsewhere.ms < 500, `a snapshot of /proc blocked ${elsewhere.ms} ms`)
  assert.ok(result.elapsedMs < 8000, `the process took ${result.elapsedMs} ms to end`)
})

test("a child's hung read refuses later snapshot()s with children, not those of the process alone", async (t) => {
  const { root, release } = procWithHangingChild(t, 'memsentry-hang-snapkid-')
  t.after(() => release('sleep\u000030\u0000'))

  const timed = (f) => {
    const t0 = performance.now()
    try {
      return { ms: performance.now() - t0, value: f(), error: null }
    } catch (e) {
      return { ms: performance.now() - t0, value: null, error: e.message }
    }
  }
  const withKids = timed(() => snapshot({ procRoot: root, children: 'direct' }))
  assert.match(String(withKids.error), /a read is hanging \(waited 1 s\)/)
  const again = timed(() => snapshot({ procRoot: root, children: 'tree' }))
  assert.match(String(again.error), /a read is hanging \(an earlier call's/)
  assert.ok(again.ms < 500, `a later snapshot() with children blocked ${again.ms} ms`)
  const alone = timed(() => snapshot({ procRoot: root }))
  assert.equal(alone.error, null)
  assert.equal(alone.value.pid, 100)
  assert.ok(alone.ms < 500, `snapshot() of the process alone blocked ${alone.ms} ms`)
})

test('a hung meminfo (lxcfs) holds up neither new MemorySentry() nor snapshot() for more than a second', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'memsentry-hang-meminfo-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  // No writer ever comes: opening it blocks, as a read served by a hung FUSE daemon does.
  execFileSync('mkfifo', [path.join(root, 'meminfo')])
  const probe = `
    const { MemorySentry, snapshot } = require(${JSON.stringify(require.resolve('../index.js'))})
    const timed = (f) => {
      const t0 = performance.now()
      try {
        f()
        return { ms: performance.now() - t0, error: null }
      } catch (e) {
        return { ms: performance.now() - t0, error: e.message }
      }
    }
    const ctor = timed(() => new MemorySentry({ procRoot: ${JSON.stringify(root)}, children: 'none' }))
    const ctorAgain = timed(() => new MemorySentry({ procRoot: ${JSON.stringify(root)}, children: 'none' }))
    const snap = timed(() => snapshot({ procRoot: ${JSON.stringify(root)} }))
    const again = timed(() => snapshot({ procRoot: ${JSON.stringify(root)} }))
    // The machine's own /proc is not refused because the fixture root hangs.
    let pid = null
    const elsewhere = timed(() => {
      const s = new MemorySentry({ children: 'none' })
      pid = snapshot().pid
      s.close()
    })
    process.stdout.write(JSON.stringify({ ctor, ctorAgain, snap, again, elsewhere, pid }) + '\\n')
  `
  const { done } = startNode(['-e', probe], { timeoutMs: 40_000 })
  const result = await done
  assertNoCrash(result)
  const [{ ctor, ctorAgain, snap, again, elsewhere, pid }] = jsonLines(result)
  t.diagnostic(
    `constructor gave up after ${Math.round(ctor.ms)} ms, snapshot() after ${Math.round(snap.ms)} ms, then ${Math.round(again.ms)} ms; exit ${Math.round(result.elapsedMs)} ms`,
  )
  assert.match(ctor.error, /^memsentry: cannot start: a read is hanging \(waited 1 s\)/)
  assert.ok(ctor.ms < 5000, `new MemorySentry() blocked ${ctor.ms} ms`)
  // That read still hangs: the next sentry is refused at once, with no thread left in it.
  assert.match(ctorAgain.error, /^memsentry: cannot start: a read is hanging \(an earlier call's/)
  assert.ok(ctorAgain.ms < 500, `a second new MemorySentry() blocked ${ctorAgain.ms} ms`)
  assert.match(snap.error, /^memsentry: cannot read now: a read is hanging \(waited 1 s\)/)
  assert.ok(snap.ms < 5000, `snapshot() blocked ${snap.ms} ms`)
  // That read still hangs: the next call neither waits for it again nor leaves another thread.
  assert.match(again.error, /^memsentry: cannot read now: a read is hanging \(an earlier call's/)
  assert.ok(again.ms < 500, `a later snapshot() blocked ${again.ms} ms`)
  assert.equal(elsewhere.error, null)
  assert.ok(pid > 0)
  assert.ok(result.elapsedMs < 8000, `the process took ${result.elapsedMs} ms to end`)
})

test("close() ends the sentry's reader thread", async () => {
  const readers = () => threadNames().filter((name) => name === 'memsentry-read').length
  const sentries = Array.from(
    { length: 3 },
    () => new MemorySentry({ children: 'direct', leak: false }),
  )
  await waitFor(() => sentries.every((s) => s.latest), { message: 'a first sample of each' })
  const before = readers()
  // With children, a sentry's snapshot() reads on a reader thread of its own.
  for (const s of sentries) assert.ok(s.snapshot().pid > 0)
  assert.equal(readers(), before + 3, 'one reader thread per sentry')
  await Promise.all(sentries.map((s) => s.close()))
  // Still referenced: garbage collection is not what ends them.
  await waitFor(() => readers() === before, {
    timeoutMs: 5000,
    message: () => `${readers() - before} reader threads left after close()`,
  })
})

test('a worker whose sentry is stuck in a read terminates at once', async (t) => {
  const root = hangingProcRoot(t, 'memsentry-hang-w-', 8000)
  const { Worker } = await import('node:worker_threads')
  const worker = new Worker(
    `const { MemorySentry } = require(${JSON.stringify(require.resolve('../index.js'))})
     globalThis.s = new MemorySentry({ intervalMs: 10, procRoot: ${JSON.stringify(root)}, children: 'none', leak: false })
     require('node:worker_threads').parentPort.postMessage('started')
     setInterval(() => {}, 1000)`,
    { eval: true },
  )
  await new Promise((resolve) => worker.once('message', resolve))
  await sleep(300)
  const t0 = performance.now()
  await worker.terminate()
  const ms = performance.now() - t0
  t.diagnostic(`terminate() took ${Math.round(ms)} ms`)
  assert.ok(ms < 2000, `terminate() took ${ms} ms`)
})

test('a child whose reads hang is skipped for a while, and said once as an error', async (t) => {
  const { root, release } = procWithHangingChild(t, 'memsentry-hang-child-')
  const sentry = new MemorySentry({
    intervalMs: 50,
    procRoot: root,
    children: 'direct',
    leak: false,
  })
  t.after(() => sentry.close())
  const errors = []
  sentry.on('error', (e) => errors.push(e))
  const releaser = setTimeout(() => release('sleep\u000030\u0000'), 1500)
  t.after(() => clearTimeout(releaser))
  const kids = (s) => Object.fromEntries((s?.children ?? []).map((c) => [c.pid, c]))
  await waitFor(() => errors.some((e) => e.code === 'ETIMEDOUT'), {
    timeoutMs: 10_000,
    message: () => `no ETIMEDOUT error: ${errors.map((e) => `${e.code} ${e.message}`).join('; ')}`,
  })
  const ticks = sentry.stats().ticks
  await waitFor(() => sentry.stats().ticks >= ticks + 10, { timeoutMs: 10_000 })
  const slow = errors.filter((e) => e.code === 'ETIMEDOUT')
  assert.equal(slow.length, 1, slow.map((e) => e.message).join('\n'))
  // Ten ticks of 50 ms are well inside the minute it is skipped for.
  assert.match(slow[0].message, /child 101 is skipped, and read again in 60 s/)
  const latest = kids(sentry.latest)
  assert.equal(latest[101].rss, null, 'listed without figures')
  assert.ok(latest[102].rss > 0, 'the others are read as before')
})
