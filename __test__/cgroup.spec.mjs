// The cgroup figures: on this machine against the files of the process's own memory cgroup, and
// on fixture trees (tests/fixtures/cgroup/, __test__/fixtures/cgroup-node/) for what this machine
// lacks: a limit, memory.high, v2, an OOM kill, a file that vanishes.
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { MemorySentry, snapshot } from '../index.mjs'
import { waitFor, sleep } from './helpers/wait.mjs'
import { MiB } from './helpers/proc.mjs'
import { spawnInCgroup } from './helpers/cgroup.mjs'

const RUST_FIXTURES = fileURLToPath(new URL('../tests/fixtures/cgroup/', import.meta.url))
const NODE_FIXTURES = fileURLToPath(new URL('./fixtures/cgroup-node/', import.meta.url))
const UNLIMITED = 2 ** 62

// Every sentry made here, closed at the end whatever happens.
const sentries = []
function sentry(options) {
  const s = new MemorySentry({ children: 'none', leak: false, ...options })
  sentries.push(s)
  return s
}
after(async () => {
  await Promise.all(sentries.map((s) => s.close()))
})

/** Options that point a sentry at a fixture tree. */
function rootsOf(tree) {
  return { procRoot: path.join(tree, 'proc'), cgroupRoot: tree }
}

/** A fixture sentry: fast, with an 'error' listener (the fixture has no proc/self/statm). */
function fixtureSentry(tree, options = {}) {
  const s = sentry({ intervalMs: 50, ...rootsOf(tree), ...options })
  const errors = []
  s.on('error', (err) => errors.push(err))
  return { s, errors }
}

async function firstCgroup(s, what) {
  return waitFor(() => s.latest?.cgroup, {
    timeoutMs: 10_000,
    message: () => `${what}: no cgroup figures; latest = ${JSON.stringify(s.latest)}`,
  })
}

/** A copy of a fixture tree in a temp dir, removed after test `t`. */
function tempCopy(t, dir) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-cgroup-'))
  fs.cpSync(dir, tmp, { recursive: true, verbatimSymlinks: true })
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }))
  return tmp
}

/** Rewrites a file in place (same inode): the sentry keeps it open and re-reads it with pread. */
function rewriteInPlace(file, text) {
  const fd = fs.openSync(file, 'r+')
  try {
    const bytes = Buffer.from(text)
    fs.writeSync(fd, bytes, 0, bytes.length, 0)
    fs.ftruncateSync(fd, bytes.length)
  } finally {
    fs.closeSync(fd)
  }
}

/** 'max' or a number of bytes as the kernel writes them; v1's "unlimited" (≥ 2^62) is null. */
function limitFile(file) {
  const text = fs.readFileSync(file, 'utf8').trim()
  if (text === 'max') return null
  const n = Number(text)
  assert.match(text, /^\d+$/, file)
  return n >= UNLIMITED ? null : n
}

// --- this machine's own memory cgroup -----------------------------------------------------------

/** The process's memory cgroup directory from /proc/self/{cgroup,mountinfo}, or null. */
function ownMemoryCgroup() {
  const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')
  const v1 = lines.map((l) => l.split(':')).find(([, ctl]) => ctl.split(',').includes('memory'))
  const v2 = lines.map((l) => l.split(':')).find(([id, ctl]) => id === '0' && ctl === '')
  const [version, cgPath] = v1 ? [1, v1.slice(2).join(':')] : v2 ? [2, v2.slice(2).join(':')] : []
  if (!version) return null
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n')) {
    const [left, right] = line.split(' - ')
    const [, , , root, mountPoint] = left.split(' ')
    const [fsType, , superOptions] = right.split(' ')
    const fits =
      version === 1
        ? fsType === 'cgroup' && superOptions.split(',').includes('memory')
        : fsType === 'cgroup2'
    if (!fits) continue
    const rel = cgPath.startsWith(root) ? cgPath.slice(root.length) : ''
    for (const dir of [path.join(mountPoint, rel), mountPoint]) {
      const usage = version === 1 ? 'memory.usage_in_bytes' : 'memory.current'
      if (fs.existsSync(path.join(dir, usage))) return { version, dir, mount: mountPoint }
    }
  }
  return null
}

/** The smaller of two limits, null being unlimited. */
const smaller = (a, b) => (a === null ? b : b === null ? a : Math.min(a, b))

/**
 * The smallest `file` limit of `dir` and its ancestors up to `mount` (v2: the kernel enforces
 * each), or `dir`'s own without a mount.
 */
function limitOnTheWayUp(dir, mount, file) {
  let limit = limitFile(path.join(dir, file))
  for (let up = dir; mount && up !== mount && up.startsWith(`${mount}/`);) {
    up = path.dirname(up)
    if (fs.existsSync(path.join(up, file))) limit = smaller(limit, limitFile(path.join(up, file)))
  }
  return limit
}

