// Koa A/B throughput benchmark: `node bench/koa-ab.mjs [--rounds 3] [--seconds 10] [--json file]`.
//
// The budgets (DESIGN.md): a Koa app under load with a sentry at 100 ms and the batch logger on
// loses under 1% of its throughput; while leak diagnosis samples the heap (V8's sampling heap
// profiler, variant P), under 3% more. One Koa app (bench/koa-ab/server.mjs: a few @koa/router
// routes answering small JSON objects) runs in a fresh child process per round, in two variants:
//
//   A  the app alone, memsentry never loaded
//   B  the app + MemorySentry({ intervalMs: 100 }) + memoryLogger({ every: 1000, log: no-op })
//   P  B while leak diagnosis's profiler runs all along (its default interval, 128 KiB); B
//      itself has diagnosis on but idle, as it is outside leak episodes
//
// Rounds alternate A, B, A, B, ... (`--rounds` of each), so slow drifts of the machine hit both
// alike. Each round: start the server, warm up (`--warmup` s of load, discarded), then load it at
// maximum throughput for `--seconds` s with autocannon (programmatic, in this process, over
// `--connections` keep-alive connections to 127.0.0.1) and count 2xx responses per second.
// Reported: the median req/s per variant, the ratio B/A of the medians with the spread of the
// per-pair ratios, the server's CPU time per request, and what the rest of the machine used
// meanwhile (other processes take CPU from the server, and show up there).
//
//   --rounds <n>        rounds per variant (default 3, at least 3 for a verdict)
//   --seconds <s>       measured load per round (default 10)
//   --warmup <s>        load before measuring, per round (default 2)
//   --connections <n>   autocannon connections (default 10)
//   --variants <list>   the variants of each round, in order (default A,B,P); to tell where B's cost
//                       comes from, add S (B's sentry alone), L (B's logger alone, over a stopped
//                       sentry) or N (B with the logger's route counting off), e.g. A,S,L,N,B
//   --json <file>       also write every figure as JSON

import { fork } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { median } from './harness.mjs'
import { machineBusyMs, processCpuMs } from './koa-ab/proc-cpu.mjs'

const require = createRequire(import.meta.url)
const autocannon = require('autocannon')

const serverScript = fileURLToPath(new URL('./koa-ab/server.mjs', import.meta.url))

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '10' },
    variants: { type: 'string', default: 'A,B,P' },
    json: { type: 'string' },
  },
})

function positive(name, { integer = false, max = Infinity } = {}) {
  const value = Number(args[name])
  if (!(value > 0) || value > max || (integer && !Number.isInteger(value))) {
    console.error(`koa-ab: --${name} must be a positive ${integer ? 'integer' : 'number'} ≤ ${max}`)
    process.exit(2)
  }
  return value
}
const PLAN = {
  rounds: positive('rounds', { integer: true, max: 50 }),
  seconds: positive('seconds', { max: 600 }),
  warmupSeconds: positive('warmup', { max: 60 }),
  connections: positive('connections', { integer: true, max: 1000 }),
}
const BUDGET = { minRatio: 0.99, profilerMinRatio: 0.97 }

const VARIANTS = {
  A: 'no memsentry',
  B: 'sentry 100 ms + memoryLogger',
  S: 'sentry 100 ms alone',
  L: 'memoryLogger alone (sentry stopped)',
  N: 'B with memoryLogger routes: false',
  P: 'B while leak diagnosis samples the heap',
}
const ORDER = args.variants.split(',').map((v) => v.trim().toUpperCase())
if (
  !ORDER.includes('A') ||
  !ORDER.includes('B') ||
  new Set(ORDER).size !== ORDER.length ||
  ORDER.some((v) => !(v in VARIANTS))
) {
  console.error(
    `koa-ab: --variants must list A, B and any of S, L, N, P once each, got ${args.variants}`,
  )
  process.exit(2)
}

