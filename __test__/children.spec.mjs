// Children on a real process tree: a Node parent (fixtures/tree/parent.mjs) watches its
// descendants with a 'tree' and a 'direct' sentry at once, starts three perl children allocating
// 20, 40 and 60 MiB (the 40 MiB one starts a 30 MiB grandchild), kills one, and reports what the
// sentries saw; these tests judge that report.
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { runNode, describe as describeRun } from './helpers/child.mjs'

const MiB = 1024 * 1024
const PARENT = fileURLToPath(new URL('./fixtures/tree/parent.mjs', import.meta.url))
const SENTRIES = ['tree', 'direct']

let run
let lines
let procs = []
const byName = (name) => procs.find((p) => p.name === name)

function report() {
  return describeRun(run)
}

function events(kind, sentry, filter = () => true) {
  return lines.filter((l) => l.kind === kind && l.sentry === sentry && filter(l))
}

function within(actual, expected, fraction) {
  return actual != null && Math.abs(actual - expected) <= fraction * expected
}

describe('children on a real process tree', () => {
  before(async () => {
    run = await runNode([PARENT], { timeoutMs: 90_000 })
    lines = run.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l))
      .map((l, index) => ({ ...l, index }))
    procs = lines.find((l) => l.kind === 'ready')?.procs ?? []
  })

  it('the parent ran every stage and ended cleanly', () => {
    assert.equal(run.code, 0, report())
    assert.deepEqual(
      lines.filter((l) => l.kind === 'timeout' || l.kind === 'error'),
      [],
      report(),
    )
    assert.equal(procs.length, 4, report())
    assert.ok(
      lines.some((l) => l.kind === 'end'),
      report(),
    )
  })

  it("'tree' sees the 4 descendants and 'direct' the 3 children, in every sample", () => {
    const all = procs.map((p) => p.pid).sort()
    const direct = procs
      .filter((p) => p.name !== 'tree-g30')
      .map((p) => p.pid)
      .sort()
    assert.equal(byName('tree-g30').ppid, byName('tree-c40').pid, 'the grandchild is under c40')
    const want = { tree: all, direct }
    for (const sentry of SENTRIES) {
      const samples = events('sample', sentry)
      assert.ok(samples.length >= 3, `${sentry}: ${samples.length} samples\n${report()}`)
      for (const s of samples) {
        const pids = s.children.map((c) => c.pid).sort()
        assert.deepEqual(pids, want[sentry], `${sentry} sample at ${s.t} ms`)
        for (const c of s.children) {
          const p = procs.find((q) => q.pid === c.pid)
          assert.equal(c.comm, p.name, `${sentry}: comm of ${c.pid}`)
          assert.equal(c.ppid, p.ppid, `${sentry}: ppid of ${p.name}`)
          assert.equal(c.cmdline, p.name, `${sentry}: cmdline of ${p.name}`)
        }
      }
    }
  })

  it("each child's rss is within 10% of its own statm, and above what it allocated", () => {
    for (const sentry of SENTRIES) {
      for (const s of events('sample', sentry)) {
        for (const c of s.children) {
          const p = procs.find((q) => q.pid === c.pid)
          assert.ok(c.statmRss > 0, `${sentry}: statm of ${p.name} unreadable`)
          assert.ok(
            within(c.rss, c.statmRss, 0.1),
            `${sentry}: ${p.name} rss ${c.rss} against statm ${c.statmRss}`,
          )
          assert.ok(c.rss >= p.mib * MiB, `${sentry}: ${p.name} rss ${c.rss} < ${p.mib} MiB`)
          // perl itself is about 5 MiB: the allocation dominates.
          assert.ok(c.rss < (p.mib + 20) * MiB, `${sentry}: ${p.name} rss ${c.rss}`)
        }
      }
    }
  })

  it('childrenRss is the sum of the children in the same sample, treeRss = rss + childrenRss', () => {
    for (const sentry of SENTRIES) {
      for (const s of events('sample', sentry)) {
        const sum = s.children.reduce((acc, c) => acc + c.rss, 0)
        assert.equal(s.childrenRss, sum, `${sentry} sample at ${s.t} ms`)
        assert.ok(s.rss > 0, `${sentry}: own rss ${s.rss}`)
        assert.equal(s.treeRss, s.rss + s.childrenRss, `${sentry} sample at ${s.t} ms`)
      }
    }
  })

  it("'spawn' comes first, once for each watched descendant", () => {
    const firstSample = Math.min(...lines.filter((l) => l.kind === 'sample').map((l) => l.index))
    for (const sentry of SENTRIES) {
      const watched = procs.filter((p) => sentry === 'tree' || p.name !== 'tree-g30')
      const spawns = events('child', sentry, (e) => e.type === 'spawn')
      assert.deepEqual(
        spawns.map((e) => e.pid).sort(),
        watched.map((p) => p.pid).sort(),
        `${sentry}: one spawn per watched descendant\n${report()}`,
      )
      for (const e of spawns) {
        const p = procs.find((q) => q.pid === e.pid)
        assert.equal(e.ppid, p.ppid, `${sentry}: spawn ppid of ${p.name}`)
        assert.equal(typeof e.comm, 'string')
        assert.ok(e.index < firstSample, `${sentry}: spawn of ${p.name} after the samples`)
        const exit = events('child', sentry, (x) => x.type === 'exit' && x.pid === e.pid)[0]
        if (exit) assert.ok(e.index < exit.index, `${sentry}: exit of ${p.name} before its spawn`)
        const up = events('threshold', sentry, (x) => x.pid === e.pid)[0]
        if (up) assert.ok(e.index < up.index, `${sentry}: threshold of ${p.name} before spawn`)
      }
    }
  })

  it("killing a child gives its 'exit' within 5 s, with its last rss and seenMs", () => {
    const victim = byName('tree-c20')
    const kill = lines.find((l) => l.kind === 'kill')
    const cleanup = lines.find((l) => l.kind === 'cleanup')
    assert.ok(kill && cleanup, report())
    assert.equal(kill.pid, victim.pid)
    // its rss as the parent read it from statm while it lived
    const lastStatm = events('sample', 'tree')
      .flatMap((s) => s.children)
      .filter((c) => c.pid === victim.pid)
      .at(-1).statmRss
    for (const sentry of SENTRIES) {
      const exits = events('child', sentry, (e) => e.type === 'exit' && e.index < cleanup.index)
      assert.deepEqual(
        exits.map((e) => e.pid),
        [victim.pid],
        `${sentry}: exactly one exit before cleanup, for the killed child\n${report()}`,
      )
      const [exit] = exits
      assert.ok(exit.index > kill.index, `${sentry}: exit reported before the kill`)
      assert.ok(exit.t - kill.t <= 5000, `${sentry}: exit ${exit.t - kill.t} ms after the kill`)
      assert.equal(exit.ppid, victim.ppid, `${sentry}: exit ppid`)
      assert.equal(exit.comm, 'tree-c20')
      assert.ok(within(exit.rss, lastStatm, 0.1), `${sentry}: exit rss ${exit.rss} / ${lastStatm}`)
      assert.ok(exit.seenMs > 0, `${sentry}: seenMs ${exit.seenMs}`)
      // It was seen from before the first sample to the kill: at most the parent's whole life.
      assert.ok(exit.seenMs <= exit.t, `${sentry}: seenMs ${exit.seenMs} at t=${exit.t}`)
    }
  })

  it("a child.rss threshold at 50 MiB fires 'up' for exactly the 60 MiB child", () => {
    const c60 = byName('tree-c60')
    for (const sentry of SENTRIES) {
      const fired = events('threshold', sentry)
      assert.deepEqual(
        fired.map(({ name, metric, pid, comm, threshold, direction }) => ({
          name,
          metric,
          pid,
          comm,
          threshold,
          direction,
        })),
        [
          {
            name: 'child-50MiB',
            metric: 'child.rss',
            pid: c60.pid,
            comm: 'tree-c60',
            threshold: 50 * MiB,
            direction: 'up',
          },
        ],
        `${sentry}\n${report()}`,
      )
      assert.ok(fired[0].value > 50 * MiB, `${sentry}: value ${fired[0].value}`)
    }
  })
})
