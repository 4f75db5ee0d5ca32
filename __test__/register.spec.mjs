// memsentry/register: real child processes preloading the module with -r / --import.
import { describe as suite, test } from 'node:test'
import assert from 'node:assert/strict'
import fs, { readFileSync } from 'node:fs'
import { execFileSync, spawn } from 'node:child_process'
import os from 'node:os'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, repoRoot, runNode, startNode } from './helpers/child.mjs'

const require = createRequire(import.meta.url)
const { MemorySentry } = require('../index.js')
const { pidstatHeader } = require('../integrations/format.js')

const fixtures = fileURLToPath(new URL('./fixtures/register/', import.meta.url))
const app = (name) => path.join(fixtures, name)
const registerCjs = path.join(repoRoot, 'integrations', 'register.js')
const registerMjs = path.join(repoRoot, 'integrations', 'register.mjs')

// Generous: a loaded 2-core machine can take seconds to start Node. A preload that kept the
// process alive would hit this (SIGKILL, timedOut) instead of exiting.
const TIMEOUT_MS = 60_000

// A child's environment: the test run's, without any MEMSENTRY_* it had (startNode merges
// process.env in; an undefined value drops the variable), then `env`.
const inherited = Object.fromEntries(
  Object.keys(process.env)
    .filter((k) => k.startsWith('MEMSENTRY_'))
    .map((k) => [k, undefined]),
)
const envFor = (env = {}) => ({ ...inherited, ...env })

function run(args, env) {
  return runNode(args, { timeoutMs: TIMEOUT_MS, env: envFor(env) })
}

const lines = (text) => text.split('\n').filter((l) => l !== '')

