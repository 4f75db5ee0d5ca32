// memsentry benchmark: `npm run bench` (or `node bench/run.mjs [--quick] [--json <file>]`).
//
// Prints one table of figures measured side by side in this one run, with the performance budget
// of DESIGN.md checked next to each budgeted line. Micro-benchmarks run in interleaved rounds (every
// contender once per round, order rotated) and report medians. Thread-CPU figures come from
// alternating windows (idle / sentry / sentry with a listener / a bare JS timer as a reference for
// what one main-thread wake-up costs here), summed per condition. The memory of a full history is
// measured in a fresh child process that runs alongside (it needs ~36 s to fill at 10 ms).
//
// Leak diagnosis: the main thread's stall to read and reduce the heap profile of a 500 MB heap
// (100 MB with --quick) built while the profiler ran, and what the profiler held, in fresh child
// processes after everything else (bench/diagnosis-child.mjs).
//
//   --quick        shorter rounds and windows, for a CI smoke run (under a minute)
//   --json <file>  also write every figure (with the per-round data) as JSON
//
// The Koa A/B throughput benchmark is a separate script.

import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { MemorySentry, rss } from '../index.js'
import { interleave, formatNs, formatRatio, consume } from './harness.mjs'
import { mainThreadCpuNs, mainThreadSwitches, source as threadCpuSource } from './thread-cpu.mjs'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))

// A full GC before each thread-CPU window, outside the measured span, so that deferred GC work
// from an earlier window (V8's memory reducer runs seconds after allocation) does not land in the
// next one. `npm run bench` passes no node flags, hence the flag set at run time.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
})

const QUICK = args.quick
const PLAN = QUICK
  ? { rounds: 5, roundMs: 50, windowRounds: 3, windowMs: 500 }
  : { rounds: 7, roundMs: 100, windowRounds: 5, windowMs: 1000 }
const HISTORY = { size: 3600, intervalMs: 10 }

const BUDGET = {
  rssSpeedup: 4,
  scrapeSpeedup: 10,
  samplerCpuUs: 15,
  // "Zero" main-thread time without a listener. Thread CPU time over a window is noisy at the
  // µs-per-sample level, so the verdict counts what would cost that time: the main thread's
  // wake-ups (context switches) above idle, per sample. Calling into JS needs one per delivery.
  idleMainThreadWakeupsPerSample: 0.05,
  historyMiB: 2,
  // The stall of reading and reducing a profile; V8's full GC before every read (forced by the
  // inspector) is reported beside it, not in it: node:inspector gives no way around it.
  diagnosisStallMs: 50,
}
const DIAGNOSIS_HEAP_MIB = QUICK ? 100 : 500

