// The Koa app of the A/B benchmark (bench/koa-ab.mjs), forked with an IPC channel:
//
//   node bench/koa-ab/server.mjs A   the app alone: memsentry is never loaded
//   node bench/koa-ab/server.mjs B   the same app + MemorySentry({ intervalMs: 100 }) (defaults
//                                    otherwise: children 'tree', leak detection on) + the batch
//                                    logger memoryLogger({ every: 1000 }) logging to a no-op
//
// and, to tell where B's cost comes from (`--variants` of the bench):
//
//   S   the sentry of B alone, no logger
//   L   the logger of B alone: over a stopped sentry (no sampler thread)
//   N   B with the logger's route counting off (`routes: false`: no per-route counts, no GC
//       observer for route attribution)
//   P   B while leak diagnosis profiles: V8's sampling heap profiler runs all along, as it does
//       for a while after a confirmed leak (interval: MEMSENTRY_BENCH_SAMPLING_INTERVAL bytes,
//       default the smallest leak diagnosis picks)
//
// Listens on 127.0.0.1 (a free port) and sends { type: 'ready', port, pid }. On { type: 'mark' }
// it answers { type: 'mark', served, batches, ticks, samplerCpuNs } (the counts so far; the last
// two null without a sentry); on { type: 'report' } the same with type 'report', then exits.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

const require = createRequire(import.meta.url)
const Koa = require('koa')
const Router = require('@koa/router')

const variant = process.argv[2]
if (!['A', 'B', 'S', 'L', 'N', 'P'].includes(variant)) {
  console.error(`usage: node bench/koa-ab/server.mjs A|B|S|L|N|P (got ${variant})`)
  process.exit(2)
}

// A small, fixed data set: what a handler typically turns into JSON.
const users = Array.from({ length: 100 }, (_, i) => ({
  id: i,
  name: `user ${i}`,
  email: `user${i}@example.com`,
  roles: i % 10 === 0 ? ['admin', 'user'] : ['user'],
  createdAt: new Date(Date.UTC(2024, 0, 1 + i)).toISOString(),
}))
const orders = Array.from({ length: 50 }, (_, i) => ({
  id: 1000 + i,
  userId: i % users.length,
  total: Math.round(((i * 37) % 500) * 100 + 99) / 100,
  items: [{ sku: `SKU-${i}`, qty: 1 + (i % 3) }],
}))

const app = new Koa()
let served = 0
let batches = 0
let sentry = null

if (variant !== 'A') {
  const { MemorySentry } = require('../../index.js')
  const { memoryLogger } = require('../../integrations/koa.js')
  sentry = new MemorySentry({ intervalMs: 100 })
  if (variant === 'L') sentry.stop()
  if (variant !== 'S') {
    const routes = variant !== 'N'
    app.use(memoryLogger({ sentry, every: 1000, routes, log: () => batches++ }))
  }
  if (variant === 'P') {
    const { joinOrStartRun, MIN_INTERVAL } = require('../../lib/diagnosis.js')
    const samplingInterval = Number(process.env.MEMSENTRY_BENCH_SAMPLING_INTERVAL ?? MIN_INTERVAL)
    // Never read: the round measures the sampling, not the one read at a run's end.
    const fail = (err) => {
      console.error(err.message)
      process.exit(1)
    }
    await joinOrStartRun({ samplingInterval, durationMs: 3_600_000 }, { done() {}, fail }).catch(
      fail,
    )
  }
}

// Ordinary middleware of a real app: a response-time header and a request counter (in both
// variants, so they differ only by memsentry).
app.use(async (ctx, next) => {
  const start = performance.now()
  await next()
  ctx.set('x-response-time', `${(performance.now() - start).toFixed(2)}ms`)
  served++
})

const router = new Router({ prefix: '/api' })
router.get('/health', (ctx) => {
  ctx.body = { ok: true }
})
router.get('/users/:id', (ctx) => {
  const user = users[Number(ctx.params.id)]
  if (user === undefined) ctx.throw(404, 'no such user')
  ctx.body = user
})
router.get('/orders', (ctx) => {
  const limit = Math.min(Number(ctx.query.limit ?? 10) || 10, orders.length)
  ctx.body = { total: orders.length, items: orders.slice(0, limit) }
})
app.use(router.routes()).use(router.allowedMethods())

const server = app.listen(0, '127.0.0.1', () => {
  process.send({ type: 'ready', port: server.address().port, pid: process.pid })
})

function counts(type) {
  const stats = sentry?.stats()
  return { type, served, batches, ticks: stats?.ticks ?? null, samplerCpuNs: stats?.cpuNs ?? null }
}
process.on('message', (msg) => {
  if (msg?.type === 'mark') process.send(counts('mark'))
  if (msg?.type === 'report') process.send(counts('report'), () => process.exit(0))
})
// The bench process owns this one: when its IPC channel closes, stop.
process.on('disconnect', () => process.exit(0))
