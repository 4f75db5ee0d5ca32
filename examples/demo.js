'use strict'

// memsentry demo (`npm run demo`): the incident memsentry was written for, replayed in one
// minute.
//
// A Koa service loads an order per request with getData(). GET /orders/:id also attaches the
// order's document, a large database field, to the customer object, which lives as long as the
// process: a leak of one document per request. A built-in load generator sends requests to
// 127.0.0.1 (bounded in time and count). A MemorySentry samples every 250 ms with heap figures
// and a 20 s leak window; memsentry/koa logs a report per batch of requests and attributes the
// growth to routes.
//
// It prints a pidstat-style line per second, a batch report every 1000 requests (or 5 s), the
// leak warning once the sentry catches the growth, and 5 s later the code that allocates what
// leaks (V8's sampling heap profiler, run for those 5 s: `leak.diagnose`), then stops once the
// growth is tied to a route (or 20 s later; or after 60 s without a leak) and exits 0.
//
//   node examples/demo.js            MEMSENTRY_DEMO_SECONDS=30 node examples/demo.js

const http = require('node:http')
const Koa = require('koa')
const Router = require('@koa/router')

const { MemorySentry } = require('..')
const { memoryLogger } = require('../integrations/koa')
const {
  formatBytes,
  formatDiagnosis,
  formatPidstat,
  formatReport,
  pidstatHeader,
} = require('../integrations/format')

const MAX_SECONDS = Number(process.env.MEMSENTRY_DEMO_SECONDS ?? 60)
const DIAGNOSE_MS = 5000
const AFTER_DIAGNOSIS_MS = 2000
const NAMING_GRACE_MS = 20_000
const DOCUMENT_BYTES = 24 * 1024
const CLIENTS = 4
const PAUSE_MS = 10
const MAX_REQUESTS = 500_000

const startedAt = Date.now()
const elapsed = () => ((Date.now() - startedAt) / 1000).toFixed(1)

// ---------------------------------------------------------------------------------------------
// The service

/** Customers: long-lived objects, as a session store or an ORM's identity map would keep. */
const customers = new Map()
for (let i = 0; i < 50; i++) customers.set(i, { id: i, name: `customer ${i}`, recentOrders: [] })

/** "SELECT * FROM orders WHERE id = ?": a row with a large `document` field (a flat string). */
async function getData(id) {
  await new Promise((resolve) => setImmediate(resolve))
  return {
    id,
    customerId: id % customers.size,
    status: ['new', 'paid', 'shipped'][id % 3],
    total: ((id * 37) % 100_000) / 100,
    document: Buffer.alloc(DOCUMENT_BYTES, `order ${id} `).toString('latin1'),
  }
}

function createApp(sentry, logLine, onReport = () => {}) {
  const app = new Koa()
  const router = new Router()

  router.get('/orders/:id', async (ctx) => {
    const order = await getData(Number(ctx.params.id))
    // The bug: the whole row, document included, stays on the customer for good.
    customers.get(order.customerId).recentOrders.push(order)
    ctx.body = { id: order.id, status: order.status, total: order.total }
  })

  router.get('/products/:id', async (ctx) => {
    const product = await getData(Number(ctx.params.id))
    ctx.body = { id: product.id, pages: Math.ceil(product.document.length / 4096) }
  })

  router.get('/health', (ctx) => {
    ctx.body = 'ok'
  })

  const logger = memoryLogger({
    sentry,
    every: 1000,
    everyMs: 5000,
    log: (report) => {
      logLine(formatReport(report))
      onReport(report)
    },
    attribution: { minObservationMs: 500 },
  })
  app.use(logger)
  app.use(router.routes())
  return { app, logger }
}

// ---------------------------------------------------------------------------------------------
// The load: CLIENTS keep-alive clients, each pausing PAUSE_MS between requests (a few hundred
// requests a second). The mix swings between mostly orders and mostly products, in spells of
// 1.5 to 4 s of random length, as real traffic does over a day; that variation is what lets the
// growth be attributed to a route. Spells of one fixed length could keep in step with the GCs
// that bound the attribution's observations, and then every observation would see the same mix.

function startLoad(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS })
  const state = { sent: 0, failed: 0, stopped: false }
  let seed = 42
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
  const get = (path) =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
        res.resume()
        res.on('end', resolve)
        res.on('error', resolve)
      })
      req.on('error', () => {
        state.failed++
        resolve()
      })
    })
  // The current spell: its share of orders and when it ends.
  const spell = { ordersShare: 0.2, until: 0 }
  async function client() {
    while (!state.stopped && state.sent < MAX_REQUESTS) {
      const now = Date.now()
      if (now >= spell.until) {
        const mostlyOrders = spell.ordersShare < 0.5
        spell.ordersShare = mostlyOrders ? 0.75 + 0.15 * random() : 0.1 + 0.15 * random()
        spell.until = now + 1500 + 2500 * random()
      }
      const ordersShare = spell.ordersShare
      const r = random()
      const id = state.sent++
      const path = r < ordersShare ? `/orders/${id}` : r < 0.95 ? `/products/${id}` : '/health'
      await get(path)
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS))
    }
  }
  const done = Promise.all(Array.from({ length: CLIENTS }, client))
  return {
    state,
    async stop() {
      state.stopped = true
      await done
      agent.destroy()
    },
  }
}

// ---------------------------------------------------------------------------------------------

const hasRoutes = (routes) => Array.isArray(routes) && routes.length > 0

function followedRoutes(routes) {
  const each = routes.map((r) => `${r.route} (~${formatBytes(r.bytesPerRequest)} per request)`)
  return `growth follows ${each.join(', ')}`
}

