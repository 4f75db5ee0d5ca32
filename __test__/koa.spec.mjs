// memsentry/koa: batch reports under real HTTP load, route names, route attribution.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { EventEmitter } from 'node:events'
import http from 'node:http'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { childScript } from './helpers/child.mjs'
import { sleep, waitFor } from './helpers/wait.mjs'

const require = createRequire(import.meta.url)
const Koa = require('koa')
const Router = require('@koa/router')
const { MemorySentry } = require('../index.js')
const { memoryLogger } = require('../integrations/koa.js')
const {
  routeName,
  collapsePath,
  RouteTable,
  RouteAttribution,
} = require('../integrations/routes.js')

const KiB = 1024

// ---------------------------------------------------------------------------------------------
// Helpers

/** A deterministic PRNG (mulberry32) in [0, 1). */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function gaussian(rand) {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand())
}

/** Listens on a free 127.0.0.1 port; resolves { server, port, close }. */
async function listen(handler) {
  const server = http.createServer(handler)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  const close = () => new Promise((resolve) => server.close(() => resolve()))
  return { server, port, close }
}

/**
 * Sends GET requests to 127.0.0.1:port with `concurrency` workers over one keep-alive agent, as
 * long as `nextPath(i)` returns a path, at most `maxRequests` requests and `maxMs` milliseconds,
 * each worker pausing `pauseMs` after each request.
 * Resolves the number of requests answered.
 */
async function load(
  port,
  nextPath,
  { concurrency = 8, maxRequests = 1000, maxMs = 8000, pauseMs = 0 } = {},
) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const deadline = Date.now() + maxMs
  let issued = 0
  let answered = 0
  const get = (path) =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, agent }, (res) => {
          res.resume()
          res.on('end', resolve)
          res.on('error', reject)
        })
        .on('error', reject)
    })
  async function worker() {
    while (issued < maxRequests && Date.now() < deadline) {
      const path = nextPath(issued++)
      if (path == null) return
      await get(path)
      answered++
      if (pauseMs > 0) await sleep(pauseMs)
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, worker))
  } finally {
    agent.destroy()
  }
  return answered
}

function sum(reports, field = 'requests') {
  return reports.reduce((s, r) => s + r[field], 0)
}

function mergeRoutes(reports) {
  const all = {}
  for (const r of reports) {
    for (const [route, n] of Object.entries(r.routes ?? {})) all[route] = (all[route] ?? 0) + n
  }
  return all
}

// ---------------------------------------------------------------------------------------------

describe('route names', () => {
  test('ids collapse: numbers, UUIDs, hex of 16 or more characters', () => {
    assert.equal(collapsePath('/orders/123'), '/orders/:id')
    assert.equal(collapsePath('/orders/123/items/7'), '/orders/:id/items/:id')
    assert.equal(
      collapsePath('/users/3F2504E0-4F89-11D3-9A0C-0305E82C3301/avatar'),
      '/users/:id/avatar',
    )
    assert.equal(collapsePath('/blobs/0123456789abcdef0123'), '/blobs/:id')
    assert.equal(collapsePath('/blobs/deadbeefdeadbeef'), '/blobs/:id')
    // Not ids: short hex, words with digits, the root.
    assert.equal(collapsePath('/blobs/deadbeef'), '/blobs/deadbeef')
    assert.equal(collapsePath('/v2/orders'), '/v2/orders')
    assert.equal(collapsePath('/page2'), '/page2')
    assert.equal(collapsePath('/'), '/')
    assert.equal(collapsePath('/orders/12/'), '/orders/:id/')
  })

  test('routeName: the template when given, else the collapsed path without its query', () => {
    assert.equal(routeName('GET', '/orders/42', '/orders/:id'), 'GET /orders/:id')
    assert.equal(routeName('POST', '/orders/42?x=1#y'), 'POST /orders/:id')
    assert.equal(routeName('GET', '/a/b?id=123'), 'GET /a/b')
    assert.equal(routeName('GET', '/x', /^\/x$/), 'GET /^\\/x$/')
  })

  test('RouteTable keeps at most max names, the rest are other', () => {
    const table = new RouteTable(3)
    assert.deepEqual(
      ['a', 'b', 'a', 'c', 'd', 'e', 'b'].map((r) => table.intern(r)),
      ['a', 'b', 'a', 'c', 'other', 'other', 'b'],
    )
    assert.equal(table.size, 3)
  })

  test('RouteTable: names not seen in the current batch give way to new ones, least recent first', () => {
    const table = new RouteTable(3)
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((r) => table.intern(r)),
      ['a', 'b', 'c', 'other'],
    )
    table.endBatch()
    // 'b' is seen again in this batch; 'a' then 'c' are the least recent and make room.
    assert.deepEqual(
      ['b', 'd', 'e', 'f', 'a'].map((r) => table.intern(r)),
      ['b', 'd', 'e', 'other', 'other'],
    )
    assert.equal(table.size, 3)
  })
})

