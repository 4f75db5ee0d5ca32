// Child process for koa.spec.mjs: which 'gc' entry lists make the Koa logger read the heap.
// It wraps PerformanceObserver before integrations/koa.js takes it, so that each list the logger's
// observer gets is recorded with its entry kinds and whether afterGc() ran for it, then allocates
// (garbage, and objects kept long enough to be promoted) until V8 has delivered lists with neither a
// scavenge nor a full GC in them (incremental marking, weak callbacks): 20 s at most.
// argv[2]: the package root. Prints { lists: [{ kinds, emptying, read }] } as JSON, `emptying`
// when the list holds a scavenge (MINOR) or a full GC (MAJOR).
const root = process.argv[2]
const { MemorySentry } = require(`${root}/index.js`)
const perfHooks = require('node:perf_hooks')

const { NODE_PERFORMANCE_GC_MINOR: MINOR, NODE_PERFORMANCE_GC_MAJOR: MAJOR } = perfHooks.constants
const lists = []
let neither = 0 // lists with neither a scavenge nor a full GC
let current = null
perfHooks.PerformanceObserver = class extends perfHooks.PerformanceObserver {
  constructor(callback) {
    super((list, observer) => {
      const kinds = list.getEntries().map((e) => e.detail?.kind)
      const emptying = kinds.some((k) => k === MINOR || k === MAJOR)
      if (!emptying) neither++
      current = { kinds, emptying, read: false }
      lists.push(current)
      try {
        callback(list, observer)
      } finally {
        current = null
      }
    })
  }
}
const { BatchLogger } = require(`${root}/integrations/koa.js`)
const afterGc = BatchLogger.prototype.afterGc
BatchLogger.prototype.afterGc = function () {
  if (current) current.read = true
  return afterGc.call(this)
}

const sentry = new MemorySentry({ intervalMs: 1000, leak: false })
const logger = new BatchLogger({ sentry, every: 1e9, log: () => {} })
logger.begin(null) // the first request starts the GC observer
let kept = []
let garbage = []
const started = Date.now()
const timer = setInterval(() => {
  for (let i = 0; i < 20000; i++) {
    garbage.push({ i, s: `y${i}` })
    if (i % 10 === 0) kept.push({ i })
  }
  if (garbage.length > 300000) garbage = []
  if (kept.length > 400000) kept = []
  if ((neither >= 3 && lists.length >= 20) || Date.now() - started > 20000) {
    clearInterval(timer)
    logger.close()
    sentry.close()
    console.log(JSON.stringify({ lists }))
  }
}, 1)
