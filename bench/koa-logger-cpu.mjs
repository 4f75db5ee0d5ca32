// The Koa logger's CPU per request, in process: `node bench/koa-logger-cpu.mjs [rounds]`.
//
// The A/B throughput benchmark (bench/koa-ab.mjs) measures the whole budget over HTTP, but on a
// shared 2-core machine its rounds spread by 10-30%, far more than the ~1% it judges. This one
// weighs only what memoryLogger adds per request: the middleware chain of the A/B server (a
// response-time middleware and @koa/router with its routes) is called with Koa contexts built in
// process, no sockets, alone and behind memoryLogger (routes on, and off), rounds interleaved,
// CPU time from process.cpuUsage(). Reported: the chain's CPU per request, and per variant the
// median of the per-round differences with their quartiles. Divide by the server's CPU per
// request of bench:koa (about 17 us on an idle machine) for the share of the budget.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

const require = createRequire(import.meta.url)
const Koa = require('koa')
const Router = require('@koa/router')
const compose = require('koa-compose')
const { MemorySentry } = require('../index.js')
const { memoryLogger } = require('../integrations/koa.js')

const ROUNDS = Number(process.argv[2] ?? 20)
const REQUESTS = 200_000

const sentry = new MemorySentry({ intervalMs: 100 })
const app = new Koa()
const router = new Router({ prefix: '/api' })
router.get('/health', (ctx) => {
  ctx.body = { ok: true }
})
router.get('/users/:id', (ctx) => {
  ctx.body = { id: ctx.params.id }
})
router.get('/orders', (ctx) => {
  ctx.body = { total: 1 }
})
const timing = async (ctx, next) => {
  const start = performance.now()
  await next()
  ctx.state.ms = performance.now() - start
}
const routed = memoryLogger({ sentry, every: 1000, log: () => {} })
const counting = memoryLogger({ sentry, every: 1000, routes: false, log: () => {} })
const chains = {
  alone: compose([timing, router.routes()]),
  logger: compose([routed, timing, router.routes()]),
  'logger, routes: false': compose([counting, timing, router.routes()]),
}
// One in five requests matches no route: its name is the collapsed path, after it is done.
const urls = ['/api/health', '/api/users/7', '/api/orders?limit=5', '/api/users/12', '/nope/3']
const headers = {}
const res = {
  getHeader() {},
  setHeader() {},
  removeHeader() {},
  hasHeader: () => false,
  headersSent: false,
  statusCode: 404,
}
const context = (i) =>
  app.createContext({ url: urls[i % urls.length], method: 'GET', headers, socket: {} }, res)

async function nsPerRequest(chain) {
  const start = process.cpuUsage()
  for (let i = 0; i < REQUESTS; i++) await chain(context(i))
  const used = process.cpuUsage(start)
  return ((used.user + used.system) * 1000) / REQUESTS
}

const names = Object.keys(chains)
const times = Object.fromEntries(names.map((n) => [n, []]))
for (const n of names) await nsPerRequest(chains[n]) // warm-up
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? names : [...names].reverse()
  for (const n of order) times[n].push(await nsPerRequest(chains[n]))
}
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.round(q * (xs.length - 1))]
const show = (xs) =>
  `${Math.round(quantile(xs, 0.5))} ns (quartiles ${Math.round(quantile(xs, 0.25))}..${Math.round(quantile(xs, 0.75))})`
console.log(`${ROUNDS} rounds of ${REQUESTS} requests per variant, interleaved`)
console.log(`chain alone: ${show(times.alone)} CPU per request`)
for (const n of names.slice(1)) {
  console.log(`${n}: +${show(times[n].map((t, i) => t - times.alone[i]))}`)
}
routed.close()
counting.close()
await sentry.close()