/** A direct read of the cgroup's files, as memsentry's figures would be computed from them. */
function readOwn({ version, dir, mount }) {
  const read = (name) => fs.readFileSync(path.join(dir, name), 'utf8')
  const stat = new Map(
    read('memory.stat')
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([k, v]) => [k, Number(v)]),
  )
  if (version === 1) {
    const usage = Number(read('memory.usage_in_bytes'))
    const inactiveFile = stat.get('total_inactive_file') ?? stat.get('inactive_file')
    const oom = new Map(
      read('memory.oom_control')
        .trim()
        .split('\n')
        .map((l) => l.split(' ')),
    )
    return {
      usage,
      inactiveFile,
      workingSet: Math.max(0, usage - inactiveFile),
      // The kernel's hierarchical_memory_limit counts the ancestors' limits.
      limit: smaller(
        limitFile(path.join(dir, 'memory.limit_in_bytes')),
        (stat.get('hierarchical_memory_limit') ?? Infinity) < UNLIMITED
          ? stat.get('hierarchical_memory_limit')
          : null,
      ),
      high: null,
      underOom: oom.get('under_oom') === '1',
      oomEvents: oom.has('oom_kill')
        ? Number(oom.get('oom_kill'))
        : Number(read('memory.failcnt').trim()),
    }
  }
  const usage = Number(read('memory.current'))
  const inactiveFile = stat.get('inactive_file')
  const events = new Map(
    read('memory.events')
      .trim()
      .split('\n')
      .map((l) => l.split(' ')),
  )
  return {
    usage,
    inactiveFile,
    workingSet: Math.max(0, usage - inactiveFile),
    limit: limitOnTheWayUp(dir, mount, 'memory.max'),
    high: fs.existsSync(path.join(dir, 'memory.high'))
      ? limitOnTheWayUp(dir, mount, 'memory.high')
      : null,
    underOom: null,
    oomEvents: Number(events.get('oom_kill')),
  }
}

function within(actual, expected, fraction) {
  return actual != null && Math.abs(actual - expected) <= fraction * Math.abs(expected)
}

/**
 * Waits for a fresh tick, reads the files right after it, and returns the first
 * [sample.cgroup, direct read] pair for which `agree` holds; fails after `attempts` with all
 * the pairs tried (the cgroup's usage moves between the tick and the read).
 */
async function agreeAfterTick(s, cg, agree, attempts = 30) {
  const tried = []
  for (let i = 0; i < attempts; i++) {
    const before = s.latest?.time
    await waitFor(() => s.latest !== null && s.latest.time !== before, { timeoutMs: 10_000 })
    const direct = readOwn(cg)
    const mine = s.latest.cgroup
    if (agree(mine, direct)) return [mine, direct]
    tried.push({ mine, direct })
  }
  assert.fail(`no agreement in ${attempts} ticks:\n${JSON.stringify(tried.slice(-5), null, 1)}`)
}

