// memwatch-next's leak rule, as a probe loaded into the eval's server (the server imports it and
// calls start()). The rule (lloyd/node-memwatch, memwatch-next): after each full GC (mark-sweep-
// compact), compare the V8 heap's used size with the previous full GC's; five increases in a row
// emit 'leak' and reset the count. The first full GC compares against 0, as the original does.
//
// @airbnb/node-memwatch (the maintained fork) dropped the rule and only emits 'stats' after each
// mark-sweep-compact, with used_heap_size read right after the GC; the rule is applied to those.
// eval/leak.mjs builds it for the running Node (eval/memwatch-addon.mjs) and names its folder in
// MEMSENTRY_MEMWATCH_DIR. If the addon cannot be loaded, the same rule runs on perf_hooks 'gc'
// entries of kind major (NODE_PERFORMANCE_GC_MAJOR) with v8.getHeapStatistics() read in the
// observer callback, a little after the GC.
//
// Prints JSON lines through `out`:
//   { type: 'probe:memwatch-info', source: '@airbnb/node-memwatch' | 'perf_hooks', error? }
//   { type: 'probe:memwatch-gc', at, used }                    each full GC
//   { type: 'probe:memwatch-leak', at, growth, start, reason } each time the rule fires
import { createRequire } from 'node:module'
import { PerformanceObserver, constants } from 'node:perf_hooks'
import v8 from 'node:v8'

const require = createRequire(import.meta.url)

/** The rule's state machine: feed it the heap used after each full GC. */
export function memwatchRule(onLeak) {
  let lastBase = 0
  let consecutive = 0
  let startAt = 0
  let startBase = 0
  return (at, used) => {
    if (lastBase < used) {
      if (consecutive === 0) {
        startAt = at
        startBase = used
      }
      consecutive++
      if (consecutive >= 5) {
        consecutive = 0
        const seconds = Math.max((at - startAt) / 1000, 1)
        const growth = used - startBase
        const perHour = (growth / seconds) * 3600
        onLeak({
          at,
          growth,
          start: startAt,
          reason:
            `heap growth over 5 consecutive GCs (${Math.round(seconds)}s) - ` +
            `${(perHour / 1048576).toFixed(2)} mb/hr`,
        })
      }
    } else {
      consecutive = 0
    }
    lastBase = used
  }
}

export function start({ out }) {
  const feed = memwatchRule((leak) => out({ type: 'probe:memwatch-leak', ...leak }))
  const onFullGc = (used) => {
    const at = Date.now()
    out({ type: 'probe:memwatch-gc', at, used })
    feed(at, used)
  }
  let memwatch
  try {
    memwatch = require(process.env.MEMSENTRY_MEMWATCH_DIR || '@airbnb/node-memwatch')
  } catch (err) {
    out({ type: 'probe:memwatch-info', source: 'perf_hooks', error: err.message })
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
          onFullGc(v8.getHeapStatistics().used_heap_size)
        }
      }
    })
    observer.observe({ entryTypes: ['gc'] })
    return
  }
  out({ type: 'probe:memwatch-info', source: '@airbnb/node-memwatch' })
  memwatch.on('stats', (stats) => onFullGc(stats.used_heap_size))
}
