// Leak detection on real processes, with the defaults: memsentry's detector against memwatch-next's
// rule, at two settings (or more, with --settings) on the same process.
//
//   npm run eval:leak                       # every scenario, healthy ones 3 times (about 70 min)
//   npm run eval:leak -- --quick            # the 60 s setting only, shorter runs, once each
//   npm run eval:leak -- --only fast-heap,cache-plateau --repeats 1
//   npm run eval:leak -- --json out.json    # also write the results
//   npm run eval:leak -- --settings w60,w300,d60,s300   # also at 1 s (60 s window), 5 s (300 s)
//   npm run eval:leak -- --settings w60,w120,w180,w300  # and 120 s and 180 s windows at 1 s
//   npm run eval:leak -- --settings def --only slow-heap   # nothing set (1 s, a 10 min window);
//                                           # every phase twice as long (--scale 2) for it
//   npm run eval:leak -- --traces dir       # also write each run's samples (CSV) for replay:
//                                           # cargo run --release --no-default-features --features replay --example leak_replay -- dir/*.csv
//   npm run eval:leak -- --settings w60 --heap-rates 2000,4000 --repeats 3
//                                           # a heap leak of that many bytes per request at
//                                           # 60 req/s each (the slow leak is 1000): the smallest
//                                           # rate a window reports within 2 x window, measured
//   npm run eval:leak -- --memory-limit 1GiB  # each server in a memory cgroup of its own with
//                                           # that hard limit, as in a container (needs root)
//
// Each run is a Koa server in a child process (__test__/fixtures/leak/server.mjs) under load from
// autocannon in another child process, at fixed rates against 127.0.0.1. The server runs one
// MemorySentry per setting, each with nothing set but the sampling period and the window (the
// detector's evidence scales with the window: no minSlope is given), plus `heap: true` and, for
// the child scenario, `leak.metric: 'treeRss'`; the `def` setting sets nothing at all (but that
// metric), and its 10 minute window runs the phases twice as long unless --scale says otherwise.
// memwatch-next's rule (eval/memwatch-rule.mjs)
// watches the same process. Several runs go at once (--concurrency): each is a light load.
//
// Verdicts, per run and setting: a leak must be reported within 1.0 × window + 30 s of the load's
// start (the slow leak within 2 × window) with the right suspect, and a leak that stops must be
// called off within 1.5 × window of stopping and not reported again; a healthy run must report
// nothing. The exit code is 1 when memsentry misses a verdict; memwatch's column is for comparison.
// With --memory-limit, Node sizes V8's heap limit from the cgroup's (about half), and a leak must
// also be reported before the process ends (V8's heap limit or the OOM killer), a healthy run
// must not end; the table shows each first event's msToLimit and when the process ended.
//
// The package is copied to a temporary folder first, so that a rebuild of the addon in the
// working tree during the run does not change (or corrupt) the binary under test.
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { runScenario, writeTrace } from '../__test__/fixtures/leak/scenario.mjs'
import { makeContainerCgroup } from '../__test__/helpers/cgroup.mjs'
import { memwatchAddon } from './memwatch-addon.mjs'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const { parseSize } = createRequire(import.meta.url)('../lib/options.js')
const memwatchProbe = fileURLToPath(new URL('./memwatch-rule.mjs', import.meta.url))

/**
 * The two settings of issue 10, a short window sampled fast and a longer one at 1 s (run by
 * default), and more a user may well pick, run with `--settings`: the short window at the
 * default 1 s sampling, the longer one at 5 s, and windows between the two at 1 s.
 */
export const SETTINGS = {
  w60: { intervalMs: 250, windowMs: 60_000 },
  w300: { intervalMs: 1000, windowMs: 300_000 },
  d60: { intervalMs: 1000, windowMs: 60_000 },
  s300: { intervalMs: 5000, windowMs: 300_000 },
  // Windows between the two, at 1 s: the defaults must hold at any window.
  w120: { intervalMs: 1000, windowMs: 120_000 },
  w180: { intervalMs: 1000, windowMs: 180_000 },
  // What `new MemorySentry()` gets: no option at all but the child scenario's metric. The
  // figures are the library's defaults (lib/options.js), for the deadlines; a 10 minute window
  // needs the phases longer than the scenarios' (`--scale 2`).
  def: { intervalMs: 1000, windowMs: 600_000, nothingSet: true },
}
const DEFAULT_SETTINGS = ['w60', 'w300']

