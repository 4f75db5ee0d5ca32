// Replays recorded runs through the leak detector at many windows and scores them: how many
// healthy recordings raise a 'leak', how many leaks come in time with the right suspect, and
// whether a leak that stops is called off in time. With two replay binaries it compares them on
// the same recordings and lists every recording whose events moved, so a change to the rule is
// judged on every recording at every window in seconds, not on the two settings of one eval.
//
//   node eval/sweep.mjs                                  # this tree's detector, every recording
//   node eval/sweep.mjs --base /tmp/leak_replay-old      # the same, against an older binary
//   node eval/sweep.mjs --bin /tmp/leak_replay-new ...   # a built binary instead of this tree
//   node eval/sweep.mjs --windows 60,300 DIR/*.csv       # some windows, some recordings
//   node eval/sweep.mjs -v                               # and every wrong verdict
//   node eval/sweep.mjs --by-scenario                    # and the wrong ones counted by scenario
//   node eval/sweep.mjs --interval 1000                  # one sampling period at every window
//   node eval/sweep.mjs --limit 536870912 --heap-limit 271581184
//                                                        # as if in a 512 MiB container (V8's heap
//                                                        # limit 259 MiB): the look-out counts to them
//   node eval/sweep.mjs --limits-over-peak 1.25          # each run as if both limits were 1.25 x
//                                                        # its own peaks (with a limit flag, both
//                                                        # binaries must know it)
//
// Recordings: `npm run eval:leak -- --traces DIR` writes them as CSV (eval/recordings keeps them
// gzipped; both are read); by default the fixtures in tests/fixtures/leak-traces and
// eval/recordings, a recording kept in both counted once; each judged as the scenario its header
// names (`recordedScenario` in eval/leak.mjs: the eval's scenarios, heap-rate runs
// (`heap-<bytes>B`) as well as soaks). Verdicts and deadlines are the eval's own
// (`judge` and `deadlines` in eval/leak.mjs): a leak by 1.0 x window + 30 s (2 x window for the
// slow ones) and not called off while it goes on, a leak that stops ends by 360 s + 1.5 x window,
// judged up to 300 s windows (to a longer window it is no leak); a window under a minute counts as
// a minute (the detector analyses a minute then). A leak too slow to be due at a window counts
// there only if it is reported with the wrong suspect. Whether a recording counts depends on its
// length and its rows' period only, so two binaries are scored on the same set: one shorter than a
// deadline (a leak run recorded without --full ends once both settings have reported) is left out,
// and so is one whose rows come slower than the setting samples (a run with only the defaults
// records at 1 s), which either binary's replay skips.

import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { gunzipSync } from 'node:zlib'

import { deadlines, judge, recordedScenario } from './leak.mjs'

const ROOT = path.resolve(import.meta.dirname, '..')
const WINDOWS = [30, 45, 60, 75, 90, 105, 120, 150, 180, 210, 240, 270, 300, 360, 420, 480, 600]
const DEFAULT_SOURCES = ['tests/fixtures/leak-traces', 'eval/recordings']

/** Builds this tree's replay tool and returns its path. */
function buildReplay() {
  const target = path.join(ROOT, 'target', 'replay')
  execFileSync(
    'cargo',
    [
      'build',
      '--release',
      '--quiet',
      '--no-default-features',
      '--features',
      'replay',
      '--example',
      'leak_replay',
    ],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, CARGO_TARGET_DIR: target } },
  )
  return path.join(target, 'release', 'examples', 'leak_replay')
}

const runName = (file) => path.basename(file).replace(/\.csv(\.gz)?$/, '')

/**
 * The recordings in a file or a folder, with one level of subfolders (one per eval run): [file,
 * name], a run in a subfolder named after both (`lru-slow#2@2026-12-02-node24`).
 */
function listRecordings(p) {
  try {
    if (!statSync(p).isDirectory()) return [[p, runName(p)]]
  } catch {
    return []
  }
  const isTrace = (f) => /\.csv(\.gz)?$/.test(f)
  return readdirSync(p, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => {
      const full = path.join(p, e.name)
      if (!e.isDirectory()) return isTrace(e.name) ? [[full, runName(full)]] : []
      return readdirSync(full)
        .filter(isTrace)
        .sort()
        .map((f) => [path.join(full, f), `${runName(f)}@${e.name}`])
    })
}