const log = (msg) => process.stderr.write(`${msg}\n`)
const t0 = Date.now()
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`

// ---- memory of a full history, in a fresh child process (runs alongside everything else) ----

async function measureHistoryMemory() {
  // The sentry and a control without one, at once: what the control grows by is Node's own.
  const [withSentry, control] = await Promise.all([memoryChild(), memoryChild('control')])
  return { ...withSentry, control }
}

function memoryChild(...extra) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--expose-gc',
        join(here, 'memory-child.mjs'),
        String(HISTORY.size),
        String(HISTORY.intervalMs),
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`memory child exited with ${code}`))
      try {
        resolve(JSON.parse(out))
      } catch (err) {
        reject(new Error(`memory child printed ${JSON.stringify(out)}: ${err.message}`))
      }
    })
  })
}

// ---- main-thread and sampler-thread CPU, in alternating windows ----

// A condition of the thread windows: something that runs on a period while started. `ticks()`
// counts its periods so far.
function sentryCondition(name, options, { listen = false } = {}) {
  const sentry = new MemorySentry({ children: 'none', ...options }) // own process only
  let received = 0
  if (listen) {
    sentry.on('sample', (s) => {
      received++
      consume(s.rss)
    })
  }
  sentry.stop()
  return {
    name,
    intervalMs: options.intervalMs,
    start: () => sentry.start(),
    stop: () => sentry.stop(),
    ticks: () => sentry.stats().ticks,
    async close() {
      const stats = sentry.stats()
      await sentry.close()
      return { sampler: stats, ...(listen ? { samplesReceivedByListener: received } : {}) }
    },
  }
}

// The reference for what any periodic work costs the main thread here: a bare JS timer.
function timerCondition(name, intervalMs) {
  let timer = null
  let ticks = 0
  return {
    name,
    intervalMs,
    start() {
      timer = setInterval(() => ticks++, intervalMs)
    },
    stop() {
      clearInterval(timer)
    },
    ticks: () => ticks,
    close: async () => ({}),
  }
}

async function threadWindows() {
  const conditions = [
    { name: 'idle' },
    sentryCondition('sentry 10 ms', { intervalMs: 10 }),
    sentryCondition("sentry 10 ms + 'sample' listener", { intervalMs: 10 }, { listen: true }),
    sentryCondition('sentry 100 ms', { intervalMs: 100 }),
    timerCondition('setInterval 10 ms (reference)', 10),
  ]
  for (const c of conditions) {
    Object.assign(c, { cpuNs: 0, switches: 0, wallMs: 0, count: 0, windows: [] })
  }
  await sleep(50)

  for (let r = 0; r < PLAN.windowRounds; r++) {
    for (let k = 0; k < conditions.length; k++) {
      const c = conditions[(k + r) % conditions.length]
      gc()
      c.start?.()
      await sleep(20) // let the start-up tick and its event pass
      const ticks0 = c.ticks?.() ?? 0
      const sw0 = mainThreadSwitches()
      const cpu0 = mainThreadCpuNs()
      const wall0 = performance.now()
      await sleep(PLAN.windowMs)
      const cpu1 = mainThreadCpuNs()
      const sw1 = mainThreadSwitches()
      const wall1 = performance.now()
      const ticks1 = c.ticks?.() ?? 0
      c.stop?.()
      const w = { cpuNs: cpu1 - cpu0, switches: sw1 - sw0, wallMs: wall1 - wall0 }
      w.ticks = ticks1 - ticks0
      c.windows.push(w)
      c.cpuNs += w.cpuNs
      c.switches += w.switches
      c.wallMs += w.wallMs
      c.count += w.ticks
      await sleep(20) // let a late event of this window land outside the next one
    }
    log(`  thread windows: round ${r + 1}/${PLAN.windowRounds} (${elapsed()})`)
  }

  const idle = conditions[0]
  const idleCpuPerMs = idle.cpuNs / idle.wallMs
  const idleSwitchesPerMs = idle.switches / idle.wallMs
  const result = { source: threadCpuSource, windowMs: PLAN.windowMs, rounds: PLAN.windowRounds }
  for (const c of conditions) {
    const entry = {
      wallMs: c.wallMs,
      windows: c.windows,
      mainThreadCpuNs: c.cpuNs,
      mainThreadSwitches: c.switches,
      ticks: c.count,
    }
    if (c.close) {
      entry.intervalMs = c.intervalMs
      entry.mainThreadNsPerTick = (c.cpuNs - idleCpuPerMs * c.wallMs) / c.count
      // Standard error of that figure, from the spread of the windows' own per-tick figures.
      const perWindow = c.windows.map((w) => (w.cpuNs - idleCpuPerMs * w.wallMs) / w.ticks)
      entry.mainThreadNsPerTickStdErr = standardError(perWindow)
      entry.mainThreadWakeupsPerTick = (c.switches - idleSwitchesPerMs * c.wallMs) / c.count
      Object.assign(entry, await c.close())
    }
    result[c.name] = entry
  }
  return result
}

function standardError(values) {
  const n = values.length
  if (n < 2) return NaN
  const mean = values.reduce((a, b) => a + b, 0) / n
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)
  return Math.sqrt(variance / n)
}

// ---- micro-benchmarks, interleaved ----

async function micro() {
  const client = require('prom-client')
  const pidusage = require('pidusage')
  const { collect } = require('../integrations/prometheus.js')

  // Own process only for the per-call comparisons with process.memoryUsage().
  const own = new MemorySentry({ intervalMs: 1000, children: 'none' })
  // A default sentry for the scrape: every metric family a default configuration registers.
  const dflt = new MemorySentry()
  while (own.latest === null || dflt.latest === null) await sleep(5)

  const memsentryRegistry = new client.Registry()
  collect(dflt, { registry: memsentryRegistry })
  const defaultRegistry = new client.Registry()
  client.collectDefaultMetrics({ register: defaultRegistry })

  const contenders = [
    { name: 'rss()', sync: () => rss() },
    { name: 'process.memoryUsage.rss()', sync: () => process.memoryUsage.rss() },
    { name: 'sentry.snapshot()', sync: () => own.snapshot() },
    { name: 'process.memoryUsage()', sync: () => process.memoryUsage() },
    { name: 'sentry.latest', sync: () => own.latest },
    { name: 'pidusage(process.pid)', async: () => pidusage(process.pid) },
    { name: 'scrape: memsentry collector', async: () => memsentryRegistry.metrics() },
    { name: 'scrape: collectDefaultMetrics', async: () => defaultRegistry.metrics() },
  ]
  const results = await interleave(contenders, {
    rounds: PLAN.rounds,
    roundMs: PLAN.roundMs,
    onRound: (r) => log(`  micro: round ${r + 1}/${PLAN.rounds} (${elapsed()})`),
  })
  const scrapeBytes = {
    memsentry: (await memsentryRegistry.metrics()).length,
    collectDefaultMetrics: (await defaultRegistry.metrics()).length,
  }
  const families = {
    memsentry: memsentryRegistry.getMetricsAsArray().length,
    collectDefaultMetrics: defaultRegistry.getMetricsAsArray().length,
  }

  pidusage.clear()
  defaultRegistry.clear()
  await own.close()
  await dflt.close()
  return { results, scrapeBytes, families }
}

// ---- leak diagnosis on a big heap, in fresh child processes, one at a time ----

function runDiagnosisChild(mode) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--max-old-space-size=4096',
        join(here, 'diagnosis-child.mjs'),
        mode,
        String(DIAGNOSIS_HEAP_MIB),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`exit code ${code}`)
        resolve(JSON.parse(out.trim().split('\n').pop()))
      } catch (err) {
        reject(
          new Error(`diagnosis child (${mode}) printed ${JSON.stringify(out)}: ${err.message}`),
        )
      }
    })
  })
}

async function measureDiagnosis() {
  log(`  leak diagnosis on a ${DIAGNOSIS_HEAP_MIB} MiB heap (${elapsed()})`)
  const without = await runDiagnosisChild('without')
  const withProfiler = await runDiagnosisChild('with')
  return { heapMiB: DIAGNOSIS_HEAP_MIB, without, with: withProfiler }
}

// ---- the table ----

function verdict(ok, text) {
  return `${ok ? '✓' : '✗'} ${text}`
}

function table(rows) {
  const header = ['measurement', 'value', 'compared with', 'ratio', 'budget']
  const cells = [header, ...rows.map((r) => header.map((_, i) => r[i] ?? ''))]
  const widths = header.map((_, i) => Math.max(...cells.map((r) => [...r[i]].length)))
  const line = (r) =>
    r
      .map((c, i) => c + ' '.repeat(widths[i] - [...c].length))
      .join('  ')
      .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

function render({ micro: m, threads, history, diagnosis }) {
  const ns = (name) => m.results[name].median
  const rows = []

  const rssX = ns('process.memoryUsage.rss()') / ns('rss()')
  rows.push([
    'rss()',
    `${formatNs(ns('rss()'))}/op`,
    `process.memoryUsage.rss() ${formatNs(ns('process.memoryUsage.rss()'))}`,
    `${formatRatio(rssX)} faster`,
    verdict(rssX >= BUDGET.rssSpeedup, `${formatRatio(rssX)} ≥ ${BUDGET.rssSpeedup}x`),
  ])
  const snapX = ns('process.memoryUsage()') / ns('sentry.snapshot()')
  rows.push([
    'sentry.snapshot() (own process)',
    `${formatNs(ns('sentry.snapshot()'))}/op`,
    `process.memoryUsage() ${formatNs(ns('process.memoryUsage()'))}`,
    snapX >= 1 ? `${formatRatio(snapX)} faster` : `${formatRatio(1 / snapX)} slower`,
  ])
  const latestX = ns('sentry.snapshot()') / ns('sentry.latest')
  rows.push([
    'sentry.latest',
    `${formatNs(ns('sentry.latest'))}/op`,
    `sentry.snapshot() ${formatNs(ns('sentry.snapshot()'))}`,
    `${formatRatio(latestX)} faster`,
  ])
  const pidX = ns('pidusage(process.pid)') / ns('sentry.snapshot()')
  rows.push([
    'pidusage(process.pid) (await)',
    `${formatNs(ns('pidusage(process.pid)'))}/call`,
    `sentry.snapshot() ${formatNs(ns('sentry.snapshot()'))}`,
    `${formatRatio(pidX)} slower`,
  ])
  const scrapeX = ns('scrape: collectDefaultMetrics') / ns('scrape: memsentry collector')
  rows.push([
    `scrape: memsentry collector (${m.families.memsentry} families)`,
    `${formatNs(ns('scrape: memsentry collector'))}/scrape`,
    `collectDefaultMetrics (${m.families.collectDefaultMetrics} families) ${formatNs(ns('scrape: collectDefaultMetrics'))}`,
    `${formatRatio(scrapeX)} cheaper`,
    verdict(scrapeX >= BUDGET.scrapeSpeedup, `${formatRatio(scrapeX)} ≥ ${BUDGET.scrapeSpeedup}x`),
  ])

  for (const name of ['sentry 10 ms', 'sentry 100 ms']) {
    const t = threads[name]
    const us = t.sampler.meanCpuNs / 1000
    rows.push([
      `sampler-thread CPU/tick @ ${t.intervalMs} ms`,
      `${us.toFixed(1)} µs (max ${(t.sampler.maxCpuNs / 1000).toFixed(0)} µs)`,
      `${t.sampler.ticks} ticks`,
      '',
      verdict(us < BUDGET.samplerCpuUs, `${us.toFixed(1)} µs < ${BUDGET.samplerCpuUs} µs`),
    ])
  }
  const fixed2 = (x) => (Math.abs(x) < 0.005 ? 0 : x).toFixed(2) // no '-0.00'
  const wake = (t) => `${fixed2(t.mainThreadWakeupsPerTick)} wake-ups/tick`
  const perTick = (t) =>
    `${fixed2(t.mainThreadNsPerTick / 1000)} ± ${(t.mainThreadNsPerTickStdErr / 1000).toFixed(2)} µs`
  const noL = threads['sentry 10 ms']
  const withL = threads["sentry 10 ms + 'sample' listener"]
  const timer = threads['setInterval 10 ms (reference)']
  rows.push([
    'main thread/sample @ 10 ms, no listener',
    perTick(noL),
    `${wake(noL)}, ${noL.ticks} samples`,
    '',
    verdict(
      noL.mainThreadWakeupsPerTick < BUDGET.idleMainThreadWakeupsPerSample,
      `zero: ${fixed2(noL.mainThreadWakeupsPerTick)} wake-ups/sample`,
    ),
  ])
  rows.push([
    "main thread/sample @ 10 ms, 'sample' listener",
    perTick(withL),
    `a bare setInterval(10 ms) tick ${perTick(timer)}`,
    `${formatRatio(withL.mainThreadNsPerTick / timer.mainThreadNsPerTick)}`,
  ])

  const controlMiB = history.control.rssDeltaBytes / 2 ** 20
  const mib = history.rssDeltaBytes / 2 ** 20 - controlMiB
  rows.push([
    `addon RSS, ${history.historyLength} samples of history`,
    `${mib.toFixed(2)} MiB`,
    `${(history.rssDeltaBytes / 2 ** 20).toFixed(2)} MiB grown, less ${controlMiB.toFixed(2)} MiB ` +
      `that the same process without a sentry grew by; fresh process, ` +
      `@ ${history.intervalMs} ms, filled in ${(history.filledMs / 1000).toFixed(0)} s`,
    '',
    verdict(mib < BUDGET.historyMiB, `${mib.toFixed(2)} MiB < ${BUDGET.historyMiB} MiB`),
  ])

  const d = diagnosis.with
  const st = d.stall
  const ours = st.totalMs - st.gcMs
  const heap = `${(d.heapUsed / 2 ** 20).toFixed(0)} MiB heap`
  rows.push([
    `leak diagnosis: read + reduce a profile, ${heap}`,
    `${ours.toFixed(1)} ms (reduce ${st.reduceMs.toFixed(1)} ms)`,
    `${d.samples} samples @ ${d.samplingInterval / 1024} KiB, ${d.sites} sites`,
    '',
    verdict(
      ours < BUDGET.diagnosisStallMs,
      `${ours.toFixed(1)} ms < ${BUDGET.diagnosisStallMs} ms`,
    ),
  ])
  rows.push([
    `leak diagnosis: V8's forced full GC in that read`,
    `${st.gcMs.toFixed(0)} ms`,
    'once per leak episode; node:inspector always asks V8 for it',
    '',
    `✗ with it: ${st.totalMs.toFixed(0)} ms ≥ ${BUDGET.diagnosisStallMs} ms`,
  ])
  // V8 keeps one record per live sample (the Sample, its weak handle, a map entry: ~130 B by
  // their sizes) and one node per distinct stack; RSS against the same heap without the profiler
  // is the measured side of it, within a few MiB of run-to-run noise at this heap size.
  const extra = (d.rss - diagnosis.without.rss) / 2 ** 20
  rows.push([
    `leak diagnosis: profiler memory, ${heap}`,
    `~${((d.samples * 130) / 1024).toFixed(0)} KiB (${d.samples} live samples × ~130 B)`,
    `RSS ${extra >= 0 ? '+' : ''}${extra.toFixed(1)} MiB against the same heap without it`,
    '',
    `bounded: live bytes since start / ${d.samplingInterval / 1024} KiB`,
  ])
  return table(rows)
}