/** The sentry options of a setting: the defaults but for period and window (or all of them). */
export function sentryOptions({ intervalMs, windowMs, nothingSet }, leakExtra = {}) {
  if (nothingSet) return Object.keys(leakExtra).length > 0 ? { leak: { ...leakExtra } } : {}
  return { intervalMs, heap: true, historySize: 7200, leak: { windowMs, ...leakExtra } }
}

const KB = 1000
// phases: [rate req/s, seconds]; `stopAfterS`: a leak that stops, `stopAfterS` after load start.
export const SCENARIOS = [
  {
    name: 'fast-heap',
    what: 'keeps a 10 KB JS string per request, 100 req/s (~1 MB/s)',
    server: { retain: 'heap', bytesPerRequest: 10 * KB },
    phases: [[100, 360]],
    expect: 'leak',
    suspect: 'heap',
  },
  {
    name: 'slow-heap',
    what: 'keeps a 1 KB JS string per request, 60 req/s (~60 KB/s)',
    server: { retain: 'heap', bytesPerRequest: 1 * KB },
    phases: [[60, 630]],
    expect: 'leak',
    slow: true,
    suspect: 'heap',
  },
  {
    // The slowest rate issue 10 asks a 300 s window to catch; slower than a 60 s window must
    // (3 MiB/min), so at 60 s only a wrong suspect fails.
    name: 'slower-heap',
    what: 'keeps a 300 B JS string per request, 60 req/s (~1 MiB/min)',
    server: { retain: 'heap', bytesPerRequest: 300 },
    phases: [[60, 630]],
    expect: 'leak',
    slow: true,
    dueFromWindowMs: 300_000,
    suspect: 'heap',
  },
  {
    // The slow leak in a service with a large, steady heap (RSS ~470 MB). The growth a window
    // asks for is at least 2% of the metric's level: ~9.4 MB at 60 s here, more than this leak's
    // 3.4 MiB a minute, so only a 300 s window is due (a lower share fires LRUs at 105-150 s
    // windows in replay); at 60 s only a wrong suspect fails.
    name: 'slow-heap-big',
    what: 'the slow heap leak (1 KB per request, 60 req/s) in a service with a ~300 MB catalog',
    server: { retain: 'heap', bytesPerRequest: 1 * KB, catalog: { bytes: 300_000_000 } },
    phases: [[60, 630]],
    expect: 'leak',
    slow: true,
    dueFromWindowMs: 300_000,
    suspect: 'heap',
  },
  {
    name: 'native-buffers',
    what: 'keeps a 16 KiB Buffer per request, 100 req/s',
    server: { retain: 'native', bytesPerRequest: 16_384 },
    phases: [[100, 360]],
    expect: 'leak',
    suspect: 'native',
  },
  {
    name: 'emitter-closure',
    what: 'adds a listener per request to a long-lived emitter, its closure holding a 2 KB record, 100 req/s',
    server: { retain: 'emitter', bytesPerRequest: 2 * KB },
    phases: [[100, 360]],
    expect: 'leak',
    suspect: 'heap',
  },
  {
    name: 'leak-stops',
    what: 'keeps a 10 KB string per request at 100 req/s for 360 s, then nothing',
    server: { retain: 'heap', bytesPerRequest: 10 * KB, retainForMs: 360_000 },
    phases: [[100, 870]],
    expect: 'leak',
    stopsAtS: 360,
    suspect: 'heap',
  },
  {
    name: 'child-leak',
    what: 'a child process keeps 256 KiB more every second; 50 req/s on the parent',
    server: { retain: 'none', child: { bytesPerSec: 262_144 } },
    leak: { metric: 'treeRss' },
    phases: [[50, 360]],
    expect: 'leak',
    suspect: 'child',
  },
  {
    name: 'load-steps',
    what: 'no retention; 50, 300, 100, 300, 50, 200 req/s, 100 s each',
    server: { retain: 'none' },
    phases: [
      [50, 100],
      [300, 100],
      [100, 100],
      [300, 100],
      [50, 100],
      [200, 100],
    ],
    expect: 'none',
  },
  {
    name: 'load-spikes',
    what: 'no retention; 50 req/s with two 20 s spikes to 600 req/s',
    server: { retain: 'none' },
    phases: [
      [50, 120],
      [600, 20],
      [50, 160],
      [600, 20],
      [50, 280],
    ],
    expect: 'none',
  },
  {
    name: 'cache-plateau',
    what: 'a cache of 4000 x 10 KB entries, 100 req/s: fills in 40 s, then stays full',
    server: { retain: 'cache', bytesPerRequest: 10 * KB, cacheEntries: 4000 },
    phases: [[100, 600]],
    expect: 'none',
  },
  {
    name: 'warm-up',
    what: 'load from the first second; a start-up table of 3000 x 10 KB fills, then stays',
    server: { retain: 'warmup', bytesPerRequest: 10 * KB, cacheEntries: 3000 },
    phases: [[100, 600]],
    expect: 'none',
  },
  {
    name: 'lru-slow',
    what: 'an LRU keyed by a random id among 6000, 4 KB entries, 100 req/s: nears its cap ever slower',
    server: { retain: 'lru', bytesPerRequest: 4 * KB, cacheEntries: 6000 },
    phases: [[100, 600]],
    expect: 'none',
  },
  {
    name: 'heavy-garbage',
    what: 'no retention; a 200 KB record built and parsed per request, 100 req/s',
    server: { retain: 'none', garbageBytes: 200 * KB },
    phases: [[100, 600]],
    expect: 'none',
  },
  {
    name: 'gzip',
    what: 'no retention; a 50 KB JSON answer gzipped on the threadpool per request, 100 req/s',
    server: { retain: 'none', compress: { bytes: 50 * KB } },
    phases: [[100, 600]],
    expect: 'none',
  },
  {
    name: 'upstream',
    what: 'no retention; a fetch() of a 20 KB JSON answer from an upstream server per request, 100 req/s',
    server: { retain: 'none', upstream: { bytes: 20 * KB } },
    phases: [[100, 600]],
    expect: 'none',
  },
  {
    name: 'big-heap',
    what: 'no retention; a ~300 MB catalog of small objects built at start, read per request, 100 req/s',
    server: { retain: 'none', catalog: { bytes: 300_000_000 } },
    phases: [[100, 600]],
    expect: 'none',
  },
  {
    name: 'batch-job',
    what: 'no retention; 50 req/s and a job that builds ~150 MB every 20 s and drops it',
    server: { retain: 'none', job: { everyMs: 20_000, bytes: 150_000_000 } },
    phases: [[50, 600]],
    expect: 'none',
  },
]