function describeLeak(e) {
  const perMin = formatBytes(e.slopeBytesPerSec * 60)
  const where = {
    heap: 'the JS heap accounts for it',
    native: 'outside the JS heap (native memory, Buffers)',
    unknown: 'heap or native: unclear',
  }[e.suspect]
  const limit =
    e.msToLimit == null
      ? 'no memory limit known'
      : `the limit is reached in about ${Math.max(1, Math.round(e.msToLimit / 60_000))} min`
  const routes = hasRoutes(e.routes) ? followedRoutes(e.routes) : 'no route stands out yet'
  return (
    `memsentry: LEAK ${e.metric} growing ${perMin}/min (${formatBytes(e.slopeBytesPerSec)}/s), ` +
    `+${formatBytes(e.growthBytes)} over the last ${Math.round(e.windowMs / 1000)} s, ` +
    `confidence ${Number(e.confidence).toFixed(2)}; suspect ${e.suspect}: ${where}; ${limit}; ` +
    routes
  )
}

async function main() {
  const log = (line) => process.stdout.write(`${line}\n`)
  const sentry = new MemorySentry({
    intervalMs: 250,
    heap: true,
    // The incident in a minute, so a 20 s window. With the defaults, a window under a minute
    // is analysed over a minute (a cache filling, a burst of requests are a leak to 20 s) and
    // decides after the warm-up plus 0.83 × that at the earliest: no warning within this demo's
    // minute. Saying what growth matters (8 MiB/min; this leak grows ~200) lifts that. A service
    // keeps the defaults, `leak: {}` (a 10-minute window) or `leak: { windowMs: 60_000 }`.
    leak: {
      windowMs: 20_000,
      minSlope: '8MiB/min',
      warmupMs: 3000,
      diagnose: { durationMs: DIAGNOSE_MS },
    },
  })
  // The leak event names the routes the growth follows if the batches so far tell; if not yet
  // (a few batches of a mix that has not swung much), the first report that does says it.
  // The demo ends AFTER_DIAGNOSIS_MS after the diagnosis once the routes are named, or up to
  // NAMING_GRACE_MS later while the batches still cannot tell (the fit needs the mix of routes
  // to have swung a few times between GCs, which takes longer in some runs).
  let routesNamed = null
  let diagnosed = false
  const { app, logger } = createApp(sentry, log, (report) => {
    if (routesNamed === false && hasRoutes(report.suspectRoutes)) {
      routesNamed = true
      log(`memsentry: ${followedRoutes(report.suspectRoutes)}`)
      if (diagnosed) setTimeout(finish, AFTER_DIAGNOSIS_MS)
    }
  })
  const server = http.createServer(app.callback())
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()

  log(
    `memsentry demo: a Koa service on 127.0.0.1:${port} whose GET /orders/:id keeps each ` +
      `order's ${formatBytes(DOCUMENT_BYTES)} document on a long-lived customer object; ` +
      `${CLIENTS} clients for up to ${MAX_SECONDS} s`,
  )
  log(pidstatHeader())

  const load = startLoad(port)
  const firstRss = sentry.snapshot().rss
  let leakAt = null
  let finish
  const finished = new Promise((resolve) => (finish = resolve))

  // One line a second, with the fault rates over that second (as pidstat computes them) from the
  // cumulative counts; the sample's own rates cover its last 250 ms tick.
  let previous = null
  const ticker = setInterval(() => {
    const sample = sentry.latest
    if (sample === null) return
    let line = sample
    if (previous !== null && sample.time > previous.time) {
      const seconds = (sample.time - previous.time) / 1000
      line = {
        ...sample,
        minorFaultsPerSec: (sample.minorFaults - previous.minorFaults) / seconds,
        majorFaultsPerSec: (sample.majorFaults - previous.majorFaults) / seconds,
      }
    }
    previous = sample
    log(formatPidstat(line))
  }, 1000)

  sentry.on('leak', (e) => {
    log(describeLeak(e))
    routesNamed ||= hasRoutes(e.routes)
    if (leakAt === null) {
      leakAt = Date.now()
      // In case no diagnosis comes (see the 'error' listener) or no route stands out.
      setTimeout(finish, DIAGNOSE_MS + AFTER_DIAGNOSIS_MS + NAMING_GRACE_MS)
    }
  })
  // The code that allocates what leaks, after DIAGNOSE_MS of sampling.
  sentry.on('leak-diagnosis', (d) => {
    log(formatDiagnosis(d))
    diagnosed = true
    if (routesNamed) setTimeout(finish, AFTER_DIAGNOSIS_MS)
  })
  sentry.on('leak-end', (e) => {
    log(`memsentry: leak over (${e.metric} now ${formatBytes(e.slopeBytesPerSec)}/s)`)
  })
  sentry.on('error', (err) => log(`memsentry: error: ${err.message}`))
  const deadline = setTimeout(finish, MAX_SECONDS * 1000)

  await finished
  clearTimeout(deadline)
  clearInterval(ticker)
  await load.stop()
  logger.flush()
  const lastRss = sentry.snapshot().rss
  logger.close()
  await new Promise((resolve) => server.close(resolve))
  await sentry.close()

  log(
    `memsentry demo: done after ${elapsed()} s: ${load.state.sent} requests ` +
      `(${load.state.failed} failed), rss ${formatBytes(firstRss)} -> ${formatBytes(lastRss)}, ` +
      (leakAt === null
        ? `no leak warning within ${MAX_SECONDS} s`
        : `leak warned ${((leakAt - startedAt) / 1000).toFixed(1)} s after start`),
  )
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
