// The main-thread stall of leak diagnosis on a big heap, for bench/run.mjs, in a process of its
// own: node --max-old-space-size=2048 bench/diagnosis-child.mjs <with|without> [MiB=500]
//
// Builds a heap of MiB of small objects (arrays of 1000 { k, i, s } from 64 functions at varied
// stack depths). 'with': leak diagnosis's profiler runs (default interval) while the heap is
// built, so every byte of it is in the profile (the worst case: a leak that grew by the whole
// heap during one run); then the run is finished as after its duration and the main thread's time
// to read and reduce the profile is measured, and of it the full GC V8 runs before every read
// (a PerformanceObserver 'gc' entry). 'without': the same heap, no profiler (RSS for comparison).
// Prints one JSON line.
import { createRequire } from 'node:module'
import { PerformanceObserver, performance } from 'node:perf_hooks'

const require = createRequire(import.meta.url)
const { joinOrStartRun, MIN_INTERVAL } = require('../lib/diagnosis.js')

const [mode = 'with', mib = '500'] = process.argv.slice(2)
const target = Number(mib) * 1024 * 1024

const gcs = []
new PerformanceObserver((list) => gcs.push(...list.getEntries())).observe({ entryTypes: ['gc'] })

let result = null
let run = null
if (mode === 'with') {
  const subscriber = {
    done: (r) => (result = r),
    fail: (err) => {
      console.error(err.message)
      process.exit(1)
    },
  }
  ;({ run } = await joinOrStartRun(
    { samplingInterval: MIN_INTERVAL, durationMs: 600_000 },
    subscriber,
  ))
}

globalThis.keep = []
const fns = Array.from(
  { length: 64 },
  (_, k) =>
    new Function(
      'keep',
      'depth',
      'next',
      `if (depth > 0) return next(keep, depth - 1, next)
       const a = []
       for (let i = 0; i < 1000; i++) a.push({ k: ${k}, i, s: 'v' + i })
       keep.push(a)`,
    ),
)
let n = 0
while (process.memoryUsage().heapUsed < target) {
  for (let j = 0; j < 100; j++, n++) fns[n % 64](globalThis.keep, n % 7, fns[(n * 7) % 64])
}
await new Promise((resolve) => setTimeout(resolve, 200))
const before = process.memoryUsage()

let stall = null
if (run) {
  const t0 = performance.now()
  await run.finish()
  const totalMs = performance.now() - t0
  await new Promise((resolve) => setTimeout(resolve, 100)) // the 'gc' entries come async
  const gcMs = gcs
    .filter((e) => e.startTime >= t0 && e.startTime <= t0 + totalMs)
    .reduce((sum, e) => sum + e.duration, 0)
  stall = { totalMs, ...run.lastStall, gcMs }
}
console.log(
  JSON.stringify({
    mode,
    heapUsed: before.heapUsed,
    rss: before.rss,
    samplingInterval: mode === 'with' ? MIN_INTERVAL : null,
    samples: result?.sampleCount ?? null,
    sampledBytes: result?.sampledBytes ?? null,
    sites: result?.sites.length ?? null,
    stall,
  }),
)