describe('route attribution on synthetic batches', () => {
  /**
   * 50 batches of ~200 requests over routes a, b, c whose mix drifts from batch to batch, with
   * growth = Σ leak[route] × count + background × seconds + Gaussian noise (σ = noise).
   */
  function run(seed, { leak = {}, background = 0, noise = 200 * KiB, batches = 50 }) {
    const rand = prng(seed)
    const attribution = new RouteAttribution()
    for (let i = 0; i < batches; i++) {
      const pA = 0.2 + 0.6 * rand()
      const counts = { 'GET /a': 0, 'GET /b': 0, 'GET /c': Math.floor(rand() * 20) }
      for (let k = 0; k < 200; k++) counts[rand() < pA ? 'GET /a' : 'GET /b']++
      const seconds = 0.2 + 0.05 * rand()
      let growthBytes = background * seconds + noise * gaussian(rand)
      for (const [route, n] of Object.entries(counts)) growthBytes += (leak[route] ?? 0) * n
      attribution.add({ counts, growthBytes, seconds })
    }
    return attribution
  }

  test('one route keeps 10 KiB a request: it alone is named, with about that size', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const attribution = run(seed, { leak: { 'GET /a': 10 * KiB } })
      const suspects = attribution.suspects()
      assert.deepEqual(
        suspects.map((s) => s.route),
        ['GET /a'],
        `seed ${seed}: ${JSON.stringify(attribution.estimate())}`,
      )
      assert.ok(
        Math.abs(suspects[0].bytesPerRequest - 10 * KiB) < 3 * KiB,
        `seed ${seed}: ${suspects[0].bytesPerRequest}`,
      )
    }
  })

  test('no route keeps anything: none is named', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const attribution = run(seed, {})
      assert.deepEqual(attribution.suspects(), [], `seed ${seed}`)
    }
  })

  test('growth with time but not with requests (a timer leaks): no route is named', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const attribution = run(seed, { background: 4 * 1024 * KiB })
      assert.deepEqual(
        attribution.suspects(),
        [],
        `seed ${seed}: ${JSON.stringify(attribution.estimate())}`,
      )
      assert.ok(attribution.estimate().background > 2 * 1024 * KiB, `seed ${seed}`)
    }
  })

  test('a route keeping less than 1 KiB a request is not named, however regular', () => {
    const attribution = run(3, { leak: { 'GET /a': 512 }, noise: 1 })
    assert.deepEqual(attribution.suspects(), [])
    const a = attribution.estimate().routes.find((r) => r.route === 'GET /a')
    assert.ok(Math.abs(a.bytesPerRequest - 512) < 16, JSON.stringify(a))
  })

  test('too few batches, or a mix that never changes: nothing is named', () => {
    assert.deepEqual(run(1, { leak: { 'GET /a': 10 * KiB }, batches: 5 }).suspects(), [])
    const attribution = new RouteAttribution()
    const rand = prng(9)
    for (let i = 0; i < 50; i++) {
      attribution.add({
        counts: { 'GET /a': 100, 'GET /b': 100 },
        growthBytes: 100 * 10 * KiB + 100 * KiB * gaussian(rand),
        seconds: 0.2,
      })
    }
    assert.deepEqual(attribution.suspects(), [])
  })

  test('the window keeps the last 50 batches', () => {
    const attribution = run(4, { leak: { 'GET /a': 10 * KiB }, batches: 80 })
    assert.equal(attribution.size, 50)
    // An old leak drops out of the window once the route stops keeping memory.
    const rand = prng(5)
    for (let i = 0; i < 50; i++) {
      const nA = Math.floor(40 + 120 * rand())
      attribution.add({
        counts: { 'GET /a': nA, 'GET /b': 200 - nA },
        growthBytes: 200 * KiB * gaussian(rand),
        seconds: 0.2,
      })
    }
    assert.deepEqual(attribution.suspects(), [])
  })

  test('many routes: the quietest share one column, the loud leaking one is still named', () => {
    const rand = prng(11)
    const attribution = new RouteAttribution()
    for (let i = 0; i < 50; i++) {
      const counts = {}
      for (let r = 0; r < 40; r++) counts[`GET /r${r}`] = Math.floor(rand() * 10)
      counts['GET /hot'] = Math.floor(50 + 150 * rand())
      counts['GET /cold'] = Math.floor(50 + 150 * rand())
      const growthBytes = counts['GET /hot'] * 20 * KiB + 100 * KiB * gaussian(rand)
      attribution.add({ counts, growthBytes, seconds: 0.25 })
    }
    assert.deepEqual(
      attribution.suspects().map((s) => s.route),
      ['GET /hot'],
    )
  })

  test('one observation far off among a dozen does not hide the route: deleted residuals', () => {
    // Recorded from `npm run demo` (GC to GC, KiB, seconds, requests to products and orders;
    // orders keep ~25 KiB each): at the 11th GC the heap read 44 MiB up, ~70 KiB an order. The
    // fit's own residuals spread that error over every observation, none was left out, and
    // orders came out at t 3.3 against a critical 3.85: no route was named on the leak event.
    const recorded = [
      [4637, 0.63, 18, 185],
      [5330, 0.77, 39, 207],
      [6907, 0.96, 39, 267],
      [3757, 1.35, 309, 141],
      [1099, 1.14, 346, 48],
      [2735, 1.26, 325, 109],
      [10508, 1.18, 29, 375],
      [4926, 0.77, 22, 250],
      [11588, 2.31, 334, 464],
      [5580, 2.06, 456, 244],
      [44311, 2.24, 137, 629],
      [5116, 2.71, 755, 181],
    ]
    const attribution = new RouteAttribution()
    for (const [kib, seconds, products, orders] of recorded) {
      attribution.add({
        counts: { 'GET /products/:id': products, 'GET /orders/:id': orders, 'GET /health': 10 },
        growthBytes: kib * KiB,
        seconds,
      })
    }
    const suspects = attribution.suspects()
    assert.deepEqual(
      suspects.map((s) => s.route),
      ['GET /orders/:id'],
      JSON.stringify(attribution.estimate()),
    )
    assert.ok(
      Math.abs(suspects[0].bytesPerRequest - 25 * KiB) < 3 * KiB,
      `${suspects[0].bytesPerRequest}`,
    )
  })

  test('two routes, neither keeping anything: no outliers made up, none named, at any rounding', () => {
    // Recorded in a CI run of the end-to-end test below (KiB, ms, requests to /a and /b), where
    // /b was named at 2216 B a request with 4 "outliers" left out. With only two routes the
    // any-route column is the sum of theirs; the leverages came from the inverse of that
    // singular Gram matrix (rounding noise), so which observations looked far off, and which
    // route came out, turned on the last bits of the data: one in twelve of these jitters.
    const recorded = [
      [830, 475, 243, 103],
      [875, 464, 257, 103],
      [797, 486, 57, 314],
      [787, 479, 52, 321],
      [718, 485, 250, 123],
      [723, 494, 268, 109],
      [395, 251, 40, 149],
      [682, 489, 62, 315],
      [727, 505, 154, 222],
      [297, 259, 128, 60],
      [721, 491, 275, 101],
      [416, 264, 59, 131],
      [377, 257, 59, 130],
      [391, 265, 52, 140],
      [397, 259, 56, 138],
      [360, 250, 157, 37],
    ]
    const rand = prng(48)
    for (let trial = 0; trial < 200; trial++) {
      const attribution = new RouteAttribution()
      for (const [kib, ms, a, b] of recorded) {
        // Within the recording's rounding: half a KiB, half a millisecond.
        attribution.add({
          counts: { 'GET /a/:id': a, 'GET /b/:id': b },
          growthBytes: (kib + rand() - 0.5) * KiB,
          seconds: (ms + rand() - 0.5) / 1000,
        })
      }
      const estimate = attribution.estimate()
      const detail = `trial ${trial}: ${JSON.stringify(estimate)}`
      assert.equal(estimate.outliers, 0, detail)
      assert.deepEqual(attribution.suspects(), [], detail)
    }
  })
})

