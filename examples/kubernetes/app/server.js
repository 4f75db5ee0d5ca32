'use strict'

// The Koa app of examples/kubernetes/deployment.yaml. memsentry is not started here: the
// Deployment preloads it with NODE_OPTIONS='-r memsentry/register' and configures it through
// MEMSENTRY_* variables; this file only exposes that sentry's figures and logs the routes memory
// growth follows.
//
//   NODE_OPTIONS='-r memsentry/register' PORT=3000 node server.js
//
// GET /metrics   memsentry's Prometheus metrics (what the ServiceMonitor, the PodMonitor and the
//                prometheus.io/* annotations point at)
// GET /healthz   the readiness and liveness probe
// GET /orders/:id
//                a stand-in for the service's real routes

const Koa = require('koa')
const Router = require('@koa/router')
const client = require('prom-client')
const { collect } = require('memsentry/prometheus')
const { memoryLogger } = require('memsentry/koa')
// The preloaded sentry (-r memsentry/register); started here if not preloaded, null if it could not start.
const { sentry } = require('memsentry/register')

const port = Number(process.env.PORT ?? 3000)
const registry = new client.Registry()

const app = new Koa()
const router = new Router()

if (sentry) {
  collect(sentry, { registry })
  // One JSON line per 1000 requests or minute; while a leak episode lasts it names the routes the
  // growth follows (suspectRoutes), and the 'leak' line on stderr gets them too.
  app.use(
    memoryLogger({
      sentry,
      every: 1000,
      everyMs: 60_000,
      log: (report) => console.log(JSON.stringify({ event: 'memory', ...report })),
    }),
  )
}

router.get('/metrics', async (ctx) => {
  ctx.set('Content-Type', registry.contentType)
  ctx.body = await registry.metrics()
})
router.get('/healthz', (ctx) => {
  ctx.body = 'ok'
})
router.get('/orders/:id', (ctx) => {
  ctx.body = { id: ctx.params.id, status: 'shipped' }
})

app.use(router.routes()).use(router.allowedMethods())

const server = app.listen(port, () => {
  console.log(JSON.stringify({ event: 'listening', port: server.address().port }))
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