function parse() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      traces: { type: 'string' },
      only: { type: 'string' },
      settings: { type: 'string' },
      repeats: { type: 'string' },
      concurrency: { type: 'string' },
      full: { type: 'boolean', default: false },
      scale: { type: 'string' },
      'memory-limit': { type: 'string' },
      'heap-rates': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(
      'usage: node eval/leak.mjs [--quick] [--json <file>] [--traces <dir>] [--only name,name] ' +
        '[--settings w60,w300,d60,s300] [--repeats <healthy runs>] [--concurrency <runs at once>] ' +
        '[--full (leak runs go to their end, for --traces)] [--scale <phase length factor>] ' +
        '[--memory-limit <size, e.g. 1GiB: each server in a cgroup with that hard limit>] ' +
        '[--heap-rates <bytes per request, e.g. 2000,4000: heap leaks at 60 req/s, run --repeats times>]',
    )
    console.log(`scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`)
    process.exit(0)
  }
  return values
}

/**
 * The slow heap leak at other rates, `bytes` per request at its 60 req/s, each run as often as a
 * healthy scenario: where between the slow leak and the fast one a window starts to report in
 * time. Judged as the slow leak is (within 2 × window).
 */
export function heapRateScenarios(list) {
  const slow = SCENARIOS.find((s) => s.name === 'slow-heap')
  return list.split(',').map((text) => {
    const bytes = Number(text)
    if (!Number.isInteger(bytes) || bytes <= 0) {
      throw new RangeError(`--heap-rates wants bytes per request such as 2000,4000, not ${text}`)
    }
    const mibPerMin = (bytes * slow.phases[0][0] * 60) / 1048576
    return {
      ...slow,
      name: `heap-${bytes}B`,
      what: `keeps a ${bytes} B JS string per request, 60 req/s (~${mibPerMin.toFixed(1)} MiB/min)`,
      server: { ...slow.server, bytesPerRequest: bytes },
      repeated: true,
    }
  })
}