/**
 * Every recording under the sources (absolute paths; with `strict`, a missing one is an error),
 * unpacked into `dir`, each content once: [{ file, name, scenario, endS }].
 */
function recordings(sources, dir, strict) {
  const seen = new Set()
  const contents = new Set()
  return sources
    .flatMap((s) => {
      const found = listRecordings(s)
      if (strict && found.length === 0) throw new Error(`no recording at ${s}`)
      return found
    })
    .flatMap(([file, base]) => {
      const raw = readFileSync(file)
      const text = file.endsWith('.gz') ? gunzipSync(raw).toString() : raw.toString()
      const hash = createHash('sha256').update(text).digest('hex')
      if (contents.has(hash)) return []
      contents.add(hash)
      const head = text.match(/^# (\S+) load_start_ms=(\d+)/m)
      const scenario = head && recordedScenario(head[1])
      if (!scenario) {
        console.error(`skipped (no known scenario in its header): ${file}`)
        return []
      }
      // The replay tool names a run by its file, and replays one whose name starts with
      // "child" on the tree's RSS.
      let name = base
      for (let i = 2; seen.has(name); i++) name = `${base}~${i}`
      seen.add(name)
      const out = path.join(dir, `${name}.csv`)
      writeFileSync(out, text)
      const rows = text.split('\n').filter((l) => /^\d/.test(l))
      const lastMs = Number(rows.at(-1)?.split(',')[0] ?? 0)
      return [{ file: out, name, scenario, endS: (lastMs - Number(head[2])) / 1000 }]
    })
}

/** The replay tool's events for every recording at one window: name -> [{ kind, t, suspect }]. */
function replay(bin, recs, windowS) {
  const interval = INTERVAL ?? (windowS >= 300 ? 1000 : 250)
  const out = execFileSync(
    bin,
    [
      '--interval',
      String(interval),
      '--window',
      String(windowS * 1000),
      ...LIMIT_ARGS,
      ...recs.map((r) => r.file),
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  )
  const events = new Map()
  for (const line of out.split('\n')) {
    const m = line.match(/^(\S+)\s+w\d+\s*(.*)$/)
    if (!m) continue
    // Rows recorded slower than this interval (a run with only the defaults, at 1 s): not judged.
    if (m[2].startsWith('skipped')) {
      events.set(m[1], null)
      continue
    }
    const list = [...m[2].matchAll(/([SE])(\d+)(?:\((\w+),[^)]*\))?/g)].map((e) => ({
      kind: e[1],
      t: Number(e[2]),
      suspect: e[3],
    }))
    events.set(m[1], list)
  }
  return events
}

/**
 * Whether one recording's events at a window are right, by the eval's own verdicts; null where
 * it cannot be judged: the scenario is not due there, or the recording ends before its deadline.
 */
function verdict(rec, events, windowS) {
  const s = rec.scenario
  const due = deadlines(s, windowS * 1000)
  if (s.expect !== 'none' && due.start != null && rec.endS < (due.end ?? due.start)) return null
  const of = (kind) =>
    events
      .filter((e) => e.kind === kind)
      .map((e) => ({ latencyMs: e.t * 1000, suspect: e.suspect }))
  const v = judge(s, windowS * 1000, of('S'), of('E'))
  return v === 'ok (not due)' ? null : v === 'ok'
}

/**
 * Per window: healthy recordings judged and firing, leaks judged and right, and per scenario the
 * recordings judged and those wrong ({ judged, wrong } by scenario name).
 */
function score(recs, byWindow, skipped) {
  return WINDOWS_USED.map((w) => {
    const ev = byWindow.get(w)
    const count = { healthy: 0, firing: 0, leaks: 0, right: 0, scenarios: new Map() }
    for (const r of recs) {
      if (skipped(r, w)) continue
      const v = verdict(r, ev.get(r.name) ?? [], w)
      if (v == null) continue
      if (r.scenario.expect === 'none') {
        count.healthy++
        if (!v) count.firing++
      } else {
        count.leaks++
        if (v) count.right++
      }
      const sc = count.scenarios.get(r.scenario.name) ?? { judged: 0, wrong: 0 }
      sc.judged++
      if (!v) sc.wrong++
      count.scenarios.set(r.scenario.name, sc)
    }
    return count
  })
}

/** One table of wrong verdicts per scenario (rows with any) and window: "wrong/judged". */
function printByScenario({ name, counts }) {
  const names = [...new Set(counts.flatMap((c) => [...c.scenarios.keys()]))].sort()
  console.log(`${name}: wrong verdicts by scenario (wrong/judged)`)
  console.log(['scenario', ...WINDOWS_USED.map(String)].join(' | '))
  for (const n of names) {
    const cells = counts.map((c) => c.scenarios.get(n))
    if (!cells.some((c) => c?.wrong > 0)) continue
    console.log([n, ...cells.map((c) => (c ? `${c.wrong}/${c.judged}` : '-'))].join(' | '))
  }
}

const fmt = (events) =>
  (events ?? []).map((e) => `${e.kind}${e.t}${e.suspect ? `(${e.suspect})` : ''}`).join(' ') || '-'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    bin: { type: 'string' },
    base: { type: 'string' },
    windows: { type: 'string' },
    interval: { type: 'string' },
    verbose: { type: 'boolean', short: 'v', default: false },
    'by-scenario': { type: 'boolean', default: false },
    limit: { type: 'string' },
    'heap-limit': { type: 'string' },
    'limits-over-peak': { type: 'string' },
  },
})
// The limits the replay counts to, passed on as they are.
const LIMIT_ARGS = ['limit', 'heap-limit', 'limits-over-peak'].flatMap((name) => {
  const v = values[name]
  if (v == null) return []
  if (!(Number(v) > 0)) throw new RangeError(`--${name} must be a positive number, got '${v}'`)
  return [`--${name}`, v]
})
const WINDOWS_USED = values.windows ? values.windows.split(',').map(Number) : WINDOWS
if (WINDOWS_USED.some((w) => !Number.isInteger(w) || w < 1)) {
  throw new RangeError(`--windows must be seconds such as 60,300, got '${values.windows}'`)
}
// The eval's recordings are sampled every 250 ms (a run with only the defaults, every 1 s); a slower
// period replays every n-th row.
const INTERVAL = values.interval == null ? null : Number(values.interval)
if (INTERVAL != null && !(Number.isInteger(INTERVAL) && INTERVAL >= 250 && INTERVAL % 250 === 0)) {
  throw new RangeError(`--interval must be a multiple of 250 ms, got '${values.interval}'`)
}
const dir = mkdtempSync(path.join(tmpdir(), 'memsentry-sweep-'))
try {
  // Paths given are the user's, from where they stand; the defaults are the repo's.
  const sources =
    positionals.length > 0
      ? positionals.map((p) => path.resolve(p))
      : DEFAULT_SOURCES.map((p) => path.resolve(ROOT, p))
  const recs = recordings(sources, dir, positionals.length > 0)
  const bin = values.bin ?? buildReplay()
  const runs = [['this', bin], ...(values.base ? [['base', values.base]] : [])]
  const replays = runs.map(([name, b]) => ({
    name,
    byWindow: new Map(WINDOWS_USED.map((w) => [w, replay(b, recs, w)])),
  }))
  // A recording that either binary could not replay at a window counts for neither.
  const skipped = (r, w) => replays.some(({ byWindow }) => byWindow.get(w).get(r.name) === null)
  const results = replays.map((x) => ({ ...x, counts: score(recs, x.byWindow, skipped) }))
  const healthy = recs.filter((r) => r.scenario.expect === 'none').length
  console.log(`${recs.length} recordings (${healthy} healthy, ${recs.length - healthy} leaks)`)
  const cols = results.map((r) => `${r.name}: healthy firing, leaks right`)
  console.log(['window (s)', ...cols].join(' | '))
  WINDOWS_USED.forEach((w, i) => {
    const cells = results.map(({ counts }) => {
      const c = counts[i]
      return `${c.firing}/${c.healthy}, ${c.right}/${c.leaks}`
    })
    console.log([String(w), ...cells].join(' | '))
  })
  if (values['by-scenario']) results.forEach(printByScenario)
  // What moved between the two binaries, and with --verbose every other wrong verdict.
  for (const w of WINDOWS_USED) {
    for (const r of recs) {
      if (skipped(r, w)) continue
      const now = results[0].byWindow.get(w).get(r.name)
      const before = results[1]?.byWindow.get(w).get(r.name)
      const moved = results[1] && fmt(now) !== fmt(before)
      const wrong = values.verbose && verdict(r, now ?? [], w) === false
      if (moved) console.log(`w${w} ${r.name}: ${fmt(before)} -> ${fmt(now)}`)
      else if (wrong) console.log(`w${w} ${r.name}: ${fmt(now)} (wrong)`)
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