// The routes the load cycles through (each connection runs this sequence over and over).
const REQUESTS = [
  { method: 'GET', path: '/api/users/42' },
  { method: 'GET', path: '/api/orders?limit=5' },
  { method: 'GET', path: '/api/users/7' },
  { method: 'GET', path: '/api/health' },
]

const log = (msg) => process.stderr.write(`${msg}\n`)
const t0 = performance.now()
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`

// ---- one round ----

/** Forks the server variant; resolves { child, port, pid } once it listens. */
function startServer(variant) {
  return new Promise((resolve, reject) => {
    const child = fork(serverScript, [variant], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server ${variant} did not listen within 10 s`))
    }, 10_000)
    child.once('message', (msg) => {
      clearTimeout(timer)
      if (msg?.type === 'ready') resolve({ child, port: msg.port, pid: msg.pid })
      else reject(new Error(`server ${variant} sent ${JSON.stringify(msg)}`))
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(
        new Error(`server ${variant} exited (code ${code}, signal ${signal}) before listening`),
      )
    })
  })
}

/** Sends { type } to the server and resolves its answer of the same type. */
function ask(child, type) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server: no answer to '${type}' in 5 s`)),
      5_000,
    )
    const onMessage = (msg) => {
      if (msg?.type !== type) return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(msg)
    }
    child.on('message', onMessage)
    child.send({ type })
  })
}

/** Asks the server for its final counts and waits for it to exit (SIGKILL after 5 s). */
async function stopServer(child) {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  try {
    return await ask(child, 'report')
  } finally {
    await exited
    clearTimeout(timer)
  }
}

function load(port, seconds) {
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: PLAN.connections,
    duration: seconds,
    requests: REQUESTS,
  })
}

function cpuNow(serverPid) {
  return {
    wallMs: performance.now(),
    serverMs: processCpuMs(serverPid),
    benchMs: processCpuMs('self'),
    machineMs: machineBusyMs(),
  }
}

async function round(variant, index) {
  const { child, port, pid } = await startServer(variant)
  try {
    await load(port, PLAN.warmupSeconds)
    const mark = await ask(child, 'mark')
    const before = cpuNow(pid)
    const result = await load(port, PLAN.seconds)
    const after = cpuNow(pid)
    const report = await stopServer(child)

    const wallMs = after.wallMs - before.wallMs
    const serverMs = after.serverMs - before.serverMs
    const benchMs = after.benchMs - before.benchMs
    const ok = result['2xx']
    return {
      round: index + 1,
      variant,
      reqPerSec: ok / result.duration,
      responses2xx: ok,
      durationS: result.duration,
      failures: {
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
      },
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
      // In cores (CPU ms per wall ms) over the measured span.
      serverCores: serverMs / wallMs,
      autocannonCores: benchMs / wallMs,
      otherCores: Math.max(0, after.machineMs - before.machineMs - serverMs - benchMs) / wallMs,
      serverCpuUsPerRequest: (serverMs * 1000) / ok,
      // The server's own counts over the measured span.
      served: report.served - mark.served,
      logBatches: report.batches - mark.batches,
      samplerTicks: report.ticks === null ? null : report.ticks - mark.ticks,
      samplerCpuMs: report.ticks === null ? null : (report.samplerCpuNs - mark.samplerCpuNs) / 1e6,
    }
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
}

// ---- the figures ----

function spread(values) {
  const m = median(values)
  return {
    median: m,
    min: Math.min(...values),
    max: Math.max(...values),
    spread: (Math.max(...values) - Math.min(...values)) / m,
  }
}

function summarize(rounds) {
  const of = (v) => rounds.filter((r) => r.variant === v)
  const A = of('A')
  const cpuA = median(A.map((r) => r.serverCpuUsPerRequest))
  const variants = {}
  for (const v of ORDER) {
    const R = of(v)
    const figures = spread(R.map((r) => r.reqPerSec))
    const cpu = median(R.map((r) => r.serverCpuUsPerRequest))
    variants[v] = {
      ...figures,
      serverCpuUsPerRequest: cpu,
      // Against A: the ratio of the medians, and round by round (the variants of a round ran
      // one after the other: their ratio sees the least drift).
      ratio: figures.median / median(A.map((r) => r.reqPerSec)),
      pairRatios: R.map((r, i) => r.reqPerSec / A[i].reqPerSec),
      // The same seen through CPU: A's CPU per request over this variant's (1 = free).
      cpuRatio: cpuA / cpu,
    }
  }
  return {
    variants,
    ratio: variants.B.ratio,
    failures: rounds.reduce(
      (n, r) => n + r.failures.errors + r.failures.timeouts + r.failures.non2xx,
      0,
    ),
  }
}

const int = (x) => Math.round(x).toLocaleString('en-US')
const pct = (x) => `${(x * 100).toFixed(1)}%`
const lossText = (ratio) => (ratio <= 1 ? `loss ${pct(1 - ratio)}` : `gain ${pct(ratio - 1)}`)

function table(header, rows) {
  const cells = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...cells.map((r) => [...String(r[i])].length)))
  const line = (r) =>
    r
      .map((c, i) => {
        const s = String(c)
        const pad = ' '.repeat(widths[i] - [...s].length)
        return i === 0 || i === 1 ? s + pad : pad + s // text left, figures right
      })
      .join('  ')
      .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

function render(rounds, s) {
  const roundRows = rounds.map((r) => [
    r.round,
    r.variant,
    int(r.reqPerSec),
    `${r.serverCpuUsPerRequest.toFixed(1)} µs`,
    r.serverCores.toFixed(2),
    r.autocannonCores.toFixed(2),
    r.otherCores.toFixed(2),
    r.samplerCpuMs === null ? '' : `${r.samplerCpuMs.toFixed(2)} ms / ${r.samplerTicks} ticks`,
    r.variant === 'A' || r.variant === 'S' ? '' : r.logBatches,
    r.failures.errors + r.failures.timeouts + r.failures.non2xx,
  ])
  const perRound = table(
    [
      'round',
      'variant',
      'req/s',
      'server CPU/req',
      'server cores',
      'autocannon cores',
      'other cores',
      'sampler CPU',
      'log batches',
      'failed',
    ],
    roundRows,
  )
  const range = (xs) => `${Math.min(...xs).toFixed(3)} – ${Math.max(...xs).toFixed(3)}`
  const summary = table(
    [
      'variant',
      '',
      'median req/s',
      'min – max',
      'spread',
      'vs A',
      'per round vs A',
      'server CPU/req',
      'A/variant CPU',
    ],
    ORDER.map((v) => {
      const f = s.variants[v]
      return [
        v,
        VARIANTS[v],
        int(f.median),
        `${int(f.min)} – ${int(f.max)}`,
        pct(f.spread),
        v === 'A' ? '' : f.ratio.toFixed(3),
        v === 'A' ? '' : range(f.pairRatios),
        `${f.serverCpuUsPerRequest.toFixed(1)} µs`,
        v === 'A' ? '' : f.cpuRatio.toFixed(3),
      ]
    }),
  )
  const B = s.variants.B
  const lines = [
    perRound,
    '',
    summary,
    '',
    `B/A throughput (medians): ${B.ratio.toFixed(3)}, ${lossText(B.ratio)}; per round: ` +
      `${B.pairRatios.map((x) => x.toFixed(3)).join(', ')}; server CPU per request A/B: ` +
      `${B.cpuRatio.toFixed(3)}`,
  ]
  return lines.join('\n')
}

/** P against B, round by round: what the sampling profiler costs. */
function profilerVerdict(s) {
  const { B, P } = s.variants
  if (!P) return null
  const ratio = P.median / B.median
  const pairs = P.pairRatios.map((r, i) => r / B.pairRatios[i])
  const cpu = B.serverCpuUsPerRequest / P.serverCpuUsPerRequest
  const text =
    `P/B throughput (medians): ${ratio.toFixed(3)}, ${lossText(ratio)}; per round: ` +
    `${pairs.map((x) => x.toFixed(3)).join(', ')}; server CPU per request B/P: ${cpu.toFixed(3)}`
  if (s.failures > 0 || PLAN.rounds < 3) return `${text}\n? no verdict for P (see above)`
  const ok = ratio >= BUDGET.profilerMinRatio
  return `${text}\n${ok ? '✓ within' : '✗ over'} the profiler's budget: P/B ${ok ? '≥' : '<'} ${BUDGET.profilerMinRatio} (budget < 3% loss while it runs)`
}