describe("this machine's own memory cgroup", () => {
  const cg = ownMemoryCgroup()
  const skip = cg === null && 'no memory cgroup for this process'

  it('latest.cgroup agrees with the cgroup files', { skip }, async () => {
    const s = sentry({ intervalMs: 50 })
    const first = await firstCgroup(s, 'own cgroup')
    const direct = readOwn(cg)
    assert.equal(first.version, cg.version)
    assert.equal(first.limit, direct.limit, `limit file in ${cg.dir}`)
    assert.equal(first.high, direct.high)
    assert.equal(first.underOom, direct.underOom)
    assert.equal(first.oomEvents, direct.oomEvents)
    for (const key of ['usage', 'workingSet', 'inactiveFile', 'anon', 'file']) {
      assert.equal(typeof first[key], 'number', `${key}: ${first[key]}`)
    }

    // usage within 5% of a read taken right after the tick
    await agreeAfterTick(s, cg, (mine, d) => within(mine.usage, d.usage, 0.05))
    // workingSet = usage − inactive_file, floored at 0: in the sample itself, exactly...
    for (let i = 0; i < 5; i++) {
      const c = s.latest.cgroup
      assert.equal(c.workingSet, Math.max(0, c.usage - c.inactiveFile), JSON.stringify(c))
      await sleep(60)
    }
    // ...and within 5% of the same computed from the files
    await agreeAfterTick(s, cg, (mine, d) => within(mine.workingSet, d.workingSet, 0.05))

    // The figures follow the cgroup: touch 64 MiB (charged to this cgroup) and see usage rise.
    // The cgroup is shared (CI's other processes, their page cache), and a neighbour freeing
    // memory at the same moment can hide the rise: up to three tries, each with fresh ballast.
    const ballast = []
    const tries = []
    for (let i = 0; i < 3; i++) {
      const base = s.latest.cgroup.usage
      ballast.push(Buffer.alloc(64 * MiB, 1))
      const rose = await waitFor(() => s.latest.cgroup.usage >= base + 48 * MiB, {
        timeoutMs: 5_000,
      }).catch(() => false)
      tries.push({ base, after: s.latest.cgroup.usage, rose })
      if (rose) break
    }
    assert.ok(
      tries.at(-1).rose,
      `usage did not rise by 48 MiB after 64 MiB touched, in 3 tries: ${JSON.stringify(tries)}`,
    )
    await agreeAfterTick(s, cg, (mine, d) => within(mine.usage, d.usage, 0.05))
    for (const b of ballast) assert.equal(b[b.length - 1], 1)

    // A fresh snapshot, bracketed by two direct reads
    const before = readOwn(cg).usage
    const snap = s.snapshot().cgroup
    const afterRead = readOwn(cg).usage
    const [lo, hi] = [Math.min(before, afterRead), Math.max(before, afterRead)]
    assert.ok(
      snap.usage >= lo * 0.95 && snap.usage <= hi * 1.05,
      `snapshot usage ${snap.usage} outside [${lo}, ${hi}] ± 5%`,
    )
  })

  it(
    'limit is null where the cgroup is unlimited (v1: limit_in_bytes ≥ 2^62)',
    { skip },
    async () => {
      const s = sentry({ intervalMs: 50 })
      const c = await firstCgroup(s, 'own cgroup')
      const direct = readOwn(cg)
      assert.equal(c.limit, direct.limit)
      assert.equal(s.limit, direct.limit, 'sentry.limit')
      if (cg.version === 1) {
        const raw = Number(fs.readFileSync(path.join(cg.dir, 'memory.limit_in_bytes'), 'utf8'))
        assert.equal(c.limit === null, raw >= UNLIMITED, `limit_in_bytes ${raw}, limit ${c.limit}`)
      }
    },
  )

  it('sentry.limit equals process.constrainedMemory() where Node reports a real limit', async (t) => {
    const s = sentry({ intervalMs: 50 })
    const constrained = process.constrainedMemory?.() ?? 0
    const direct = cg && readOwn(cg)
    if (constrained > 0 && constrained < UNLIMITED) {
      // Node may report memory.high when it is below memory.max; memsentry keeps memory.max.
      if (direct && direct.high !== null && direct.limit !== null && direct.high < direct.limit) {
        assert.equal(s.limit, direct.limit)
      } else {
        assert.equal(s.limit, constrained)
      }
    } else {
      // libuv may not look above the process's own cgroup; memsentry takes a parent's too.
      t.diagnostic(`constrainedMemory() = ${constrained}: no limit of the cgroup's own`)
      assert.equal(s.limit, direct ? direct.limit : null, 'the files on the way up')
    }
  })

  it(
    'a percent threshold with no known limit is a RangeError naming the limit',
    {
      skip: (cg === null || readOwn(cg).limit !== null) && 'this cgroup has a limit',
    },
    () => {
      assert.throws(
        () => sentry({ thresholds: [{ metric: 'rss', above: '90%' }] }),
        (err) => err instanceof RangeError && /limit/.test(err.message) && /90/.test(err.message),
      )
      const s = sentry({ limit: '512MiB', thresholds: [{ metric: 'rss', above: '90%' }] })
      assert.equal(s.limit, 512 * MiB)
    },
  )
})

// --- fixture trees ------------------------------------------------------------------------------

// Each tree with where its cgroup directory is, so the expected figures come from its files.
const TREES = [
  { tree: RUST_FIXTURES + 'v1-limit', dir: 'sys/fs/cgroup/memory/process_api/a1b2', v: 1 },
  { tree: RUST_FIXTURES + 'v1-docker', dir: 'sys/fs/cgroup/memory', v: 1 },
  { tree: RUST_FIXTURES + 'v1-escaped-mount', dir: 'sys/fs/cgroup/mem ory/app', v: 1 },
  { tree: RUST_FIXTURES + 'v1-unlimited', dir: 'sys/fs/cgroup/memory/process_api/a1b2', v: 1 },
  { tree: NODE_FIXTURES + 'v1-limit-2p62', dir: 'sys/fs/cgroup/memory/process_api/c3d4', v: 1 },
  {
    tree: NODE_FIXTURES + 'v1-limit-below-2p62',
    dir: 'sys/fs/cgroup/memory/process_api/c3d4',
    v: 1,
  },
  { tree: RUST_FIXTURES + 'v2-nested', dir: 'sys/fs/cgroup/kubepods/burstable/pod123/ctr', v: 2 },
  { tree: RUST_FIXTURES + 'v2-container-ns', dir: 'sys/fs/cgroup', v: 2 },
  { tree: RUST_FIXTURES + 'v2-container-root', dir: 'sys/fs/cgroup', v: 2 },
  { tree: RUST_FIXTURES + 'v2-container-missing', dir: 'sys/fs/cgroup', v: 2 },
  {
    tree: RUST_FIXTURES + 'v2-unlimited-syspsi',
    dir: 'sys/fs/cgroup/user.slice/user-1000.slice/session-4.scope',
    v: 2,
  },
  { tree: NODE_FIXTURES + 'v2-high-no-max', dir: 'sys/fs/cgroup/system.slice/app.service', v: 2 },
]