function pidstatLines(stderr, pid) {
  const re = new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\s+\\d+\\s+${pid}\\s`)
  return lines(stderr).filter((l) => re.test(l))
}

function assertClean(result) {
  assert.equal(result.timedOut, false, `the app did not exit by itself\n${describe(result)}`)
  assert.equal(result.signal, null, describe(result))
}

// The app's own output without memsentry, to compare with.
const baseline = new Map()
async function plain(args) {
  const key = JSON.stringify(args)
  if (!baseline.has(key)) baseline.set(key, await run(args))
  return baseline.get(key)
}

suite('memsentry/register', { concurrency: 3 }, () => {
  test('-r: pidstat header then a line per sample; the app output and exit code untouched', async () => {
    const args = [app('http-app.js'), '5', '200', '3']
    const { child, done } = startNode(['-r', registerCjs, ...args], {
      timeoutMs: TIMEOUT_MS,
      env: envFor({ MEMSENTRY_INTERVAL_MS: '200', MEMSENTRY_LOG: 'pidstat' }),
    })
    const [result, without] = await Promise.all([done, plain(args)])
    assertClean(result)
    assert.equal(without.code, 3, describe(without))
    assert.equal(result.code, 3, describe(result))
    assert.equal(result.stdout, without.stdout)
    assert.match(result.stdout, /served \/r4\napp done\n$/)

    const err = lines(result.stderr)
    assert.equal(err[0], pidstatHeader(), describe(result))
    const samples = pidstatLines(result.stderr, child.pid)
    assert.ok(samples.length >= 2, `fewer than 2 pidstat lines\n${describe(result)}`)
    // Nothing else: the header and the sample lines only.
    assert.equal(err.length, samples.length + 1, describe(result))
  })

  test('--import with an ES module app', async () => {
    const args = [app('timer-app.mjs'), '5', '200']
    const { child, done } = startNode(['--import', registerMjs, ...args], {
      timeoutMs: TIMEOUT_MS,
      env: envFor({ MEMSENTRY_INTERVAL_MS: '200', MEMSENTRY_LOG: 'pidstat' }),
    })
    const [result, without] = await Promise.all([done, plain(args)])
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    assert.equal(result.stdout, without.stdout)
    assert.equal(lines(result.stderr)[0], pidstatHeader(), describe(result))
    assert.ok(pidstatLines(result.stderr, child.pid).length >= 2, describe(result))
  })

  test('MEMSENTRY_LOG=json: one JSON object per line, samples with rss > 0', async () => {
    const { child, done } = startNode(['-r', registerCjs, app('http-app.js'), '5', '200'], {
      timeoutMs: TIMEOUT_MS,
      env: envFor({
        MEMSENTRY_INTERVAL_MS: '200',
        MEMSENTRY_LOG: 'json',
        MEMSENTRY_RSS_WARN: '1MiB',
      }),
    })
    const result = await done
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    const parsed = lines(result.stderr).map((l) => {
      try {
        return JSON.parse(l)
      } catch {
        assert.fail(`not JSON: ${l}\n${describe(result)}`)
      }
    })
    const samples = parsed.filter((o) => o.event === undefined)
    assert.ok(samples.length >= 2, describe(result))
    for (const s of samples) {
      assert.equal(s.pid, child.pid)
      assert.ok(s.rss > 0, JSON.stringify(s))
      assert.equal(typeof s.time, 'number')
    }
    const threshold = parsed.find((o) => o.event === 'threshold')
    assert.ok(threshold, describe(result))
    assert.equal(threshold.name, 'rss-warn')
    assert.equal(threshold.direction, 'up')
    assert.equal(threshold.threshold, 1024 * 1024)
    assert.ok(threshold.value > threshold.threshold)
  })

  test('samples carry V8 heap figures after a GC (the sentry has heap: true)', async () => {
    const { done } = startNode(['--expose-gc', '-r', registerCjs, app('gc-app.js')], {
      timeoutMs: TIMEOUT_MS,
      env: envFor({ MEMSENTRY_INTERVAL_MS: '100', MEMSENTRY_LOG: 'json' }),
    })
    const result = await done
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    const samples = lines(result.stderr)
      .map((l) => JSON.parse(l))
      .filter((o) => o.event === undefined)
    const withHeap = samples.filter((s) => s.heapUsed > 0)
    assert.ok(withHeap.length >= 1, `no sample with heapUsed\n${describe(result)}`)
    for (const s of withHeap) assert.ok(s.heapTotal >= s.heapUsed, JSON.stringify(s))
  })

  test('MEMSENTRY_LOG=json with 5, then 40 children: every line under PIPE_BUF, whole', async () => {
    // Children are found once a second: each phase of 2.5 s spans at least one discovery.
    const result = await run(['-r', registerCjs, app('children-app.js'), '5', '40', '2500'], {
      MEMSENTRY_INTERVAL_MS: '200',
      MEMSENTRY_LOG: 'json',
    })
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    const samples = lines(result.stderr).map((l) => {
      // A write past PIPE_BUF (4096 bytes) can land in part on a pipe and tear the line.
      assert.ok(Buffer.byteLength(l) < 4096, `${Buffer.byteLength(l)} bytes: ${l.slice(0, 200)}`)
      return JSON.parse(l)
    })
    const seen = samples.filter((s) => s.event === undefined && s.childrenRss > 0)
    // With 5 children the line lists them; with 40 it keeps the sums and leaves the list out.
    const listed = seen.filter((s) => s.children?.length === 5)
    assert.ok(listed.length >= 1, describe(result))
    const summed = seen.filter((s) => s.children === undefined)
    assert.ok(summed.length >= 1, describe(result))
    for (const s of summed) assert.ok(s.treeRss > s.rss, JSON.stringify(s))
  })

  test('a leak diagnosis is one line: where the leak allocates, or what grew (text and JSON)', async () => {
    const text = await run(['-r', registerCjs, app('diagnosis-app.js')], {
      REGISTER_MODULE: registerCjs,
      MEMSENTRY_INTERVAL_MS: '3600000',
    })
    assertClean(text)
    assert.equal(text.code, 0, describe(text))
    assert.deepEqual(lines(text.stderr), [
      'memsentry: leak allocated in cacheOrder (src/orders.js:12) 95%, render (src/orders.js:40) 5% ' +
        '(20.5 MiB sampled over 30 s)',
      'memsentry: leak outside the JS heap: over 60 s rssAnon +12.0 MiB, heap +0 B, external +12.0 MiB, ' +
        'arrayBuffers +12.0 MiB, outside the heap +12.0 MiB',
    ])

    const { child, done } = startNode(['-r', registerCjs, app('diagnosis-app.js')], {
      timeoutMs: TIMEOUT_MS,
      env: envFor({
        REGISTER_MODULE: registerCjs,
        MEMSENTRY_INTERVAL_MS: '3600000',
        MEMSENTRY_LOG: 'json',
      }),
    })
    const json = await done
    assertClean(json)
    const diagnosisLines = lines(json.stderr).filter((l) => l.includes('"leak-diagnosis"'))
    // Whole on a pipe: under PIPE_BUF, though the event had ten sites of eight frames each.
    for (const l of diagnosisLines) assert.ok(Buffer.byteLength(l) < 4096, `${l.length}: ${l}`)
    const events = diagnosisLines.map((l) => JSON.parse(l))
    assert.deepEqual(
      events.map((e) => [e.pid, e.suspect, e.sites.map((s) => [s.functionName, s.stack.length])]),
      [
        [
          child.pid,
          'heap',
          [
            ['cacheOrder', 3],
            ['render', 3],
            ['helper0', 3],
          ],
        ],
        [child.pid, 'native', []],
      ],
    )
    // What the line leaves out is counted: the seven sites of 64 KiB past the first three.
    assert.equal(events[0].otherBytes, 7 * 65536)
    assert.equal(events[1].native.outsideHeap.bytes, 12 * 1048576)
  })

  test('a bad MEMSENTRY_INTERVAL_MS: one line naming it and the value; the app runs', async () => {
    const args = [app('http-app.js'), '3', '100']
    const [result, without] = await Promise.all([
      run(['-r', registerCjs, ...args], { MEMSENTRY_INTERVAL_MS: 'abc', MEMSENTRY_LOG: 'pidstat' }),
      plain(args),
    ])
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    assert.equal(result.stdout, without.stdout)
    const mentions = lines(result.stderr).filter((l) => l.includes('MEMSENTRY_INTERVAL_MS'))
    assert.deepEqual(mentions, [
      "memsentry: MEMSENTRY_INTERVAL_MS must be an integer in 10..=3600000, got 'abc'; " +
        'using the default 1000',
    ])
    // It goes on with the default: the header is there.
    assert.ok(lines(result.stderr).includes(pidstatHeader()), describe(result))
  })

  test('bad values of several variables: one line each, the good ones still apply', async () => {
    const result = await run(['-r', registerCjs, app('inspect-app.js')], {
      REGISTER_MODULE: registerCjs,
      MEMSENTRY_INTERVAL_MS: '250',
      MEMSENTRY_RSS_WARN: '12 parsecs',
      MEMSENTRY_LEAK_WINDOW_MS: '500',
      MEMSENTRY_LOG: 'loud',
      MEMSENTRY_INTERVAL: '5',
    })
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    const err = lines(result.stderr)
    const about = (name) => err.filter((l) => l.includes(name))
    assert.deepEqual(about('MEMSENTRY_RSS_WARN'), [
      'memsentry: MEMSENTRY_RSS_WARN must be a size such as 600MiB, 1.5GB or 90%, ' +
        "got '12 parsecs'; no rss-warn threshold",
    ])
    assert.deepEqual(about('MEMSENTRY_LEAK_WINDOW_MS'), [
      "memsentry: MEMSENTRY_LEAK_WINDOW_MS must be an integer in 1000..=86400000, got '500'; " +
        'using the default 600000',
    ])
    assert.deepEqual(about('MEMSENTRY_LOG'), [
      "memsentry: MEMSENTRY_LOG must be one of 'events', 'pidstat', 'json', 'off', got 'loud'; " +
        "using the default 'events'",
    ])
    assert.deepEqual(about('MEMSENTRY_INTERVAL '), [
      'memsentry: unknown variable MEMSENTRY_INTERVAL (did you mean MEMSENTRY_INTERVAL_MS?)',
    ])
    const out = JSON.parse(result.stdout)
    assert.equal(out.constructorName, 'MemorySentry')
    assert.equal(out.options.intervalMs, 250)
    assert.deepEqual(out.options.thresholds, [])
    assert.equal(out.options.leak.windowMs, 600_000)
  })

  test('MEMSENTRY_RSS_WARN=1MiB prints a threshold line', async () => {
    const result = await run(['-r', registerCjs, app('timer-app.mjs'), '3', '100'], {
      MEMSENTRY_INTERVAL_MS: '100',
      MEMSENTRY_RSS_WARN: '1MiB',
    })
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    const hits = lines(result.stderr).filter((l) => l.startsWith('memsentry: threshold'))
    assert.equal(hits.length, 1, describe(result))
    assert.match(hits[0], /^memsentry: threshold rss-warn up: rss \d+(\.\d)? MiB, above 1\.0 MiB$/)
  })

  test('MEMSENTRY_LOG=off prints nothing from memsentry', async () => {
    const args = [app('http-app.js'), '4', '100']
    const [result, without] = await Promise.all([
      run(['-r', registerCjs, ...args], {
        MEMSENTRY_LOG: 'off',
        MEMSENTRY_INTERVAL_MS: '50',
        MEMSENTRY_RSS_WARN: '1MiB',
      }),
      plain(args),
    ])
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    assert.equal(result.stdout, without.stdout)
    assert.equal(result.stderr, '', describe(result))
  })

  test('the process exits by itself: the sentry is unref’d', async () => {
    // No work at all after the preload: the app ends at once, the sentry must not hold it.
    const started = performance.now()
    const result = await run(['-r', registerCjs, '-e', 'setTimeout(() => {}, 100)'], {
      MEMSENTRY_INTERVAL_MS: '3600000',
      MEMSENTRY_LOG: 'off',
    })
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    assert.ok(performance.now() - started < TIMEOUT_MS / 2, describe(result))
  })

  test('the sentry is exported (CommonJS and ESM, the same one), with the options set', async () => {
    let heapSnapshotSupported = true
    try {
      await new MemorySentry({ intervalMs: 3_600_000, heapSnapshot: { dir: '/tmp' } }).close()
    } catch {
      heapSnapshotSupported = false
    }
    const result = await run(['-r', registerCjs, app('inspect-app.js')], {
      REGISTER_MODULE: registerCjs,
      MEMSENTRY_LOG: 'off',
      MEMSENTRY_INTERVAL_MS: '300',
      MEMSENTRY_RSS_WARN: '600MiB',
      MEMSENTRY_LEAK_WINDOW_MS: '120000',
      MEMSENTRY_HEAPSNAPSHOT_DIR: 'snapshots',
    })
    assertClean(result)
    const out = JSON.parse(result.stdout)
    assert.equal(out.constructorName, 'MemorySentry')
    assert.equal(out.running, true)
    assert.equal(out.sameAsGlobal, true)
    assert.equal(out.options.intervalMs, 300)
    assert.equal(out.options.leak.windowMs, 120_000)
    assert.deepEqual(
      out.options.thresholds.map((t) => [t.name, t.metric, t.above]),
      [['rss-warn', 'rss', 600 * 1024 * 1024]],
    )
    if (heapSnapshotSupported) {
      assert.equal(out.options.heapSnapshot.dir, path.join(repoRoot, 'snapshots'))
      assert.equal(result.stderr, '', describe(result))
    } else {
      assert.equal(
        result.stderr,
        'memsentry: MEMSENTRY_HEAPSNAPSHOT_DIR is not supported by this version of memsentry; ' +
          'ignored\n',
      )
    }

    const esm = await run(['--import', registerMjs, app('inspect-app.mjs')], {
      MEMSENTRY_LOG: 'off',
    })
    assertClean(esm)
    assert.deepEqual(JSON.parse(esm.stdout), {
      constructorName: 'MemorySentry',
      running: true,
      same: true,
    })
  })

  test('one sentry per process: both preloads, and worker threads, start no second one', async () => {
    const result = await run(['-r', registerCjs, '--import', registerMjs, app('worker-app.js')], {
      MEMSENTRY_INTERVAL_MS: '100',
      MEMSENTRY_RSS_WARN: '1MiB',
      MEMSENTRY_LOG: 'pidstat',
    })
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    assert.equal(result.stdout, 'worker exited 0\n')
    const err = lines(result.stderr)
    assert.equal(err.filter((l) => l === pidstatHeader()).length, 1, describe(result))
    assert.equal(err.filter((l) => l.startsWith('memsentry: threshold')).length, 1)
  })

  test('a closed stderr does not disturb the app', async () => {
    const { child, done } = startNode(['-r', registerCjs, app('http-app.js'), '3', '100'], {
      timeoutMs: TIMEOUT_MS,
      env: envFor({ MEMSENTRY_INTERVAL_MS: '50', MEMSENTRY_RSS_WARN: '1MiB' }),
    })
    // Every write memsentry makes now fails with EPIPE.
    child.stderr.destroy()
    const result = await done
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    assert.match(result.stdout, /app done\n$/)
  })

  test('MEMSENTRY_RSS_WARN=0 is rejected like other bad values; no threshold fires', async () => {
    for (const raw of ['0', '0MiB', '0.0 GB', '0.4']) {
      const result = await run(['-r', registerCjs, app('inspect-app.js')], {
        REGISTER_MODULE: registerCjs,
        MEMSENTRY_INTERVAL_MS: '50',
        MEMSENTRY_RSS_WARN: raw,
      })
      assertClean(result)
      assert.deepEqual(lines(result.stderr), [
        'memsentry: MEMSENTRY_RSS_WARN must be a size above 0 such as 600MiB, 1.5GB or 90%, ' +
          `got '${raw}'; no rss-warn threshold`,
      ])
      assert.deepEqual(JSON.parse(result.stdout).options.thresholds, [], raw)
    }
  })

  test('stderr that nobody drains never stops the app: events only by default, lines dropped', async (t) => {
    // A FIFO with a reader that never reads, filled to the brim through a file description of
    // its own, so the child's stderr (another, blocking one) is a full pipe from the start.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-stderr-'))
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
    const fifo = path.join(dir, 'stderr')
    execFileSync('mkfifo', [fifo])
    const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants
    const reader = fs.openSync(fifo, O_RDONLY | O_NONBLOCK)
    t.after(() => fs.closeSync(reader))
    const filler = fs.openSync(fifo, O_WRONLY | O_NONBLOCK)
    try {
      for (;;) fs.writeSync(filler, Buffer.alloc(4096, 'x'))
    } catch (err) {
      assert.equal(err.code, 'EAGAIN')
    }
    fs.closeSync(filler)
    const full = fs.openSync(fifo, O_WRONLY)
    t.after(() => fs.closeSync(full))

    const runWith = (env) =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['-r', registerCjs, app('tick-app.js'), '3000'], {
          env: { ...process.env, ...envFor(env), REGISTER_MODULE: registerCjs },
          stdio: ['ignore', 'pipe', full],
        })
        let out = ''
        child.stdout.on('data', (chunk) => (out += chunk))
        // A child stuck in a write to the full pipe never exits by itself.
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
        child.on('close', (code, signal) => {
          clearTimeout(timer)
          resolve({ code, signal, out })
        })
      })
    // The default (events only), with a threshold crossed at once: its line is dropped.
    const events = await runWith({ MEMSENTRY_INTERVAL_MS: '10', MEMSENTRY_RSS_WARN: '1MiB' })
    assert.equal(events.signal, null, `stuck writing to stderr: ${JSON.stringify(events)}`)
    const e = JSON.parse(events.out)
    assert.ok(e.ticks >= 20, `a 100 ms timer ticked ${e.ticks} times in 3 s`)
    assert.equal(e.dropped, 1, 'the threshold line')
    // A line per sample at 10 ms, asked for: dropped too, and the timer still ticks.
    const pidstat = await runWith({ MEMSENTRY_INTERVAL_MS: '10', MEMSENTRY_LOG: 'pidstat' })
    assert.equal(pidstat.signal, null, `stuck writing to stderr: ${JSON.stringify(pidstat)}`)
    const p = JSON.parse(pidstat.out)
    assert.ok(p.ticks >= 20, `a 100 ms timer ticked ${p.ticks} times in 3 s`)
    assert.ok(p.dropped >= 100, `${p.dropped} lines dropped`)
  })

  test('package self-reference: node -r memsentry/register', async (t) => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'))
    if (pkg.exports?.['./register'] === undefined) {
      t.skip('package.json has no "./register" export yet')
      return
    }
    const { child, done } = startNode(
      ['-r', 'memsentry/register', app('http-app.js'), '3', '200'],
      {
        timeoutMs: TIMEOUT_MS,
        env: envFor({ MEMSENTRY_INTERVAL_MS: '200', MEMSENTRY_LOG: 'pidstat' }),
      },
    )
    const result = await done
    assertClean(result)
    assert.equal(result.code, 0, describe(result))
    assert.equal(lines(result.stderr)[0], pidstatHeader(), describe(result))
    assert.ok(pidstatLines(result.stderr, child.pid).length >= 1, describe(result))

    const esm = await run(['--import', 'memsentry/register', app('timer-app.mjs'), '2', '100'], {
      MEMSENTRY_LOG: 'pidstat',
    })
    assertClean(esm)
    assert.equal(esm.code, 0, describe(esm))
    assert.equal(lines(esm.stderr)[0], pidstatHeader(), describe(esm))
  })
})