// ---------------------------------------------------------------------------------------------

describe('memoryLogger (Koa)', () => {
  test('batches with the right request counts and router route names', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger({ sentry, every: 50, log: (r) => reports.push(r) })
    const app = new Koa()
    const router = new Router()
    router.get('/orders/:id', (ctx) => {
      ctx.body = { id: ctx.params.id }
    })
    router.get('/health', (ctx) => {
      ctx.body = 'ok'
    })
    app.use(logger)
    app.use(router.routes())
    const { port, close } = await listen(app.callback())
    t.after(close)

    const answered = await load(port, (i) => (i % 4 === 3 ? '/health' : `/orders/${i}`), {
      maxRequests: 230,
    })
    assert.equal(answered, 230)
    await waitFor(() => reports.length === 4, { message: () => JSON.stringify(reports) })
    assert.deepEqual(
      reports.map((r) => r.requests),
      [50, 50, 50, 50],
    )
    logger.flush()
    assert.equal(reports.length, 5)
    assert.equal(reports[4].requests, 30)
    assert.equal(sum(reports), 230)
    assert.deepEqual(mergeRoutes(reports), { 'GET /orders/:id': 173, 'GET /health': 57 })
    for (const r of reports) {
      assert.equal(
        sum([r]),
        Object.values(r.routes).reduce((a, b) => a + b, 0),
      )
      assert.ok(r.ms >= 0 && r.reqPerSec > 0, JSON.stringify(r))
      assert.ok(r.rss > 1024 * KiB, JSON.stringify(r))
      assert.equal(typeof r.rssDelta, 'number')
      assert.equal(r.heapUsed, undefined, 'no heap figures without heap: true')
      assert.equal(r.suspectRoutes, undefined, 'no suspects outside a leak episode')
    }
    assert.equal(reports[0].rssDelta, 0)
    assert.equal(reports[1].rssDelta, reports[1].rss - reports[0].rss)
  })

  test('without a router, ids in the path collapse; errors and 404s count too', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, leak: false, heap: true })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger({ sentry, every: 1000, log: (r) => reports.push(r) })
    const app = new Koa()
    app.silent = true
    app.use(logger)
    app.use((ctx) => {
      if (ctx.path.startsWith('/boom')) throw new Error('boom')
      if (ctx.path.startsWith('/users')) ctx.body = 'user'
    })
    const { port, close } = await listen(app.callback())
    t.after(close)
    const paths = [
      '/users/17',
      '/users/9000/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301',
      '/users/5?full=1',
      '/boom/1',
      '/missing/0123456789abcdef01',
    ]
    await waitFor(() => sentry.latest !== null)
    assert.equal(await load(port, (i) => paths[i % paths.length], { maxRequests: 100 }), 100)
    const report = logger.flush()
    assert.equal(report.requests, 100)
    assert.deepEqual(report.routes, {
      'GET /users/:id': 40,
      'GET /users/:id/orders/:id': 20,
      'GET /boom/:id': 20,
      'GET /missing/:id': 20,
    })
    assert.equal(typeof report.heapUsed, 'number', 'heap figures with heap: true')
    assert.equal(report.heapDelta, 0)
  })

  test('at most maxRoutes distinct routes; the rest count as other', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger({ sentry, maxRoutes: 100, log: (r) => reports.push(r) })
    const app = new Koa()
    app.use(logger)
    app.use((ctx) => {
      ctx.body = 'x'
    })
    const { port, close } = await listen(app.callback())
    t.after(close)
    await load(port, (i) => `/page${i}`, { maxRequests: 150 })
    const report = logger.flush()
    assert.equal(Object.keys(report.routes).length, 101)
    assert.equal(report.routes.other, 50)
  })

  test('an observation over many batches holds at most maxRoutes names and other', async (t) => {
    // Paths the collapsing misses, a new one per request, 10 to a batch, while one attribution
    // observation stays open (a minimum of 500 ms): each batch's new names push older ones out
    // of the table, and their counts must go to 'other', not stay under their names.
    const sentry = new MemorySentry({ intervalMs: 20, leak: false })
    t.after(() => sentry.close())
    const logger = memoryLogger({
      sentry,
      every: 10,
      maxRoutes: 5,
      metric: 'rss',
      attribution: { minObservationMs: 500 },
      log: () => {},
    })
    t.after(() => logger.close())
    const app = new Koa()
    app.use(logger)
    app.use((ctx) => {
      ctx.body = 'x'
    })
    const { port, close } = await listen(app.callback())
    t.after(close)
    await waitFor(() => sentry.latest !== null)
    await load(port, (i) => `/u/x${i}`, { concurrency: 2, pauseMs: 2, maxRequests: 800 })
    await waitFor(() => logger.attribution.size >= 1 || null, { timeoutMs: 5000 })
    let requests = 0
    for (const o of logger.attribution.observations) {
      const names = Object.keys(o.counts)
      assert.ok(names.length <= 6, `${names.length} names in one observation`)
      requests += Object.values(o.counts).reduce((a, b) => a + b, 0)
    }
    assert.ok(requests > 0 && requests <= 800, `${requests}`)
  })

  test('100 junk paths sent early do not make every later real route other', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger({ sentry, every: 100, log: (r) => reports.push(r) })
    const app = new Koa()
    app.use(logger)
    app.use((ctx) => {
      ctx.body = 'x'
    })
    const { port, close } = await listen(app.callback())
    t.after(close)
    // A scanner's first batch: 100 distinct paths fill the table.
    await load(port, (i) => `/wp-admin/probe-${String.fromCharCode(97 + (i % 26))}${i}`, {
      maxRequests: 100,
    })
    assert.equal(reports.length, 1)
    // Then the real traffic, batch after batch.
    const real = ['/orders', '/users', '/health']
    await load(port, (i) => real[i % real.length], { maxRequests: 200 })
    assert.equal(reports.length, 3)
    for (const report of reports.slice(1)) {
      assert.equal(report.routes.other, undefined, JSON.stringify(report.routes))
      assert.ok(report.routes['GET /orders'] >= 33, JSON.stringify(report.routes))
    }
  })

  test('everyMs ends a batch by time; a logger object gets .info(report)', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const log = {
      info(report) {
        assert.equal(this, log)
        reports.push(report)
      },
    }
    const logger = memoryLogger({ sentry, everyMs: 150, log })
    t.after(() => logger.close())
    const app = new Koa()
    app.use(logger)
    app.use((ctx) => {
      ctx.body = 'x'
    })
    const { port, close } = await listen(app.callback())
    t.after(close)
    await load(port, () => '/x', { maxRequests: 7, concurrency: 1 })
    await waitFor(() => reports.length === 1, { timeoutMs: 3000 })
    assert.equal(reports[0].requests, 7)
    assert.ok(reports[0].ms >= 140, JSON.stringify(reports[0]))
    // Both given: whichever comes first.
    const both = []
    const logger2 = memoryLogger({ sentry, every: 5, everyMs: 60_000, log: (r) => both.push(r) })
    t.after(() => logger2.close())
    const app2 = new Koa()
    app2.use(logger2)
    app2.use((ctx) => {
      ctx.body = 'x'
    })
    const second = await listen(app2.callback())
    t.after(second.close)
    await load(second.port, () => '/y', { maxRequests: 12, concurrency: 1 })
    assert.deepEqual(
      both.map((r) => r.requests),
      [5, 5],
    )
  })

  test("metric 'rss': observations from sample to sample; close() stops counting", async (t) => {
    const sentry = new MemorySentry({ intervalMs: 20, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger({
      sentry,
      every: 20,
      metric: 'rss',
      attribution: { minObservationMs: 40 },
      log: (r) => reports.push(r),
    })
    const app = new Koa()
    app.use(logger)
    app.use((ctx) => {
      ctx.body = 'x'
    })
    const { port, close } = await listen(app.callback())
    t.after(close)
    await waitFor(() => sentry.latest !== null)
    await load(port, (i) => `/r/${i}`, { concurrency: 2, pauseMs: 2, maxRequests: 400 })
    assert.ok(logger.attribution.size >= 2, `${logger.attribution.size} observations`)
    for (const o of logger.attribution.observations) {
      assert.ok(o.seconds >= 0.04, JSON.stringify(o))
      assert.ok(
        Object.keys(o.counts).every((r) => r === 'GET /r/:id'),
        JSON.stringify(o),
      )
    }
    const before = sum(reports)
    logger.close()
    await load(port, () => '/r/1', { maxRequests: 40 })
    assert.equal(logger.flush(), null)
    assert.equal(sum(reports), before)
  })

  test('a log function that throws does not fail the request', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, leak: false })
    t.after(() => sentry.close())
    const warnings = []
    const onWarning = (w) => warnings.push(w.message)
    process.on('warning', onWarning)
    t.after(() => process.off('warning', onWarning))
    const logger = memoryLogger({
      sentry,
      every: 1,
      log: () => {
        throw new Error('disk full')
      },
    })
    const app = new Koa()
    app.use(logger)
    app.use((ctx) => {
      ctx.body = 'x'
    })
    const { port, close } = await listen(app.callback())
    t.after(close)
    const statuses = []
    await new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/' }, (res) => {
          statuses.push(res.statusCode)
          res.resume().on('end', resolve)
        })
        .on('error', reject)
    })
    assert.deepEqual(statuses, [200])
    await waitFor(() => warnings.some((m) => m.includes('disk full')), { timeoutMs: 2000 })
  })

  test('a report with no RSS to be had: null, not an exception at the end of a request', () => {
    // A real EMFILE: the child holds every descriptor its `ulimit -n` allows, so the logger's
    // own reads (memsentry's statm, then Node's) both fail.
    const root = mkdtempSync(path.join(tmpdir(), 'memsentry-no-fds-'))
    try {
      const out = execFileSync(
        'sh',
        [
          '-c',
          'ulimit -n 256 && exec "$0" "$@"',
          process.execPath,
          childScript('koa-no-fds.js'),
          root,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      )
      const { limit, latestRss, report, error } = JSON.parse(out)
      assert.equal(limit, 'EMFILE')
      assert.equal(latestRss, null, 'the sentry has no RSS of its own')
      assert.equal(error, null)
      assert.equal(report.requests, 1)
      assert.equal(report.rss, null)
      assert.equal(report.rssDelta, null)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })

  test('bad options throw at once', () => {
    assert.throws(() => memoryLogger({ sentry: {} }), /sentry must be a MemorySentry/)
    const sentry = new MemorySentry({ intervalMs: 1000, leak: false })
    try {
      assert.throws(() => memoryLogger({ sentry, every: 0 }), /every must be a positive integer/)
      assert.throws(() => memoryLogger({ sentry, every: 1.5 }), RangeError)
      assert.throws(() => memoryLogger({ sentry, everyMs: '1s' }), TypeError)
      assert.throws(() => memoryLogger({ sentry, log: 42 }), TypeError)
      assert.throws(() => memoryLogger({ sentry, metric: 'pss' }), RangeError)
      assert.throws(() => memoryLogger({ sentry, metric: 1 }), {
        name: 'TypeError',
        message: /metric/,
      })
    } finally {
      sentry.close()
    }
  })

  test('bad routes and attribution options: TypeError or RangeError naming the option and value', () => {
    const sentry = new MemorySentry({ intervalMs: 1000, leak: false })
    const throws = (options, type, pattern) =>
      assert.throws(
        () => memoryLogger({ sentry, ...options }),
        (err) => err instanceof type && pattern.test(err.message),
        `${JSON.stringify(options)}: ${type.name} ${pattern}`,
      )
    try {
      // Boolean('false') is true: a string is refused, not taken as a flag.
      throws(
        { routes: 'false' },
        TypeError,
        /^memsentry\/koa: routes must be a boolean, got string 'false'$/,
      )
      throws({ routes: 0 }, TypeError, /^memsentry\/koa: routes must be a boolean, got number 0$/)
      throws({ routes: null }, TypeError, /routes must be a boolean, got null$/)
      throws({ attribution: null }, TypeError, /attribution must be an object, got null$/)
      throws({ attribution: [] }, TypeError, /attribution must be an object, got array$/)
      // A window of Infinity or NaN never dropped an observation (and made estimate() slower
      // with every one).
      throws(
        { attribution: { window: Infinity } },
        RangeError,
        /^memsentry\/koa: attribution\.window must be an integer in 1\.\.=500, got Infinity$/,
      )
      throws({ attribution: { window: NaN } }, RangeError, /attribution\.window .*, got NaN$/)
      throws(
        { attribution: { window: '50' } },
        TypeError,
        /^memsentry\/koa: attribution\.window must be a number, got string '50'$/,
      )
      throws({ attribution: { window: 12.5 } }, RangeError, /attribution\.window .*, got 12\.5$/)
      throws({ attribution: { window: 0 } }, RangeError, /attribution\.window .*, got 0$/)
      throws({ attribution: { window: 501 } }, RangeError, /attribution\.window .*, got 501$/)
      // A window too short for minObservations would never give an estimate: the one given is named.
      throws(
        { attribution: { window: 5 } },
        RangeError,
        /attribution\.window must be at least attribution\.minObservations \(8\), got 5$/,
      )
      throws(
        { attribution: { minObservations: 60 } },
        RangeError,
        /attribution\.minObservations must be at most attribution\.window \(50\), got 60$/,
      )
      throws(
        { attribution: { minObservations: -1 } },
        RangeError,
        /attribution\.minObservations must be an integer in 1\.\.=500, got -1$/,
      )
      throws(
        { attribution: { minT: NaN } },
        RangeError,
        /^memsentry\/koa: attribution\.minT must be a non-negative finite number, got NaN$/,
      )
      throws({ attribution: { minT: -3 } }, RangeError, /attribution\.minT .*, got -3$/)
      throws({ attribution: { minT: '3' } }, TypeError, /attribution\.minT .*, got string '3'$/)
      throws(
        { attribution: { minBytesPerRequest: Infinity } },
        RangeError,
        /attribution\.minBytesPerRequest .*, got Infinity$/,
      )
      throws(
        { attribution: { minBytesPerRequest: '1KiB' } },
        TypeError,
        /attribution\.minBytesPerRequest must be a number, got string '1KiB'$/,
      )
      throws(
        { attribution: { minObservationMs: Infinity } },
        RangeError,
        /attribution\.minObservationMs must be a positive number, got Infinity$/,
      )
      throws(
        { attribution: { minObservationMs: '1s' } },
        TypeError,
        /attribution\.minObservationMs must be a number, got string '1s'$/,
      )
      throws(
        { attribution: { Window: 50 } },
        TypeError,
        /unknown option 'attribution\.Window' \(did you mean 'attribution\.window'\?\)/,
      )
      throws(
        { everyMs: '1s' },
        TypeError,
        /^memsentry\/koa: everyMs must be a number, got string '1s'$/,
      )
      throws({ every: Infinity }, RangeError, /every must be a positive integer, got Infinity$/)
      // setTimeout turns a longer delay into 1 ms: a batch per millisecond, not per 35 days.
      throws(
        { everyMs: 3e9 },
        RangeError,
        /everyMs must be a positive number up to 2147483647, got 3000000000$/,
      )
      // The RouteAttribution itself checks the same.
      assert.throws(() => new RouteAttribution({ window: Infinity }), RangeError)

      // What the docs and types allow still works.
      const good = [
        {},
        { routes: true },
        { routes: false },
        { attribution: {} },
        { attribution: { minObservationMs: 4000, minT: 3 } },
        {
          attribution: {
            minObservationMs: 250,
            window: 50,
            minT: 3,
            minBytesPerRequest: 1024,
            minObservations: 8,
          },
        },
        { attribution: { window: 500, minT: 0, minBytesPerRequest: 0, minObservations: 1 } },
        { attribution: { window: 8, minObservations: 8 } },
        { attribution: { window: undefined, minT: 2.5, minBytesPerRequest: 512.5 } },
      ]
      for (const options of good) {
        const logger = memoryLogger({ sentry, ...options })
        assert.equal(logger.sentry, sentry)
        logger.close()
        memoryLogger.http({ sentry, ...options }).close()
      }
      const routes = (options) => {
        const logger = memoryLogger({ sentry, ...options })
        logger.close()
        return logger.attribution
      }
      assert.equal(routes({ attribution: { minT: 2.5 } }).minT, 2.5)
      assert.equal(routes({}).minObservations, 8)
      // routes: false is honoured, not just accepted.
      const counted = (flag) => {
        const log = memoryLogger.http({ sentry, routes: flag, log: () => {} })
        const res = new EventEmitter()
        log({ method: 'GET', url: '/a/1' }, res)
        res.emit('finish')
        const report = log.flush()
        log.close()
        return report.routes
      }
      assert.deepEqual(counted(true), { 'GET /a/:id': 1 })
      assert.equal(counted(false), undefined)
    } finally {
      sentry.close()
    }
  })

  test('attribution.window bounds the observations kept', () => {
    const attribution = new RouteAttribution({ window: 10, minObservations: 4 })
    for (let i = 0; i < 25; i++) attribution.add({ counts: { 'GET /a': 10 }, growthBytes: i })
    assert.equal(attribution.size, 10)
    assert.equal(attribution.observations[0].growthBytes, 15)
  })

  test('the sentry it creates itself is closed when the server closes', async () => {
    const reports = []
    const logger = memoryLogger({ every: 10, log: (r) => reports.push(r) })
    const sentry = logger.sentry
    assert.ok(sentry instanceof MemorySentry)
    assert.equal(sentry.options.intervalMs, 1000)
    assert.notEqual(sentry.options.leak, null, 'leak detection on')
    assert.equal(sentry.running, false, 'it waits for the first request')
    const app = new Koa()
    app.use(logger)
    app.use((ctx) => {
      ctx.body = 'x'
    })
    const { port, close } = await listen(app.callback())
    await load(port, () => '/x', { maxRequests: 20 })
    assert.equal(reports.length, 2)
    assert.equal(sentry.running, true, 'started by the first request')
    assert.equal(sentry.closed, false)
    await close()
    await waitFor(() => sentry.closed, { timeoutMs: 3000 })
    assert.equal(sentry.listenerCount('leak'), 0, 'its listeners are removed')
  })

  test('loggers with a sentry of their own, never used and dropped, leave nothing running', () => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', childScript('koa-unused-logger.js')],
      { encoding: 'utf8', timeout: 30_000 },
    )
    const report = JSON.parse(out.trim().split('\n').pop())
    const info = JSON.stringify(report)
    assert.equal(report.running, 0, `none ran before a request: ${info}`)
    assert.equal(report.samplers, 0, `no sampler thread: ${info}`)
    assert.equal(report.collected, 3, `all three sentries were collected: ${info}`)
  })

  test('loggers dropped without close() are collected though their sentry runs on', () => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', childScript('koa-dropped-logger.js')],
      { encoding: 'utf8', timeout: 30_000 },
    )
    const report = JSON.parse(out.trim().split('\n').pop())
    assert.equal(report.collected, 3, `all three loggers were collected: ${JSON.stringify(report)}`)
    assert.equal(report.leakListeners, 0, 'their listeners took themselves off')
  })

  test('a sentry passed in is left open when the server closes', async () => {
    const sentry = new MemorySentry({ intervalMs: 1000, leak: false })
    try {
      const logger = memoryLogger({ sentry, log: () => {} })
      const app = new Koa()
      app.use(logger)
      app.use((ctx) => {
        ctx.body = 'x'
      })
      const { port, close } = await listen(app.callback())
      await load(port, () => '/x', { maxRequests: 3 })
      await close()
      assert.equal(sentry.closed, false)
      logger.close()
      assert.equal(sentry.listenerCount('leak'), 0)
    } finally {
      await sentry.close()
    }
  })
})

