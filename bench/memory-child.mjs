// Run by bench/run.mjs as `node --expose-gc bench/memory-child.mjs <historySize> <intervalMs>
// [control]`: the addon's own resident memory with a full history, in a fresh process. Prints one
// JSON line. With `control`, the same process without a sentry: the same polling for as long,
// ticks counted by the clock. Node's own RSS drifts up by ~1.5 MiB over a minute of this, which
// is not the addon's: bench/run.mjs subtracts the control's growth.

import { setTimeout as sleep } from 'node:timers/promises'

import { MemorySentry } from '../index.js'

const historySize = Number(process.argv[2] ?? 3600)
const intervalMs = Number(process.argv[3] ?? 10)
const control = process.argv[4] === 'control'

function settledRss() {
  global.gc()
  global.gc()
  return { rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed }
}

// The addon is loaded (its code is mapped) before the first measurement: what is measured is what
// a sentry and its history add.
const before = settledRss()
const started = Date.now()
const sentry = control
  ? {
      stats: () => ({ ticks: Math.floor((Date.now() - started) / intervalMs) }),
      history: () => [],
      close: async () => {},
    }
  : new MemorySentry({ historySize, intervalMs, children: 'none' })

// stats() is cheap; history() would build historySize JS objects on every poll.
// A first measurement with a nearly empty history splits the total into the sentry's fixed cost
// (thread, runtime, open files) and what the history adds per sample.
const EARLY_TICKS = 10
while (sentry.stats().ticks < EARLY_TICKS) await sleep(5)
const early = { ...settledRss(), ticks: sentry.stats().ticks }
while (sentry.stats().ticks < historySize) await sleep(100)
const filledMs = Date.now() - started
const after = settledRss()
// Checked after the measurement: building the array allocates on the JS heap.
const historyLength = sentry.history().length
await sentry.close()

process.stdout.write(
  `${JSON.stringify({
    historySize,
    intervalMs,
    control,
    historyLength,
    filledMs,
    rssBeforeBytes: before.rss,
    rssAfterBytes: after.rss,
    rssDeltaBytes: after.rss - before.rss,
    rssEarlyBytes: early.rss,
    earlyTicks: early.ticks,
    // What each further sample of history costs, from the early and the full measurement.
    historyBytesPerSample:
      (after.rss - early.rss) / (historySize - Math.min(early.ticks, historySize)),
    heapUsedDeltaBytes: after.heapUsed - before.heapUsed,
  })}\n`,
)