/**
 * The scenario a recording ran, from the name in its header (`# <name> load_start_ms=...`,
 * `#2` and on for repeats): a scenario of the eval, a heap leak at another rate
 * (`heap-<bytes>B`), or a soak (`soak-...`, a healthy service throughout); null for none.
 */
export function recordedScenario(header) {
  const name = header.replace(/#\d+$/, '')
  const scenario = SCENARIOS.find((s) => s.name === name)
  if (scenario) return scenario
  if (name.startsWith('soak-')) return { name, expect: 'none' }
  const bytes = name.match(/^heap-([1-9]\d*)B$/)?.[1]
  return bytes ? heapRateScenarios(bytes)[0] : null
}

/** Copies the package's runtime files (JS, loader, addon) to a temporary folder. */
export function snapshotPackage() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'memsentry-eval-'))
  for (const f of ['index.js', 'index.mjs', 'binding.js', 'package.json', 'lib', 'integrations']) {
    cpSync(path.join(repoRoot, f), path.join(dir, f), { recursive: true })
  }
  for (const f of readdirSync(repoRoot).filter((name) => name.endsWith('.node'))) {
    cpSync(path.join(repoRoot, f), path.join(dir, f))
  }
  return dir
}

const seconds = (ms) => (ms == null ? null : Math.round(ms / 100) / 10)

/**
 * A run's deadlines at a window, in seconds after the load's start: `start` for the first
 * 'leak' (1.0 x window + 30 s, 2 x window for a slow leak), `end` for the 'leak-end' of a leak
 * that stops (1.5 x window after it stops); `start: null` where the scenario is not due. A
 * window under a minute counts as a minute (the detector analyses a minute then), and a leak
 * that stops is no leak to a window over 300 s. `npm run eval:sweep` judges by the same.
 */
export function deadlines(scenario, windowMs) {
  const stops = scenario.stopsAtS != null
  if (windowMs < (scenario.dueFromWindowMs ?? 0) || (stops && windowMs > 300_000)) {
    return { start: null, end: null }
  }
  const w = Math.max(windowMs, 60_000) / 1000
  return {
    start: scenario.slow ? 2 * w : w + 30,
    end: stops ? scenario.stopsAtS + 1.5 * w : null,
  }
}

/**
 * The verdict of memsentry at one window on one run: 'ok', 'ok (not due)' or what went wrong.
 * `leaks` and `ends` are its 'leak' and 'leak-end' events, `{ latencyMs, suspect }`, in order,
 * timed from the load's start; the load lasts as long as the scenario's phases.
 */
export function judge(scenario, windowMs, leaks, ends) {
  const first = seconds(leaks[0]?.latencyMs)
  if (scenario.expect === 'none') return leaks.length === 0 ? 'ok' : 'FALSE ALARM'
  const due = deadlines(scenario, windowMs)
  if (due.start == null) {
    return leaks.length > 0 && leaks[0].suspect !== scenario.suspect
      ? 'WRONG SUSPECT'
      : 'ok (not due)'
  }
  if (first == null) return 'MISSED'
  if (first > due.start) return 'LATE'
  if (leaks[0].suspect !== scenario.suspect) return 'WRONG SUSPECT'
  const end = ends.find((e) => e.latencyMs > leaks[0].latencyMs)
  if (due.end != null) {
    if (!end || seconds(end.latencyMs) > due.end) return 'NOT ENDED'
    if (leaks.length > 1) return 'FIRED AGAIN'
  } else if (end && seconds(end.latencyMs) < scenario.phases.reduce((sum, [, s]) => sum + s, 0)) {
    // A leak that goes on until the load ends must not be called off before.
    return 'ENDED WHILE LEAKING'
  }
  return 'ok'
}

/**
 * `judge` for a run whose process may have ended on its own (`died`: V8's heap limit, the OOM
 * killer) before the run was over. A healthy process must not end; a leak must be reported
 * before, unless it ended before the leak was due there; a leak that stops but whose process
 * ended first (a 512 MiB container does not hold its 360 s of growth) is judged as one that goes
 * on.
 */