describe('heap attribution reads the heap after scavenges and full GCs only', () => {
  // An incremental-marking or weak-callback entry comes while the young generation is still
  // full of garbage: a heap reading there was ~20 MB off under load (integrations/koa.js).
  test('lists of other GC entries do not make it read; every list with one does', () => {
    const root = fileURLToPath(new URL('..', import.meta.url))
    const child = fileURLToPath(new URL('./helpers/gc-reads.cjs', import.meta.url))
    const out = execFileSync(process.execPath, [child, root], { encoding: 'utf8', timeout: 60_000 })
    const { lists } = JSON.parse(out)
    const others = lists.filter((l) => !l.emptying)
    // V8 ran incremental marking within 20 s of steady allocation on Node 22, 24 and 26.
    assert.ok(others.length > 0, `no list without a scavenge or full GC in ${lists.length}`)
    assert.deepEqual(
      others.filter((l) => l.read),
      [],
    )
    assert.deepEqual(
      lists.filter((l) => l.emptying && !l.read),
      [],
    )
  })
})

describe('memoryLogger.http (node:http, Express)', () => {
  test('counts each request on finish, with the same reports', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger.http({ sentry, every: 10, log: (r) => reports.push(r) })
    const { port, close } = await listen((req, res) => {
      logger(req, res, () => {
        if (req.url.startsWith('/express')) req.route = { path: '/express/:name' }
        res.end('ok')
      })
    })
    t.after(close)
    const answered = await load(port, (i) => (i % 5 === 0 ? `/express/n${i}` : `/items/${i}?q=1`), {
      maxRequests: 25,
    })
    assert.equal(answered, 25)
    assert.deepEqual(
      reports.map((r) => r.requests),
      [10, 10],
    )
    logger.flush()
    assert.equal(sum(reports), 25)
    assert.deepEqual(mergeRoutes(reports), { 'GET /items/:id': 20, 'GET /express/:name': 5 })
    for (const r of reports) assert.ok(r.rss > 0 && r.reqPerSec > 0, JSON.stringify(r))
  })

  test('works without next (plain node:http)', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger.http({ sentry, every: 4, log: (r) => reports.push(r) })
    const { port, close } = await listen((req, res) => {
      logger(req, res)
      res.end('ok')
    })
    t.after(close)
    await load(port, () => '/plain', { maxRequests: 8, concurrency: 2 })
    await waitFor(() => reports.length === 2)
    assert.deepEqual(reports[1].routes, { 'GET /plain': 4 })
  })
})