function verdict(s) {
  const { A, B } = s.variants
  const loss = lossText(s.ratio)
  if (s.failures > 0) return `✗ ${s.failures} failed requests: the figures do not count`
  if (PLAN.rounds < 3)
    return `? ${PLAN.rounds} round(s) per variant: too few for a verdict (use ≥ 3)`
  const noise = Math.max(A.spread, B.spread)
  const straddle =
    Math.min(...B.pairRatios) < BUDGET.minRatio && Math.max(...B.pairRatios) >= BUDGET.minRatio
  const noiseNote =
    noise > 1 - BUDGET.minRatio
      ? `; round-to-round spread ${pct(noise)} is larger than the 1% budget${straddle ? ', and the pairs straddle 0.99' : ''}`
      : ''
  if (s.ratio >= BUDGET.minRatio) {
    return `✓ within budget: B/A = ${s.ratio.toFixed(3)} ≥ ${BUDGET.minRatio} (${loss}, budget < 1% loss)${noiseNote}`
  }
  return `✗ over budget: B/A = ${s.ratio.toFixed(3)} < ${BUDGET.minRatio} (${loss}, budget < 1% loss)${noiseNote}`
}

// ---- main ----

const cpu = cpus()
const env = {
  node: process.version,
  kernel: release(),
  cpu: `${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`,
  cores: cpu.length,
  loadavgAtStart: loadavg(),
  plan: PLAN,
}
log(
  `koa A/B: ${PLAN.rounds} rounds of ${ORDER.join(', ')}, each a fresh server, ` +
    `${PLAN.warmupSeconds} s warm-up + ${PLAN.seconds} s at max load, ${PLAN.connections} connections; ` +
    `~${Math.ceil(ORDER.length * PLAN.rounds * (PLAN.warmupSeconds + PLAN.seconds + 0.5))} s`,
)