export function judgeUnderLimit(scenario, windowMs, leaks, ends, died) {
  if (!died) return judge(scenario, windowMs, leaks, ends)
  const how = `${died.signal ?? `exit ${died.code}`} at ${seconds(died.latencyMs)} s`
  if (scenario.expect === 'none') return `DIED (${how})`
  if (leaks.length === 0 || leaks[0].latencyMs > died.latencyMs) {
    const due = deadlines(scenario, windowMs).start
    return due == null || seconds(died.latencyMs) < due
      ? `ok (not due: ended, ${how})`
      : `DIED FIRST (${how})`
  }
  const stopped = scenario.stopsAtS != null && died.latencyMs > scenario.stopsAtS * 1000
  return judge(stopped ? scenario : { ...scenario, stopsAtS: null }, windowMs, leaks, ends)
}

/** The oom_kill count of a memory cgroup (v1 memory.oom_control, v2 memory.events), or null. */
function oomKills(cgroup) {
  const file = cgroup.version === 1 ? 'memory.oom_control' : 'memory.events'
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(path.join(cgroup.dir, file), 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

async function runOne(scenario, repeat, { scale, memsentry, settings, traces, full, memoryLimit }) {
  const sentries = Object.fromEntries(
    Object.entries(settings).map(([name, s]) => [name, sentryOptions(s, scenario.leak)]),
  )
  const phases = scenario.phases.map(([rate, durationS]) => ({
    rate,
    durationS: Math.max(10, Math.round(durationS * scale)),
  }))
  const server = {
    ...scenario.server,
    ...(scenario.server.retainForMs && scale !== 1
      ? { retainForMs: scenario.server.retainForMs * scale }
      : {}),
    // In a container, reference data of a quarter of the limit at most: Node gives V8's heap
    // about half of it, and a catalog that filled the heap would be no healthy service.
    ...(scenario.server.catalog && memoryLimit
      ? { catalog: { bytes: Math.min(scenario.server.catalog.bytes, memoryLimit / 4) } }
      : {}),
    sentries,
    probe: memwatchProbe,
    memsentry,
    recordHeap: Boolean(traces),
    maxMs: 1_800_000 * Math.max(1, scale),
  }
  // A leak run ends early once every setting has reported it (and, for a leak that stops, has
  // called it off and stayed quiet for a while).
  const names = Object.keys(settings)
  const settled = (r) =>
    scenario.expect === 'leak' &&
    scenario.stopsAtS == null &&
    names.every((n) => {
      const leak = r.leaks.find((l) => l.sentry === n)
      // Wait for the diagnosis too (the profiler runs a tenth of the window, 10-60 s).
      const diagnosed = r.diagnoses.some((d) => d.sentry === n)
      return leak && Date.now() - leak.at > (diagnosed ? 5000 : 90_000)
    })
  const cgroup = memoryLimit ? makeContainerCgroup(memoryLimit) : null
  let result, kills
  try {
    result = await runScenario({
      server,
      phases,
      stopWhen: full ? null : settled,
      tailMs: 2000,
      cgroup,
    })
    kills = cgroup ? oomKills(cgroup) : null
  } finally {
    await cgroup?.remove()
  }
  const label = repeat > 0 ? `${scenario.name}#${repeat + 1}` : scenario.name
  if (traces && result.history) writeTrace(traces, label, result, Object.values(settings))
  const mwLeaks = result.probe.filter((l) => l.type === 'probe:memwatch-leak')
  const mwFirst = seconds(mwLeaks[0] ? mwLeaks[0].at - result.loadStartAt : null)
  const info = result.probe.find((l) => l.type === 'probe:memwatch-info')
  const stopsAtS = scenario.stopsAtS != null ? scenario.stopsAtS * scale : null
  const sc = { ...scenario, stopsAtS, phases: phases.map((p) => [p.rate, p.durationS]) }
  const perSetting = Object.fromEntries(
    names.map((n) => {
      const leaks = result.leaks.filter((l) => l.sentry === n)
      const ends = result.leakEnds.filter((l) => l.sentry === n)
      const diagnosis = result.diagnoses.find((d) => d.sentry === n)
      return [
        n,
        {
          first: seconds(leaks[0]?.latencyMs),
          events: leaks.length,
          ended: seconds(ends[0]?.latencyMs),
          suspect: leaks[0]?.suspect ?? null,
          child: leaks[0]?.child ?? null,
          slopeMiBPerMin: leaks[0] ? (leaks[0].slopeBytesPerSec * 60) / 1048576 : null,
          msToLimit: leaks[0]?.msToLimit ?? null,
          diagnosis: diagnosis
            ? {
                at: seconds(diagnosis.latencyMs),
                top: diagnosis.top
                  ? `${diagnosis.top.functionName || '(anonymous)'} ` +
                    `(${path.basename(diagnosis.top.url)}:${diagnosis.top.line}) ` +
                    `${Math.round(diagnosis.top.share * 100)}%`
                  : diagnosis.suspect,
              }
            : null,
          verdict: judgeUnderLimit(sc, settings[n].windowMs, leaks, ends, result.died),
          due: deadlines(sc, settings[n].windowMs),
        },
      ]
    }),
  )
  return {
    name: label,
    scenario: scenario.name,
    what: scenario.what,
    expect: scenario.expect,
    expectSuspect: scenario.suspect ?? null,
    phases: phases.map((p, i) => ({ ...p, achievedRps: result.phases[i]?.rps ?? null })),
    ranS: seconds(result.endedAt - result.loadStartAt),
    settings: perSetting,
    memwatch: { source: info?.source ?? null, first: mwFirst, events: mwLeaks.length },
    events: result.events.map(({ receivedAt, ...e }) => e),
    memoryLimit: memoryLimit ?? null,
    died: result.died ? { ...result.died, s: seconds(result.died.latencyMs) } : null,
    oomKills: kills,
    errors: result.errors,
    serverExit: result.serverExit,
    serverStderr: result.serverStderr.slice(-2000),
    loadStderr: result.loadStderr.slice(-2000),
  }
}

function pad(cells, widths) {
  return `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`
}

export function table(results, settings) {
  const limited = results.some((r) => r.memoryLimit != null)
  const head = ['scenario', 'setting', 'expected', 'first leak (s)', 'events', 'ended (s)']
  head.push('suspect', 'verdict', 'diagnosis (s): top site', 'memwatch first (s) / events')
  if (limited) head.push('msToLimit at the first (s)', 'process ended (s)')
  const rows = []
  for (const r of results) {
    for (const [n, s] of Object.entries(r.settings)) {
      const w = settings[n].windowMs / 1000
      rows.push([
        r.name,
        settings[n].nothingSet ? `${n}: nothing set` : `${w} s @ ${settings[n].intervalMs} ms`,
        r.expect !== 'leak'
          ? 'none'
          : s.due.start == null
            ? `${r.expectSuspect} if any (too slow to be due)`
            : `leak ${r.expectSuspect} by ${s.due.start}${s.due.end != null ? `, end by ${s.due.end}` : ''}`,
        s.first ?? '-',
        s.events,
        s.ended ?? '-',
        s.suspect === 'child' && s.child
          ? `child ${s.child.comm} ${s.child.pid}`
          : (s.suspect ?? '-'),
        s.verdict,
        s.diagnosis ? `${s.diagnosis.at}: ${s.diagnosis.top}` : '-',
        `${r.memwatch.first ?? '-'} / ${r.memwatch.events}`,
        ...(limited
          ? [
              s.msToLimit == null ? '-' : seconds(s.msToLimit),
              r.died ? `${r.died.s} (${r.died.signal ?? `exit ${r.died.code}`})` : '-',
            ]
          : []),
      ])
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)))
  const lines = [
    'memsentry: the defaults but intervalMs and leak.windowMs (heap: true; treeRss for child-leak);' +
      ' def: nothing set',
    "memwatch: memwatch-next's rule on the same process (eval/memwatch-rule.mjs)",
    'times: seconds after the load started; events: leak events in the run',
    ...(limited
      ? [
          `memory limit: ${results.find((r) => r.memoryLimit != null).memoryLimit / 1048576} MiB, ` +
            'each server in a memory cgroup of its own (msToLimit: V8 heap limit or cgroup, the sooner)',
        ]
      : []),
    '',
    pad(head, widths),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...rows.map((row) => pad(row, widths)),
  ]
  return lines.join('\n')
}

/** Runs `jobs` (functions returning promises) at most `limit` at a time, in order of start. */
async function pool(jobs, limit) {
  const results = new Array(jobs.length)
  let next = 0
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++
      results[i] = await jobs[i]()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker))
  return results
}