describe('route attribution end to end', () => {
  /** The fit and its observations (growth in KiB, requests to /a and /b), for failure messages. */
  function describeFit(logger, answered) {
    const observations = logger.attribution.observations.map(
      (o) =>
        `${Math.round(o.growthBytes / KiB)} KiB in ${Math.round(o.seconds * 1000)} ms: ` +
        `a ${o.counts['GET /a/:id'] ?? 0}, b ${o.counts['GET /b/:id'] ?? 0}`,
    )
    return [
      `${answered} requests`,
      JSON.stringify(logger.attribution.estimate()),
      ...observations,
    ].join('\n')
  }

  /**
   * A Koa app with /a/:id and /b/:id at similar overall rates, whose mix swings every second;
   * /a keeps `keepBytes` per request in a global array. Real load (2 keep-alive clients) until
   * 16 heap attribution observations (GC to GC, at least 250 ms each) or 9 s, a batch every 100
   * requests.
   */
  async function scenario(t, keepBytes) {
    const kept = []
    const sentry = new MemorySentry({ intervalMs: 100, heap: true, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger({
      sentry,
      every: 100,
      attribution: { minObservationMs: 250 },
      log: (r) => reports.push(r),
    })
    t.after(() => {
      logger.close()
      kept.length = 0
    })
    const app = new Koa()
    const router = new Router()
    router.get('/a/:id', (ctx) => {
      // A flat string (not a rope of a repeated one), so it really takes keepBytes.
      if (keepBytes > 0) kept.push(Buffer.alloc(keepBytes, ctx.params.id).toString('latin1'))
      ctx.body = { id: ctx.params.id, pad: 'p'.repeat(1000) }
    })
    router.get('/b/:id', (ctx) => {
      ctx.body = { id: ctx.params.id, pad: 'p'.repeat(1000) }
    })
    app.use(logger)
    app.use(router.routes())
    const { port, close } = await listen(app.callback())
    t.after(close)
    await waitFor(() => sentry.latest?.heapUsed != null)

    const rand = prng(1234)
    const start = Date.now()
    let phase = -1
    let pA = 0.5
    const answered = await load(
      port,
      (i) => {
        // Enough observations for a fit (at least 250 ms each): stop.
        if (logger.attribution.size >= 16) return null
        const p = Math.floor((Date.now() - start) / 1000)
        if (p !== phase) {
          // Mostly /a, then mostly /b, and so on: the same overall rates, a mix that varies.
          phase = p
          pA = p % 2 === 0 ? 0.7 + 0.15 * rand() : 0.15 + 0.15 * rand()
        }
        return `${rand() < pA ? '/a/' : '/b/'}${i}`
      },
      { concurrency: 2, pauseMs: 2, maxRequests: 30_000, maxMs: 9000 },
    )
    const routes = mergeRoutes(reports)
    const a = routes['GET /a/:id']
    const b = routes['GET /b/:id']
    assert.ok(a > 0.2 * (a + b) && b > 0.2 * (a + b), `similar rates: ${JSON.stringify(routes)}`)
    return { sentry, logger, reports, answered, port }
  }

  test('no route keeps anything: none is named', async (t) => {
    const { sentry, logger, answered } = await scenario(t, 0)
    const estimate = logger.attribution.estimate()
    const detail = describeFit(logger, answered)
    assert.ok(estimate.observations >= 8, detail)
    assert.deepEqual(logger.suspects(), [], detail)
    const event = { metric: 'rss', suspect: 'unknown', sample: sentry.latest }
    sentry.emit('leak', event)
    assert.deepEqual(event.routes, [])
  })

  test('the route that keeps 100 KiB a request alone is named, in reports and on the leak event', async (t) => {
    const keep = 100 * KiB
    const { sentry, logger, reports, answered, port } = await scenario(t, keep)
    const estimate = logger.attribution.estimate()
    const detail = describeFit(logger, answered)
    assert.ok(estimate.observations >= 8, detail)
    const suspects = logger.suspects()
    assert.deepEqual(
      suspects.map((s) => s.route),
      ['GET /a/:id'],
      detail,
    )
    assert.ok(
      suspects[0].bytesPerRequest > keep / 2 && suspects[0].bytesPerRequest < keep * 2,
      detail,
    )

    // The sentry's 'leak' event (emitted here by hand, as the detector would) gets `routes`,
    // visible to listeners added after the logger; then, while the sentry says an episode is on
    // (`leakEpisode`, stood in for here), the reports carry suspectRoutes.
    let episode = null
    Object.defineProperty(sentry, 'leakEpisode', { configurable: true, get: () => episode })
    let seen = null
    sentry.on('leak', (e) => {
      seen = e
    })
    const event = {
      metric: 'rss',
      slopeBytesPerSec: 5 * 1024 * KiB,
      growthBytes: 50 * 1024 * KiB,
      windowMs: 10_000,
      confidence: 0.99,
      msToLimit: null,
      suspect: 'heap',
      sample: sentry.latest,
    }
    episode = { since: Date.now(), metric: 'rss', slopeBytesPerSec: 5 * 1024 * KiB }
    sentry.emit('leak', event)
    assert.equal(seen, event)
    assert.deepEqual(
      seen.routes.map((r) => r.route),
      ['GET /a/:id'],
    )
    assert.equal(logger.leaking, true)
    const before = reports.length
    await load(port, (i) => `/b/${i}`, { maxRequests: 100 })
    assert.equal(reports.length, before + 1)
    assert.deepEqual(
      reports.at(-1).suspectRoutes.map((r) => r.route),
      ['GET /a/:id'],
    )
    episode = null
    assert.equal(logger.leaking, false)
    await load(port, (i) => `/b/${i}`, { maxRequests: 100 })
    assert.equal(reports.at(-1).suspectRoutes, undefined, 'the episode ended')
  })
})

describe('leak sites in the reports', () => {
  test("a 'leak-diagnosis' puts its top sites in every report until 'leak-end'", async (t) => {
    const { formatReport } = require('../integrations/format.js')
    const sentry = new MemorySentry({ intervalMs: 50, leak: false })
    t.after(() => sentry.close())
    const reports = []
    const logger = memoryLogger({ sentry, every: 1000, log: (r) => reports.push(r) })
    t.after(() => logger.close())
    const app = new Koa()
    app.use(logger)
    app.use((ctx) => {
      ctx.body = 'ok'
    })
    const { port, close } = await listen(app.callback())
    t.after(close)
    const batch = async () => {
      await load(port, (i) => `/x/${i}`, { maxRequests: 5 })
      return logger.flush()
    }
    const site = (functionName, line, share) => ({
      functionName,
      url: `${process.cwd()}/examples/demo.js`,
      line,
      column: 1,
      bytes: 1000,
      share,
      count: 10,
      stack: [],
    })
    const diagnosis = {
      since: Date.now(),
      durationMs: 10_000,
      samplingIntervalBytes: 16384,
      sampledBytes: 1e6,
      suspect: 'heap',
      sites: [
        site('getData', 49, 0.9),
        site('handler', 60, 0.05),
        site('a', 1, 0.03),
        site('b', 2, 0.02),
      ],
    }
    // Whether an episode is on is the core's state (sentry.leakEpisode), which only a real leak
    // sets (diagnosis-koa.spec runs real ones, ~80 s each); here it is set on the instance, so that
    // the logger's own rules are tested: sites only in an episode, from its diagnosis, until it ends.
    let episode = null
    Object.defineProperty(sentry, 'leakEpisode', { get: () => episode })
    // Outside an episode a diagnosis is ignored (it belongs to no episode this logger saw).
    sentry.emit('leak-diagnosis', diagnosis)
    assert.equal((await batch()).leakSites, undefined)

    episode = { since: Date.now(), metric: 'rss', slopeBytesPerSec: 1e5, suspect: 'heap' }
    sentry.emit('leak', { metric: 'rss', suspect: 'heap', sample: sentry.latest })
    assert.equal((await batch()).leakSites, undefined, 'not before the diagnosis')
    sentry.emit('leak-diagnosis', diagnosis)
    const report = await batch()
    assert.deepEqual(
      report.leakSites.map((s) => [s.functionName, s.line, s.share]),
      [
        ['getData', 49, 0.9],
        ['handler', 60, 0.05],
        ['a', 1, 0.03],
      ],
    )
    assert.match(
      formatReport(report),
      / allocated in getData \(examples\/demo\.js:49\) 90%, handler \(examples\/demo\.js:60\) 5%, a \(examples\/demo\.js:1\) 3%$/,
    )
    episode = null
    sentry.emit('leak-end', { metric: 'rss', suspect: 'heap', sample: sentry.latest })
    assert.equal((await batch()).leakSites, undefined, 'gone with the episode')
  })
})