// ---- main ----

const cpu = cpus()
const env = {
  node: process.version,
  kernel: release(),
  cpu: `${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`,
  mode: QUICK ? 'quick' : 'full',
  plan: PLAN,
}
log(
  `memsentry bench (${env.mode}): ${PLAN.rounds} interleaved rounds of ~${PLAN.roundMs} ms per ` +
    `contender; thread windows ${PLAN.windowRounds} × ${PLAN.windowMs} ms per condition; ` +
    `history fill ~${(HISTORY.size * HISTORY.intervalMs) / 1000} s in a child process, alongside`,
)

const historyPromise = measureHistoryMemory()
const threads = await threadWindows()
const microResults = await micro()
log(`  waiting for the history child (${elapsed()})`)
const history = await historyPromise
const diagnosis = await measureDiagnosis()

const figures = { env, micro: microResults, threads, history, diagnosis, budget: BUDGET }
console.log(
  `memsentry bench — node ${env.node}, linux ${env.kernel}, ${env.cpu}; ${env.mode} run, ` +
    `medians of ${PLAN.rounds} interleaved rounds; main-thread CPU from ${threads.source}`,
)
console.log(render(figures))
log(`done in ${elapsed()}`)

if (args.json) {
  writeFileSync(args.json, `${JSON.stringify(figures, null, 2)}\n`)
  log(`figures written to ${args.json}`)
}