async function main() {
  const opts = parse()
  const only = opts.only ? new Set(opts.only.split(',')) : null
  const scenarios = SCENARIOS.filter((s) => !only || only.has(s.name))
  if (opts['heap-rates'] != null) {
    // Alone unless --only names others too.
    if (!only) scenarios.length = 0
    scenarios.push(...heapRateScenarios(opts['heap-rates']))
  }
  if (scenarios.length === 0) throw new Error(`no scenario matches --only ${opts.only}`)
  const wanted = opts.settings?.split(',') ?? (opts.quick ? ['w60'] : DEFAULT_SETTINGS)
  const settings = Object.fromEntries(wanted.map((n) => [n, SETTINGS[n]]))
  if (wanted.some((n) => !SETTINGS[n])) throw new Error(`unknown setting in ${opts.settings}`)
  const repeats = Number(opts.repeats ?? (opts.quick ? 1 : 3))
  // A 10 minute window is due after the scenarios' phases end: 'def' runs them twice as long.
  const scale = Number(opts.scale ?? (opts.quick ? 0.5 : wanted.includes('def') ? 2 : 1))
  if (!(scale > 0)) throw new Error(`--scale wants a positive factor, not ${opts.scale}`)
  const concurrency = Number(opts.concurrency ?? 6)
  const memoryLimit =
    opts['memory-limit'] == null ? null : parseSize(opts['memory-limit'], '--memory-limit').bytes
  if (memoryLimit != null && !(memoryLimit > 0)) {
    throw new RangeError(
      `--memory-limit wants a size in bytes, such as 1GiB, not ${opts['memory-limit']}`,
    )
  }
  const memwatch = memwatchAddon({ log: (line) => console.log(`memwatch: ${line}`) })
  if (memwatch.dir) process.env.MEMSENTRY_MEMWATCH_DIR = memwatch.dir
  console.log(
    memwatch.dir
      ? `memwatch-next's rule on ${memwatch.dir}'s 'stats'`
      : `memwatch-next's rule on perf_hooks GC entries: ${memwatch.why}`,
  )
  const memsentryDir = snapshotPackage()
  const memsentry = path.join(memsentryDir, 'index.mjs')
  const started = Date.now()
  const jobs = []
  for (const scenario of scenarios) {
    const n = scenario.expect === 'none' || scenario.repeated ? repeats : 1
    for (let i = 0; i < n; i++) {
      jobs.push(async () => {
        const r = await runOne(scenario, n > 1 ? i : 0, {
          scale,
          memsentry,
          settings,
          traces: opts.traces,
          full: opts.full,
          memoryLimit,
        })
        const brief = Object.entries(r.settings)
          .map(([k, s]) => `${k} ${s.first ?? '-'} s x${s.events} ${s.suspect ?? ''} ${s.verdict}`)
          .join('; ')
        console.error(
          `${r.name}: ${brief}; memwatch ${r.memwatch.first ?? '-'} s x${r.memwatch.events}`,
        )
        return r
      })
    }
  }
  console.error(`${jobs.length} runs, ${concurrency} at a time`)
  let results
  try {
    results = await pool(jobs, concurrency)
  } finally {
    rmSync(memsentryDir, { recursive: true, force: true })
  }
  console.log(table(results, settings))
  const verdicts = results.flatMap((r) => Object.values(r.settings).map((s) => s.verdict))
  const failed = verdicts.filter((v) => !v.startsWith('ok')).length
  console.log(
    `\n${verdicts.length - failed} passed, ${failed} failed` +
      ` (memsentry verdicts; ${Math.round((Date.now() - started) / 1000)} s)`,
  )
  if (opts.json) {
    const doc = { quick: opts.quick, scale, settings, memoryLimit, node: process.version, results }
    writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`)
    console.log(`results written to ${opts.json}`)
  }
  process.exitCode = failed > 0 ? 1 : 0
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main()
}
