// What watching children costs the sampler thread: `node bench/children.mjs [options]`.
//
// One sentry at intervalMs 100 with children 'direct', measured with 0 and then with 50 live
// children (`sleep` processes of this one), each with smaps off and on. A row's figure is the
// sampler thread's own CPU per tick (sentry.stats(): cpuNs and ticks, as a difference over the
// measured window, which starts after a warm-up long enough for discovery, once a second, to
// have found every child). µs/child is the row minus the 0-children row with the same smaps
// setting, divided by the number of children. Discovery (a scan of /proc/*/stat where the kernel
// lacks CONFIG_PROC_CHILDREN) runs once a second, so every tenth tick carries it; the two
// children 'none' rows (no discovery, no children) show what that scan adds to the 0-children rows.
//
//   --children <n>   live children (default 50)
//   --seconds <s>    measured window per row (default 5, at least 5)
//   --rounds <n>     repeat the six rows, reporting the median per row (default 1)
//   --json <file>    also write the figures as JSON

import { spawn } from 'node:child_process'
import { writeFileSync, readdirSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'

import { MemorySentry } from '../index.js'
import { median } from './harness.mjs'

const { values: args } = parseArgs({
  options: {
    children: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
    json: { type: 'string' },
  },
})

const CHILDREN = Number(args.children)
const SECONDS = Math.max(5, Number(args.seconds))
const ROUNDS = Math.max(1, Number(args.rounds))
const INTERVAL_MS = 100
// Discovery runs at most once a second: two periods and a bit let it find everyone.
const WARMUP_MS = 2500

const log = (line = '') => process.stderr.write(`${line}\n`)

// --- the children -------------------------------------------------------------------------------

let sleepers = []

function spawnSleepers(n) {
  // long enough for every row of every round, plus slack; killed at the end anyway
  const lifeS = Math.max(60, Math.ceil(ROUNDS * 2 * (SECONDS + WARMUP_MS / 1000) + 30))
  sleepers = Array.from({ length: n }, () =>
    spawn('sleep', [String(lifeS)], { stdio: 'ignore', detached: false }),
  )
}

async function killSleepers() {
  const exited = sleepers.map(
    (c) => new Promise((resolve) => (c.exitCode !== null ? resolve() : c.once('exit', resolve))),
  )
  for (const c of sleepers) c.kill('SIGKILL')
  await Promise.all(exited)
  sleepers = []
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const c of sleepers) c.kill('SIGKILL')
    process.exit(130)
  })
}
process.once('exit', () => {
  for (const c of sleepers) c.kill('SIGKILL')
})

// --- one row -----------------------------------------------------------------------------------

async function measure({ mode, children, smaps }) {
  const sentry = new MemorySentry({ intervalMs: INTERVAL_MS, children: mode, smaps, leak: false })
  try {
    await sleep(WARMUP_MS)
    const seen = sentry.latest?.children?.length ?? 0
    if (seen !== children) {
      throw new Error(`the sentry sees ${seen} children, expected ${children}`)
    }
    const a = sentry.stats()
    await sleep(SECONDS * 1000)
    const b = sentry.stats()
    const ticks = b.ticks - a.ticks
    const seenAfter = sentry.latest?.children?.length ?? 0
    if (seenAfter !== children) {
      throw new Error(`the sentry sees ${seenAfter} children at the end, expected ${children}`)
    }
    return {
      mode,
      children,
      smaps,
      ticks,
      usPerTick: (b.cpuNs - a.cpuNs) / ticks / 1000,
      // over the sentry's whole life (warm-up included): the per-tick maximum
      maxUs: b.maxCpuNs / 1000,
      lifetimeMeanUs: b.meanCpuNs / 1000,
    }
  } finally {
    await sentry.close()
  }
}

// --- the run -----------------------------------------------------------------------------------

const processes = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).length
log(
  `memsentry children bench: intervalMs ${INTERVAL_MS}, children 'direct', ${CHILDREN} children, ` +
    `${SECONDS} s per row after ${WARMUP_MS} ms warm-up, ${ROUNDS} round(s); ` +
    `${processes} processes on this host, ${cpus().length} CPUs`,
)

const rounds = []
for (let r = 0; r < ROUNDS; r++) {
  const rows = []
  for (const mode of ['none', 'direct']) {
    for (const smaps of [false, true]) {
      log(`round ${r + 1}: children '${mode}', 0 children, smaps ${smaps ? 'on' : 'off'}`)
      rows.push(await measure({ mode, children: 0, smaps }))
    }
  }
  spawnSleepers(CHILDREN)
  try {
    for (const smaps of [false, true]) {
      log(`round ${r + 1}: children 'direct', ${CHILDREN} children, smaps ${smaps ? 'on' : 'off'}`)
      rows.push(await measure({ mode: 'direct', children: CHILDREN, smaps }))
    }
  } finally {
    await killSleepers()
  }
  rounds.push(rows)
}

// The median per row over the rounds.
const rows = rounds[0].map((row, i) => {
  const all = rounds.map((rs) => rs[i])
  return {
    mode: row.mode,
    children: row.children,
    smaps: row.smaps,
    ticks: all.reduce((acc, x) => acc + x.ticks, 0),
    usPerTick: median(all.map((x) => x.usPerTick)),
    maxUs: Math.max(...all.map((x) => x.maxUs)),
    rounds: all.map((x) => x.usPerTick),
  }
})
for (const row of rows) {
  const base = rows.find((b) => b.mode === 'direct' && b.children === 0 && b.smaps === row.smaps)
  row.usPerChild = row.children > 0 ? (row.usPerTick - base.usPerTick) / row.children : null
}

const fmt = (x, digits = 1) => (x == null ? '-' : x.toFixed(digits))
const table = [
  ['mode', 'children', 'smaps', 'µs/tick', 'max µs', 'ticks', 'µs/child'],
  ...rows.map((r) => [
    r.mode,
    String(r.children),
    r.smaps ? 'on' : 'off',
    fmt(r.usPerTick),
    fmt(r.maxUs, 0),
    String(r.ticks),
    fmt(r.usPerChild, 2),
  ]),
]
const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)))
console.log(
  `sampler-thread CPU per tick, intervalMs ${INTERVAL_MS}, children 'direct' (median of ${ROUNDS} round(s), ${SECONDS} s each)`,
)
for (const row of table) {
  console.log(
    row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '),
  )
}

if (args.json) {
  const figures = {
    node: process.version,
    kernel: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    hostProcesses: processes,
    intervalMs: INTERVAL_MS,
    mode: 'direct',
    childrenCount: CHILDREN,
    seconds: SECONDS,
    warmupMs: WARMUP_MS,
    rounds: ROUNDS,
    rows,
  }
  writeFileSync(args.json, `${JSON.stringify(figures, null, 2)}\n`)
  log(`figures written to ${args.json}`)
}