function expectedLimits({ tree, dir, v }) {
  const d = path.join(tree, dir)
  if (v === 1) return { limit: limitFile(path.join(d, 'memory.limit_in_bytes')), high: null }
  return {
    limit: limitFile(path.join(d, 'memory.max')),
    high: limitFile(path.join(d, 'memory.high')),
  }
}

describe('a cgroup path outside the namespace', () => {
  it("a '..' in the cgroup path: the mount point's cgroup is read, and that is said once", async (t) => {
    const tree = tempCopy(t, RUST_FIXTURES + 'v2-container-ns')
    fs.writeFileSync(path.join(tree, 'proc/self/cgroup'), '0::/../../system.slice/app.service\n')
    const { s, errors } = fixtureSentry(tree, { limit: 'auto' })
    await firstCgroup(s, 'dotdot')
    await sleep(300)
    const said = errors.filter((e) => /leaves the cgroup mount/.test(e.message))
    assert.equal(said.length, 1, errors.map((e) => e.message).join('\n'))
    assert.match(said[0].message, /\/\.\.\/\.\.\/system\.slice\/app\.service/)
    assert.match(said[0].message, /set the limit option/)
    assert.equal(said[0].path, path.join(tree, 'proc/self/cgroup'))
  })
})

describe('fixture trees', () => {
  it('sentry.limit and cgroup.limit are memory.max / memory.limit_in_bytes of each tree', async () => {
    const limited = TREES.filter((t) => expectedLimits(t).limit !== null).length
    assert.ok(limited >= 6, `${limited} trees with a limit`)
    for (const t of TREES) {
      const name = path.basename(t.tree)
      const { limit, high } = expectedLimits(t)
      const { s } = fixtureSentry(t.tree)
      assert.equal(s.limit, limit, `${name}: sentry.limit`)
      const c = await firstCgroup(s, name)
      assert.equal(c.version, t.v, `${name}: version`)
      assert.equal(c.limit, limit, `${name}: cgroup.limit`)
      assert.equal(c.high, high, `${name}: cgroup.high`)
      const shot = snapshot(rootsOf(t.tree)).cgroup
      assert.equal(shot.limit, limit, `${name}: snapshot().cgroup.limit`)
      await s.close()
    }
  })

  it('v2 with memory.high below memory.max: the limit is memory.max, high is memory.high', async () => {
    const tree = RUST_FIXTURES + 'v2-nested'
    const dir = path.join(tree, 'sys/fs/cgroup/kubepods/burstable/pod123/ctr')
    const max = Number(fs.readFileSync(path.join(dir, 'memory.max'), 'utf8'))
    const high = Number(fs.readFileSync(path.join(dir, 'memory.high'), 'utf8'))
    assert.ok(high < max, 'the fixture has memory.high below memory.max')
    const { s } = fixtureSentry(tree)
    assert.equal(s.limit, max)
    const c = await firstCgroup(s, 'v2-nested')
    assert.equal(c.limit, max)
    assert.equal(c.high, high)
    // The parent cgroups hold decoy values: none of them may leak in.
    assert.equal(c.usage, Number(fs.readFileSync(path.join(dir, 'memory.current'), 'utf8')))
  })

  it("v2 memory.max 'max': limit null even with memory.high set", async () => {
    const tree = NODE_FIXTURES + 'v2-high-no-max'
    const { s } = fixtureSentry(tree)
    assert.equal(s.limit, null)
    const c = await firstCgroup(s, 'v2-high-no-max')
    assert.equal(c.limit, null)
    assert.equal(c.high, 512 * MiB)
  })

  it('a percent threshold with no limit is a RangeError mentioning the limit', () => {
    for (const name of ['v2-unlimited-syspsi', 'v1-unlimited']) {
      const roots = rootsOf(RUST_FIXTURES + name)
      assert.throws(
        () => sentry({ ...roots, thresholds: [{ metric: 'cgroupUsage', above: '80%' }] }),
        (err) =>
          err instanceof RangeError &&
          /thresholds\[0\]/.test(err.message) &&
          /limit/.test(err.message),
        name,
      )
    }
    const roots = rootsOf(NODE_FIXTURES + 'v2-high-no-max')
    assert.throws(
      () => sentry({ ...roots, thresholds: [{ metric: 'rss', above: '50%' }] }),
      (err) => err instanceof RangeError && /limit/.test(err.message),
      'memory.high is not a limit',
    )
  })

  it("a percent threshold with cgroup: false says the cgroup's limit was not read", () => {
    // v2-nested has a limit (memory.max 256 MiB), but cgroup: false reads no cgroup file.
    const roots = rootsOf(RUST_FIXTURES + 'v2-nested')
    assert.throws(() => sentry({ ...roots, cgroup: false, thresholds: [{ above: '90%' }] }), {
      name: 'RangeError',
      message:
        /thresholds\[0\]\.above is 90% .*\(cgroup: false, so the cgroup's limit is not read\)/,
    })
  })

  it('a percent threshold is resolved against the cgroup limit', async () => {
    // v2-nested: usage 100 MiB, memory.max 256 MiB; 30% = 76.8 MiB is below the usage.
    const { s } = fixtureSentry(RUST_FIXTURES + 'v2-nested', {
      thresholds: [{ name: 'p30', metric: 'cgroupUsage', above: '30%' }],
    })
    const fired = []
    s.on('threshold', (e) => fired.push(e))
    await waitFor(() => fired.length > 0, { timeoutMs: 10_000, message: 'no threshold event' })
    assert.equal(fired[0].name, 'p30')
    assert.equal(fired[0].direction, 'up')
    assert.equal(fired[0].threshold, Math.round((256 * MiB * 30) / 100))
    assert.equal(fired[0].value, 100 * MiB)
  })

  it("limit: '512MiB' overrides the cgroup's limit", async () => {
    const { s } = fixtureSentry(RUST_FIXTURES + 'v2-nested', {
      limit: '512MiB',
      thresholds: [{ name: 'p18', metric: 'cgroupUsage', above: '18%' }],
    })
    assert.equal(s.limit, 512 * MiB)
    const fired = []
    s.on('threshold', (e) => fired.push(e))
    await waitFor(() => fired.length > 0, { timeoutMs: 10_000, message: 'no threshold event' })
    // 18% of 512 MiB (of 256 MiB it would be half that)
    assert.equal(fired[0].threshold, Math.round((512 * MiB * 18) / 100))
    // the sample still reports the cgroup's own memory.max
    assert.equal(s.latest.cgroup.limit, 256 * MiB)

    // and it works where the cgroup has no limit at all
    const free = fixtureSentry(RUST_FIXTURES + 'v2-unlimited-syspsi', {
      limit: '512MiB',
      thresholds: [{ metric: 'cgroupUsage', above: '90%' }],
    })
    assert.equal(free.s.limit, 512 * MiB)
  })

  for (const [name, file, before, after] of [
    [
      'v2-nested',
      'sys/fs/cgroup/kubepods/burstable/pod123/ctr/memory.events',
      1,
      'low 0\nhigh 12\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n',
    ],
    [
      'v1-limit',
      'sys/fs/cgroup/memory/process_api/a1b2/memory.oom_control',
      2,
      'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n',
    ],
  ]) {
    it(`an OOM kill in the cgroup gives an 'oom' event (${name})`, async (t) => {
      const tree = tempCopy(t, RUST_FIXTURES + name)
      const { s } = fixtureSentry(tree)
      const ooms = []
      s.on('oom', (e) => ooms.push(e))
      const c = await firstCgroup(s, name)
      assert.equal(c.oomEvents, before)
      // several ticks on the old count: nothing fires
      const ticks = s.stats().ticks
      await waitFor(() => s.stats().ticks >= ticks + 5, { timeoutMs: 10_000 })
      assert.deepEqual(ooms, [], 'no oom event before the counter rose')

      rewriteInPlace(path.join(tree, file), after)
      await waitFor(() => ooms.length > 0, { timeoutMs: 5_000, message: 'no oom event' })
      assert.equal(ooms[0].oomEvents, before + 1)
      assert.equal(ooms[0].sample.cgroup.oomEvents, before + 1)
      // once per rise, not once per tick
      const at = s.stats().ticks
      await waitFor(() => s.stats().ticks >= at + 5, { timeoutMs: 10_000 })
      assert.equal(ooms.length, 1, JSON.stringify(ooms.map((e) => e.oomEvents)))
    })
  }

  it("a cgroup file that vanishes: its fields null, one 'error', sampling goes on", async (t) => {
    // A regular file stays readable through the sentry's open descriptor after unlink (cgroupfs
    // fails such reads with ENODEV). To vanish the way a cgroup file does, memory.current is a
    // symlink to a procfs file of a process of ours: when that process is reaped, the open
    // descriptor fails (ESRCH) and the path no longer resolves (ENOENT).
    const tree = tempCopy(t, RUST_FIXTURES + 'v2-nested')
    const dir = path.join(tree, 'sys/fs/cgroup/kubepods/burstable/pod123/ctr')
    const current = path.join(dir, 'memory.current')
    const holder = spawn('sleep', ['120'], { stdio: 'ignore' })
    t.after(() => holder.kill('SIGKILL'))
    await waitFor(() => holder.pid !== undefined)
    fs.writeFileSync(`/proc/${holder.pid}/oom_score_adj`, '777')
    fs.rmSync(current)
    fs.symlinkSync(`/proc/${holder.pid}/oom_score_adj`, current)

    const { s, errors } = fixtureSentry(tree)
    const currentErrors = () => errors.filter((e) => e.path === current)
    const c = await firstCgroup(s, 'v2-nested copy')
    assert.equal(c.usage, 777)
    assert.deepEqual(currentErrors(), [])

    const gone = new Promise((resolve) => holder.once('exit', resolve))
    holder.kill('SIGKILL')
    await gone
    await waitFor(() => s.latest.cgroup.usage === null, {
      timeoutMs: 5_000,
      message: () => `usage still ${s.latest.cgroup.usage}`,
    })
    const c2 = s.latest.cgroup
    assert.equal(c2.workingSet, null, 'workingSet needs usage')
    // the other files still read
    assert.equal(c2.limit, 256 * MiB)
    assert.equal(c2.oomEvents, 1)
    assert.equal(typeof c2.anon, 'number')

    // Sampling goes on; the failure is reported once, however many ticks it lasts.
    const { ticks } = s.stats()
    const time = s.latest.time
    await waitFor(() => s.stats().ticks >= ticks + 10, { timeoutMs: 10_000 })
    assert.ok(s.running)
    assert.ok(s.latest.time > time)
    assert.equal(s.latest.cgroup.usage, null)
    const whileGone = currentErrors()
    assert.ok(whileGone.length > 0, 'no error event')
    for (const err of whileGone) {
      assert.ok(err instanceof Error)
      assert.equal(typeof err.code, 'string')
      assert.match(err.message, /memory\.current/)
    }

    // The file comes back: so do the figures.
    fs.rmSync(current)
    fs.writeFileSync(current, `${100 * MiB}\n`)
    await waitFor(() => s.latest.cgroup.usage === 100 * MiB, {
      timeoutMs: 5_000,
      message: () => `usage ${s.latest.cgroup.usage} after the file came back`,
    })
    assert.equal(typeof s.latest.cgroup.workingSet, 'number')

    // One vanishing, one event: on cgroupfs the kept descriptor fails first (ENODEV, here
    // ESRCH), then the path (ENOENT); that is still the same failure.
    assert.equal(
      whileGone.length,
      1,
      `error events while the file was gone:\n${whileGone.map((e) => `${e.code} ${e.message}`).join('\n')}`,
    )
  })
})

// --- a real memory cgroup with a hard limit -----------------------------------------------------

describe('a memory cgroup with a hard limit, made here', () => {
  const APP = fileURLToPath(new URL('./fixtures/cgroup-limit/app.mjs', import.meta.url))
  const HEAP_APP = fileURLToPath(new URL('./fixtures/cgroup-limit/heap-app.mjs', import.meta.url))
  const LIMIT = 320 * MiB

  /** A child cgroup of this process's own with a `limit` and no swap, or why there cannot be one. */
  function makeLimitedCgroup(limit = LIMIT) {
    if (process.getuid?.() !== 0) return { why: 'making a cgroup needs root' }
    const own = ownMemoryCgroup()
    if (!own) return { why: 'no memory cgroup found' }
    const dir = path.join(own.dir, `memsentry-test-${process.pid}-${limit}`)
    try {
      fs.mkdirSync(dir)
    } catch (err) {
      return { why: `cannot make a memory cgroup under ${own.dir}: ${err.code}` }
    }
    try {
      if (own.version === 1) {
        fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limit))
      } else {
        fs.writeFileSync(path.join(dir, 'memory.max'), String(limit))
      }
    } catch (err) {
      fs.rmdirSync(dir)
      return { why: `cannot set a memory limit in ${dir}: ${err.code}` }
    }
    // Without swap the limit is hard; where the knob is missing, there is no swap to turn off.
    const noSwap = own.version === 1 ? ['memory.swappiness', '0'] : ['memory.swap.max', '0']
    try {
      fs.writeFileSync(path.join(dir, noSwap[0]), noSwap[1])
    } catch {}
    return { dir }
  }

  /**
   * Starts `app` in the cgroup `dir`: it joins before Node starts, so everything it and its
   * children map is charged there. Kills it and removes the cgroup after test `t`.
   */
  function startIn(t, dir, app, args = []) {
    // The project's wrapper: joins before Node starts, no core file if V8 aborts.
    const child = spawnInCgroup({ dir }, process.execPath, [app, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const lines = []
    let buffered = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      buffered += chunk
      const parts = buffered.split('\n')
      buffered = parts.pop()
      for (const l of parts) lines.push(JSON.parse(l))
    })
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-4000)
    })
    const exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
    )
    t.after(async () => {
      child.kill('SIGKILL')
      await exited
      // The cgroup can go once its last process has.
      await waitFor(
        () => {
          try {
            fs.rmdirSync(dir)
            return true
          } catch {
            return false
          }
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      ).catch(() => {})
    })
    const find = (type, pred = () => true) => lines.find((l) => l.type === type && pred(l))
    const shown = () => lines.map((l) => JSON.stringify(l)).join('\n') + `\nstderr: ${stderr}`
    return { child, exited, find, shown }
  }

  it(
    "a worker leaking into the limit: 'leak' names it with the time to the limit, then 'oom' when the kernel kills it",
    { timeout: 180_000 },
    async (t) => {
      const { dir, why } = makeLimitedCgroup()
      if (!dir) return t.skip(why)
      const { child: app, exited, find, shown } = startIn(t, dir, APP)
      // The worker grows 6 MiB/s from about 100 MiB in all: the kill comes after ~40 s.
      await waitFor(() => find('oom'), { timeoutMs: 150_000, intervalMs: 200, message: shown })
      await waitFor(() => find('child', (l) => l.event === 'exit'), {
        timeoutMs: 10_000,
        message: shown,
      })
      app.stdin.end()
      const { code, signal } = await exited
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'the app outlives its worker')

      const start = find('start')
      const leak = find('leak')
      const half = find('threshold', (l) => l.name === 'half' && l.direction === 'up')
      const killed = find('worker-exit')
      const oom = find('oom')
      assert.equal(start.limit, LIMIT, 'sentry.limit is the cgroup limit')
      assert.ok(leak, `no 'leak' event:\n${shown()}`)
      assert.equal(leak.suspect, 'child')
      assert.equal(leak.child, start.worker, 'the leak names the worker')
      assert.equal(leak.cgroupLimit, LIMIT)
      assert.ok(half, `no 'half' threshold event:\n${shown()}`)
      assert.equal(killed.signal, 'SIGKILL', 'the OOM killer took the worker')
      assert.ok(oom.oomEvents >= 1)
      assert.ok(leak.at < killed.at && half.at < killed.at && killed.at <= oom.at + 1000, shown())
      assert.ok(find('child', (l) => l.event === 'exit' && l.pid === start.worker))

      // msToLimit counts from the cgroup's working set, what the kernel charges, not from
      // treeRss, which counts the pages parent and worker share twice and said 27 s for 39.
      assert.ok(leak.workingSet > 0 && leak.workingSet < leak.treeRss, shown())
      const expected = ((LIMIT - leak.workingSet) / leak.slope) * 1000
      assert.ok(
        Math.abs(leak.msToLimit - expected) <= 1e-6 * expected,
        `${leak.msToLimit} vs ${expected}`,
      )
      // And it comes true, give or take the slope's error on a loaded machine.
      const took = killed.at - leak.at
      assert.ok(
        took >= 0.5 * leak.msToLimit && took <= 2 * leak.msToLimit,
        `msToLimit ${Math.round(leak.msToLimit)} ms, the kill came ${took} ms after the leak event`,
      )
    },
  )

  it('a limit set on a parent cgroup is the limit of a process in a child cgroup without one', async (t) => {
    const limit = 256 * MiB
    const { dir, why } = makeLimitedCgroup(limit)
    if (!dir) return t.skip(why)
    // The app's own cgroup has no limit: a systemd slice, a Kubernetes pod or a container's init
    // set it one level up.
    const inner = path.join(dir, 'app')
    fs.mkdirSync(inner)
    t.after(() => {
      for (const d of [inner, dir]) {
        try {
          fs.rmdirSync(d)
        } catch {}
      }
    })
    const script =
      `import { MemorySentry } from ${JSON.stringify(fileURLToPath(new URL('../index.mjs', import.meta.url)))}\n` +
      `const s = new MemorySentry({ intervalMs: 50, children: 'none' })\n` +
      `const t = setInterval(() => { if (!s.latest) return; clearInterval(t); console.log(JSON.stringify({ limit: s.limit, cgroup: s.latest.cgroup })); s.close() }, 20)\n`
    const child = spawnInCgroup(
      { dir: inner },
      process.execPath,
      ['--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let out = ''
    let err = ''
    child.stdout.on('data', (c) => (out += c))
    child.stderr.on('data', (c) => (err += c))
    const code = await new Promise((resolve) => child.on('exit', resolve))
    assert.equal(code, 0, err)
    const seen = JSON.parse(out)
    assert.equal(seen.cgroup.limit, limit, out)
    assert.equal(seen.limit, limit, 'sentry.limit, and so limit: auto and percent thresholds')
  })

  it(
    "a JS heap leak under the limit: msToLimit is the time to V8's heap limit, which ends the process first",
    { timeout: 180_000 },
    async (t) => {
      // 1 GiB: Node sizes V8's heap limit from it (560 MiB on Node 24), so the heap leak ends
      // the process with a working set far below the cgroup's limit.
      const limit = 1024 * MiB
      const { dir, why } = makeLimitedCgroup(limit)
      if (!dir) return t.skip(why)
      const { exited, find, shown } = startIn(t, dir, HEAP_APP)
      // ~20 MB/s of strings: V8 gives up after ~50 s.
      let timer
      const end = await Promise.race([
        exited,
        new Promise((resolve) => (timer = setTimeout(resolve, 150_000, null))),
      ])
      clearTimeout(timer)
      assert.ok(end, `still running after 150 s:\n${shown()}`)
      const start = find('start')
      const leak = find('leak')
      assert.equal(start.limit, limit, 'sentry.limit is the cgroup limit')
      assert.ok(
        start.heapLimit < 0.8 * limit,
        `V8's heap limit ${start.heapLimit} in a ${limit} cgroup`,
      )
      // V8 ends it (abort after "JavaScript heap out of memory"), not the kernel's OOM killer.
      assert.equal(end.signal, 'SIGABRT', shown())
      assert.equal(readOwn({ version: ownMemoryCgroup().version, dir }).oomEvents, 0, 'no OOM kill')
      assert.ok(leak, `no 'leak' event:\n${shown()}`)
      assert.equal(leak.suspect, 'heap')
      // The time to the cgroup's limit (what msToLimit said before) is far longer than the
      // process has; msToLimit counts to V8's heap limit instead, from the live heap.
      const toCgroup = ((limit - leak.workingSet) / leak.slope) * 1000
      const toHeap = ((start.heapLimit - leak.heapUsed) / leak.slope) * 1000
      assert.ok(
        leak.msToLimit < 0.8 * toCgroup,
        `msToLimit ${leak.msToLimit}, to the cgroup's ${toCgroup}`,
      )
      assert.ok(
        leak.msToLimit > 0.3 * toHeap && leak.msToLimit < 3 * toHeap,
        `msToLimit ${leak.msToLimit}, to the heap limit at the event's slope ${toHeap}`,
      )
      // Read 3 s later, the episode still counts to V8's limit, whatever the detector reads now.
      const episode = find('episode')
      assert.ok(episode, `no episode read after the event:\n${shown()}`)
      const toCgroupThen = toCgroup - 3000
      assert.ok(
        episode.msToLimit > 0 && episode.msToLimit < 0.8 * toCgroupThen,
        `leakEpisode.msToLimit ${episode.msToLimit} 3 s after the event, to the cgroup's ${toCgroupThen}`,
      )
      // And it comes true, give or take the slope's error on a loaded machine (V8 gives up a
      // little before its limit, once full GCs free next to nothing).
      const took = end.at - leak.at
      t.diagnostic(
        `heap limit ${Math.round(start.heapLimit / MiB)} MiB; leak at ${leak.at - start.at} ms: ` +
          `msToLimit ${Math.round(leak.msToLimit)} ms (to the cgroup's limit ${Math.round(toCgroup)}); ` +
          `V8 ended the process ${took} ms later`,
      )
      assert.ok(
        took >= 0.4 * leak.msToLimit && took <= 2 * leak.msToLimit,
        `msToLimit ${Math.round(leak.msToLimit)} ms, V8 ended the process ${took} ms after the leak event\n${shown()}`,
      )
    },
  )

  it(
    "with the defaults, a heap leak that fills V8's heap in minutes is reported minutes before, not after the 10-minute window",
    { timeout: 420_000 },
    async (t) => {
      // 512 MiB: V8's heap limit is ~259 MiB (Node 22, 24), which ~36 MiB/min of strings fills
      // in about 7 minutes. `new MemorySentry()`'s 10-minute window reports a leak 8-13 minutes
      // after it starts: too late. Its one-minute look-out reports it after ~3.5 minutes.
      const limit = 512 * MiB
      const { dir, why } = makeLimitedCgroup(limit)
      if (!dir) return t.skip(why)
      const { exited, find, shown } = startIn(t, dir, HEAP_APP, ['--defaults'])
      const ended = exited.then((end) => {
        throw new Error(
          `the process ended (${end.signal ?? end.code}) before a 'leak' event:\n${shown()}`,
        )
      })
      await Promise.race([
        waitFor(() => find('leak'), { timeoutMs: 400_000, intervalMs: 500, message: shown }),
        ended,
      ])
      ended.catch(() => {})
      const start = find('start')
      const leak = find('leak')
      assert.equal(start.limit, limit, 'sentry.limit is the cgroup limit')
      assert.equal(leak.suspect, 'heap', shown())
      // The look-out's minute, not the window's ten, and before that window could decide.
      assert.ok(leak.windowMs <= 60_000, `windowMs ${leak.windowMs}`)
      assert.ok(leak.at - start.at < 400_000, `leak at ${leak.at - start.at} ms`)
      // Time to act: at the event's slope V8's limit is still more than a minute away, and that
      // is what msToLimit says (not the cgroup's, five times further).
      const toHeap = ((start.heapLimit - leak.heapUsed) / leak.slope) * 1000
      t.diagnostic(
        `heap limit ${Math.round(start.heapLimit / MiB)} MiB; leak at ${leak.at - start.at} ms, ` +
          `heapUsed ${Math.round(leak.heapUsed / MiB)} MiB, slope ${((leak.slope * 60) / MiB).toFixed(1)} MiB/min, ` +
          `msToLimit ${Math.round(leak.msToLimit)} ms (heap limit at the event's slope ${Math.round(toHeap)} ms)`,
      )
      assert.ok(toHeap > 60_000, `V8's limit is ${Math.round(toHeap)} ms away at the event`)
      assert.ok(
        leak.msToLimit > 0.3 * toHeap && leak.msToLimit < 3 * toHeap,
        `msToLimit ${leak.msToLimit}, to the heap limit at the event's slope ${toHeap}`,
      )
    },
  )
})
