// What a Sample says, checked against the kernel's own files, and how samples reach JS.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

import * as esm from '../index.mjs'
import { MiB, memTotal, pageSize, readStatm, readStatus } from './helpers/proc.mjs'
import { drainEvents, sleep, waitFor } from './helpers/wait.mjs'
import { childScript, describe, runNode } from './helpers/child.mjs'

const require = createRequire(import.meta.url)
const { MemorySentry, snapshot, rss } = require('../index.js')

const SAMPLE_FIELDS = [
  'time',
  'pid',
  'rss',
  'vsz',
  'shared',
  'text',
  'data',
  'rssAnon',
  'rssFile',
  'rssShmem',
  'swap',
  'hwm',
  'memPercent',
  'threads',
  'minorFaults',
  'majorFaults',
  'minorFaultsPerSec',
  'majorFaultsPerSec',
]

function assertClose(actual, expected, tolerance, what) {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} vs ${expected} (allowed difference ${tolerance})`,
  )
}

// Closes every sentry a test made, even when an assertion failed.
/** Counts the samples the native side hands to JS, listened to or not: `.count`. */
function countEmitted(sentry) {
  const counter = { count: 0 }
  const emit = sentry.emit
  sentry.emit = function (name, ...args) {
    if (name === 'sample') counter.count++
    return emit.call(this, name, ...args)
  }
  return counter
}

function sentries(t) {
  const made = []
  t.after(() => Promise.all(made.map((s) => s.close())))
  return (options) => {
    const s = new MemorySentry(options)
    made.push(s)
    return s
  }
}

test('snapshot() rss, vsz, text, threads and memPercent match /proc/self and process.memoryUsage', () => {
  const page = pageSize()
  assert.ok(page >= 4096, `page size ${page}`)
  const s = snapshot()
  const statm = readStatm()
  const statusThreads = Number(readStatus().get('Threads'))
  const nodeRss = process.memoryUsage.rss()

  for (const field of SAMPLE_FIELDS) assert.ok(field in s, `sample has no '${field}'`)
  assert.equal(s.pid, process.pid)
  assertClose(s.time, Date.now(), 5000, 'time (epoch ms)')

  assert.equal(s.rss % page, 0, 'rss is a whole number of pages')
  assertClose(s.rss, statm.rss, MiB, 'rss vs statm resident × page size')
  assertClose(s.rss, nodeRss, nodeRss * 0.02, 'rss vs process.memoryUsage.rss()')
  assertClose(s.vsz, statm.vsz, Math.max(statm.vsz * 0.01, 16 * MiB), 'vsz vs statm size')
  assert.ok(s.vsz >= s.rss, `vsz ${s.vsz} >= rss ${s.rss}`)
  // The text segment of the node binary never changes size.
  assert.equal(s.text, statm.text, 'text vs statm text')
  assert.ok(s.shared > 0 && s.shared <= s.rss + MiB, `shared ${s.shared}`)
  assert.ok(s.data > 0, `data ${s.data}`)

  assert.ok(Number.isInteger(s.threads), `threads ${s.threads}`)
  assertClose(s.threads, statusThreads, 4, 'threads vs /proc/self/status Threads')

  const total = memTotal()
  assertClose(s.memPercent, (s.rss / total) * 100, 0.01, 'memPercent vs rss / MemTotal × 100')
  assert.ok(s.memPercent > 0 && s.memPercent < 100, `memPercent ${s.memPercent}`)

  // The status breakdown adds up to the statm figure (two files, read a moment apart).
  assertClose(s.rssAnon + s.rssFile + s.rssShmem, s.rss, 2 * MiB, 'rssAnon + rssFile + rssShmem')
  assert.ok(s.hwm + MiB >= s.rss, `hwm ${s.hwm} is the peak, at least rss ${s.rss}`)
  assert.ok(s.swap >= 0, `swap ${s.swap}`)
  assert.ok(s.minorFaults > 0 && s.majorFaults >= 0, 'cumulative fault counts')
})

test('rss() matches /proc/self/statm and process.memoryUsage.rss()', () => {
  const ours = rss()
  const statm = readStatm()
  const nodeRss = process.memoryUsage.rss()
  assert.equal(typeof ours, 'number')
  assert.equal(ours % pageSize(), 0, 'a whole number of pages')
  assertClose(ours, statm.rss, MiB, 'rss() vs statm')
  assertClose(ours, nodeRss, nodeRss * 0.02, 'rss() vs process.memoryUsage.rss()')
})

test('rss() follows a 64 MiB allocation', () => {
  const before = rss()
  const block = Buffer.allocUnsafeSlow(64 * MiB).fill(7)
  const during = rss()
  assert.ok(during - before >= 48 * MiB, `rss grew by ${(during - before) / MiB} MiB`)
  assertClose(during, readStatm().rss, MiB, 'rss() vs statm after the allocation')
  assert.equal(block[block.length - 1], 7)
})

test('snapshot({ smaps: true }) has 0 < uss <= pss <= rss; without smaps there is no pss', () => {
  const s = snapshot({ smaps: true })
  for (const field of ['pss', 'uss', 'swapPss']) {
    assert.equal(typeof s[field], 'number', `${field} is a number, got ${s[field]}`)
  }
  assert.ok(s.uss > 0, `uss ${s.uss} > 0`)
  assert.ok(s.uss <= s.pss, `uss ${s.uss} <= pss ${s.pss}`)
  // rss comes from statm and pss from smaps_rollup, read a moment apart.
  assert.ok(s.pss <= s.rss + MiB, `pss ${s.pss} <= rss ${s.rss}`)
  assert.ok(s.swapPss >= 0)

  const plain = snapshot()
  assert.equal(plain.pss, undefined)
  assert.equal(plain.uss, undefined)
})

test('sentry.snapshot() is a fresh reading and does not enter the history', async (t) => {
  const make = sentries(t)
  const sentry = make({ intervalMs: 3_600_000 })
  await waitFor(() => sentry.latest, { message: 'the first tick' })
  sentry.stop()
  const before = sentry.history().length
  const s = sentry.snapshot()
  assertClose(s.rss, readStatm().rss, MiB, 'sentry.snapshot().rss vs statm')
  assert.ok(s.time >= sentry.latest.time, 'newer than the latest tick')
  assert.equal(sentry.history().length, before)
})

test('minorFaultsPerSec rises after 50 MiB is allocated and touched between two samples', async (t) => {
  const make = sentries(t)
  const sentry = make({ intervalMs: 100 })
  // Two samples: the second is the first with a rate.
  await waitFor(() => sentry.history().length >= 2, { message: 'two samples' })
  const quiet = sentry.latest
  assert.ok(Number.isFinite(quiet.minorFaultsPerSec) && quiet.minorFaultsPerSec >= 0)
  assert.ok(Number.isFinite(quiet.majorFaultsPerSec) && quiet.majorFaultsPerSec >= 0)

  const allocStart = Date.now()
  const block = Buffer.allocUnsafeSlow(50 * MiB)
  // One write per page is enough to fault every page in.
  for (let i = 0; i < block.length; i += 4096) block[i] = 1
  const allocEnd = Date.now()

  const after = await waitFor(
    () => {
      const later = sentry.history({ sinceMs: allocEnd }).filter((s) => s.time > allocEnd)
      return later.length >= 2 ? later : null
    },
    { message: 'two samples after the allocation' },
  )
  // The faults land in the first sample taken after (or during) the allocation.
  const window = sentry.history({ sinceMs: allocStart })
  const faulted = window.find((s) => s.minorFaultsPerSec > 0)
  assert.ok(
    faulted,
    `some sample after the allocation has minorFaultsPerSec > 0: ${JSON.stringify(
      window.map((s) => s.minorFaultsPerSec),
    )}`,
  )
  assert.ok(
    after[after.length - 1].minorFaults > quiet.minorFaults,
    'the cumulative minor fault count grew',
  )
  assert.equal(block[0], 1)
})

test('history() is oldest first, bounded by historySize and filtered by sinceMs', async (t) => {
  const make = sentries(t)
  const sentry = make({ intervalMs: 20, historySize: 5 })
  await waitFor(() => sentry.stats().ticks >= 12, { message: '12 ticks' })
  sentry.stop()

  const all = sentry.history()
  assert.equal(all.length, 5, 'bounded by historySize')
  for (let i = 1; i < all.length; i++) {
    assert.ok(all[i].time > all[i - 1].time, `oldest first: ${all.map((s) => s.time)}`)
  }
  // History entries keep every figure but not the per-child list (the sums stay).
  const { children, ...newest } = sentry.latest
  assert.ok(Array.isArray(children))
  assert.deepEqual(all[all.length - 1], newest, 'the newest is sentry.latest')
  assert.deepEqual(sentry.history({}), all)

  const since = sentry.history({ sinceMs: all[2].time })
  assert.deepEqual(
    since.map((s) => s.time),
    all.slice(2).map((s) => s.time),
    'sinceMs keeps the samples at or after it',
  )
  assert.equal(sentry.history({ sinceMs: all[4].time + 1 }).length, 0)
  assert.equal(sentry.history({ sinceMs: Date.now() + 60_000 }).length, 0)
  assert.equal(sentry.history({ sinceMs: 0 }).length, 5)
})

test('history() holds every tick while fewer than historySize', async (t) => {
  const make = sentries(t)
  const sentry = make({ intervalMs: 20, historySize: 1000 })
  await waitFor(() => sentry.stats().ticks >= 6, { message: '6 ticks' })
  sentry.stop()
  const ticks = sentry.stats().ticks
  const all = sentry.history()
  assert.equal(all.length, ticks, 'one sample per tick')
  assert.ok(all[0].time <= all[all.length - 1].time)
})

test("'sample' events are sent only while someone listens", async (t) => {
  const make = sentries(t)
  const sentry = make({ intervalMs: 10 })
  const emitted = countEmitted(sentry)

  const t0 = sentry.stats().ticks
  await waitFor(() => sentry.stats().ticks >= t0 + 10, { message: '10 ticks without listener' })
  await drainEvents()
  assert.equal(emitted.count, 0, 'no sample reaches JS while nobody listens')

  const received = []
  const onSample = (s) => received.push(s)
  sentry.on('sample', onSample)
  await waitFor(() => received.length >= 5, { message: '5 sample events' })
  for (let i = 1; i < received.length; i++) {
    assert.ok(received[i].time >= received[i - 1].time, 'in order')
  }
  assert.equal(typeof received[0].rss, 'number')
  assert.equal(received[0].pid, process.pid)

  sentry.off('sample', onSample)
  // Events already queued may still arrive: let them, then count.
  await sleep(50)
  await drainEvents()
  const countAfterOff = received.length
  const emittedAfterOff = emitted.count
  const t1 = sentry.stats().ticks
  await waitFor(() => sentry.stats().ticks >= t1 + 10, { message: '10 more ticks' })
  await drainEvents()
  assert.equal(received.length, countAfterOff, 'the removed listener gets nothing more')
  assert.equal(emitted.count, emittedAfterOff, 'no sample reaches JS after the last listener left')

  // Two listeners, one removed: samples keep coming to the other.
  const a = []
  const b = []
  const onA = (s) => a.push(s)
  sentry.on('sample', onA)
  sentry.on('sample', (s) => b.push(s))
  await waitFor(() => a.length >= 2, { message: 'samples to listener a' })
  sentry.off('sample', onA)
  const bAtOff = b.length
  await waitFor(() => b.length >= bAtOff + 3, { message: 'samples to the remaining listener' })
})

test("removeAllListeners() leaves 'sample' events switching on and off", async (t) => {
  const make = sentries(t)
  // Without an event, or for 'newListener': the last 'sample' listener leaves, a new one comes.
  for (const event of [undefined, 'newListener']) {
    const sentry = make({ intervalMs: 10 })
    const first = () => {}
    sentry.on('sample', first)
    const removed =
      event === undefined ? sentry.removeAllListeners() : sentry.removeAllListeners(event)
    assert.equal(removed, sentry, 'returns the sentry')
    sentry.off('sample', first) // a no-op when removeAllListeners() took it
    let received = 0
    sentry.on('sample', () => received++)
    await waitFor(() => received >= 3, { message: `samples after removeAllListeners(${event})` })
  }
  // For 'removeListener': once the last 'sample' listener leaves, no sample reaches JS.
  const sentry = make({ intervalMs: 10 })
  const emitted = countEmitted(sentry)
  const only = () => {}
  sentry.on('sample', only)
  await waitFor(() => emitted.count >= 3, { message: 'samples while listened to' })
  sentry.removeAllListeners('removeListener')
  sentry.off('sample', only)
  await sleep(50)
  await drainEvents()
  const emittedAfterOff = emitted.count
  const ticks = sentry.stats().ticks
  await waitFor(() => sentry.stats().ticks >= ticks + 10, { message: '10 more ticks' })
  await drainEvents()
  assert.equal(emitted.count, emittedAfterOff, 'no sample reaches JS after the last listener left')
})

test('ESM import gives the same API as require', async () => {
  const { MemorySentry: EsmSentry, snapshot: esmSnapshot, rss: esmRss } = esm
  assert.equal(EsmSentry, MemorySentry)
  assert.equal(esmSnapshot, snapshot)
  assert.equal(esmRss, rss)
  assert.equal(esm.default.MemorySentry, MemorySentry)
  assert.ok(esmRss() > 0)
  assert.ok(esmSnapshot().rss > 0)
  const sentry = new EsmSentry({ intervalMs: 10 })
  try {
    const first = await waitFor(() => sentry.latest, { message: 'a sample' })
    assert.ok(first.rss > 0)
  } finally {
    await sentry.close()
  }
})

test("a threshold fires 'up' when 200 MiB is allocated and 'down' when it is freed", async () => {
  const result = await runNode(['--expose-gc', childScript('threshold-crossing.js')], {
    timeoutMs: 45_000,
  })
  const info = describe(result)
  assert.equal(result.code, 0, info)
  const lines = result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
  const byType = (type) => lines.filter((l) => l.type === type)
  assert.deepEqual(byType('error'), [], info)
  const [baseline] = byType('baseline')
  const [allocated] = byType('allocated')
  const [freed] = byType('freed')
  assert.ok(baseline && allocated && freed && byType('done').length === 1, info)
  assert.ok(allocated.rss - baseline.baseline >= 180 * MiB, `the child really allocated: ${info}`)

  const events = byType('threshold')
  assert.deepEqual(
    events.map((e) => `${e.name}:${e.direction}`),
    ['big:up', 'big:down'],
    `exactly one 'up' then one 'down': ${info}`,
  )
  const [up, down] = events
  assert.equal(up.metric, 'rss')
  assert.equal(up.threshold, baseline.above)
  assert.ok(up.value > up.threshold, `up value ${up.value} above ${up.threshold}`)
  assert.equal(up.value, up.sampleRss, 'the event value is the sample figure')
  assert.ok(up.sampleTime >= allocated.allocStart, 'up comes from a sample taken while allocating')
  // Two intervals, plus generous slack for a loaded machine.
  assert.ok(
    up.sampleTime - allocated.allocEnd <= 2 * baseline.intervalMs + 1800,
    `'up' sampled ${up.sampleTime - allocated.allocEnd} ms after the allocation finished`,
  )
  assert.ok(
    up.at - allocated.allocEnd <= 2000,
    `'up' delivered ${up.at - allocated.allocEnd} ms late`,
  )
  assert.ok(down.value < down.threshold, `down value ${down.value} below ${down.threshold}`)
  assert.ok(down.sampleTime >= freed.freeStart, "'down' comes from a sample after the free")
})

test('sentry.latest is frozen all the way down: one caller cannot change what another reads', async (t) => {
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
  t.after(() => child.kill())
  const make = sentries(t)
  const sentry = make({ intervalMs: 50, children: 'direct' })
  const latest = await waitFor(
    () => (sentry.latest?.children?.some((c) => c.pid === child.pid) ? sentry.latest : null),
    { message: 'a sample that lists the child' },
  )
  assert.ok(Object.isFrozen(latest))
  assert.ok(Object.isFrozen(latest.children))
  for (const c of latest.children) assert.ok(Object.isFrozen(c), `child ${c.pid}`)
  if (latest.cgroup !== null && latest.cgroup !== undefined) {
    assert.ok(Object.isFrozen(latest.cgroup))
    assert.throws(() => {
      latest.cgroup.limit = 0
    }, TypeError)
  }
  assert.throws(() => {
    latest.children[0].rss = 0
  }, TypeError)
  assert.throws(() => latest.children.push({}), TypeError)
})

test("a child first seen by snapshot() still gets its 'child' spawn and exit events", async (t) => {
  const { spawn } = await import('node:child_process')
  const { once } = await import('node:events')
  const make = sentries(t)
  const sentry = make({ intervalMs: 1000, children: 'direct' })
  await waitFor(() => sentry.latest, { message: 'the first tick' })
  const events = []
  sentry.on('child', (e) => events.push(e))
  // Stopped: no tick, so only snapshot() reads (and discovers, every second) until start().
  sentry.stop()
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
  t.after(() => child.kill())
  const listed = () => sentry.snapshot().children.some((c) => c.pid === child.pid)
  await waitFor(listed, { message: 'snapshot() lists the child' })
  sentry.start()
  await waitFor(() => events.find((e) => e.type === 'spawn' && e.pid === child.pid), {
    message: "the 'child' spawn event after the tick",
  })
  sentry.stop()
  child.kill()
  await once(child, 'exit')
  await waitFor(() => !listed(), { message: 'snapshot() no longer lists the child' })
  sentry.start()
  await waitFor(() => events.find((e) => e.type === 'exit' && e.pid === child.pid), {
    message: "the 'child' exit event after the tick",
  })
  assert.equal(events.filter((e) => e.pid === child.pid).length, 2, JSON.stringify(events))
})

test('a procRoot whose files never end (/dev/zero): null figures at once, memory bounded', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-endless-'))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  fs.mkdirSync(path.join(root, 'self'))
  for (const name of ['stat', 'statm', 'status', 'smaps_rollup']) {
    fs.symlinkSync('/dev/zero', path.join(root, 'self', name))
  }
  fs.symlinkSync('/dev/zero', path.join(root, 'meminfo'))
  // In a fresh process: its peak RSS is this read's, not an earlier test's.
  const probe = `
    const { snapshot } = require(${JSON.stringify(require.resolve('../index.js'))})
    const before = process.resourceUsage().maxRSS * 1024
    const t0 = performance.now()
    const s = snapshot({ procRoot: ${JSON.stringify(root)}, smaps: true, children: 'none' })
    const ms = performance.now() - t0
    const grew = process.resourceUsage().maxRSS * 1024 - before
    console.log(JSON.stringify({ ms, grew, rss: s.rss, threads: s.threads, pss: s.pss ?? null }))
  `
  const result = await runNode(['-e', probe], { timeoutMs: 60_000 })
  assert.equal(result.code, 0, describe(result))
  const r = JSON.parse(result.stdout.trim().split('\n').pop())
  t.diagnostic(`${Math.round(r.ms)} ms, peak RSS up ${Math.round(r.grew / MiB)} MiB`)
  assert.equal(r.rss, null)
  assert.equal(r.threads, null)
  assert.equal(r.pss, null)
  // Each file is read up to 16 MiB, then given up: not the machine's memory.
  assert.ok(r.grew < 128 * MiB, `peak RSS grew ${r.grew} bytes`)
})