const rounds = []
for (let i = 0; i < PLAN.rounds; i++) {
  for (const variant of ORDER) {
    const r = await round(variant, i)
    rounds.push(r)
    log(
      `  round ${i + 1}/${PLAN.rounds} ${variant}: ${int(r.reqPerSec)} req/s, ` +
        `server ${r.serverCores.toFixed(2)} cores, others ${r.otherCores.toFixed(2)} (${elapsed()})`,
    )
  }
}
const s = summarize(rounds)

console.log(
  `memsentry Koa A/B — node ${env.node}, linux ${env.kernel}, ${env.cpu}; ` +
    `${PLAN.rounds} rounds × (${ORDER.join(', ')}), ${PLAN.warmupSeconds} s warm-up + ${PLAN.seconds} s each, ` +
    `${PLAN.connections} connections to 127.0.0.1`,
)
console.log(
  `A = Koa app (@koa/router, small JSON bodies), no memsentry; ` +
    `B = same + MemorySentry({ intervalMs: 100 }) + memoryLogger({ every: 1000, log: no-op })` +
    (ORDER.includes('P') ? `; P = B while leak diagnosis's heap sampler runs` : ''),
)
console.log(
  `note: ${env.cores} cores here, and autocannon (this process) takes about one of them, so the ` +
    `server gets at most the other; "other cores" is what the rest of the machine used meanwhile.`,
)
console.log('')
console.log(render(rounds, s))
console.log(verdict(s))
const pv = profilerVerdict(s)
if (pv) console.log(pv)
log(`done in ${elapsed()}`)

if (args.json) {
  writeFileSync(
    args.json,
    `${JSON.stringify({ env, budget: BUDGET, rounds, summary: s }, null, 2)}\n`,
  )
  log(`figures written to ${args.json}`)
}
