// Soak under load: a Koa server (its own process) with a sentry at 10 ms, loaded at maximum
// throughput by autocannon (another process) for 60 s, while its handler retains memory until RSS
// crosses an RSS threshold. The sampler must keep its period under that load (every tick that is
// late by more than a period is skipped — tokio's MissedTickBehavior::Skip — so a starved sampler
// thread shows as missing ticks), the threshold event must arrive during the load, and the server
// must keep serving.
//
// MEMSENTRY_SOAK_SECONDS=<s> changes the length of the load (default 60; lengthen it for a real
// soak, e.g. MEMSENTRY_SOAK_SECONDS=600 node --test __test__/soak.spec.mjs).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

import { startNode, describe as describeRun } from './helpers/child.mjs'

const MiB = 1024 * 1024
const serverScript = fileURLToPath(new URL('./fixtures/soak/server.mjs', import.meta.url))
const loadScript = fileURLToPath(new URL('./fixtures/soak/load.mjs', import.meta.url))

function soakSeconds() {
  const raw = process.env.MEMSENTRY_SOAK_SECONDS
  if (raw === undefined || raw === '') return 60
  const seconds = Number(raw)
  if (!(seconds >= 5) || seconds > 86_400) {
    throw new RangeError(
      `MEMSENTRY_SOAK_SECONDS must be a number of seconds in 5..=86400, got ${raw}`,
    )
  }
  return seconds
}

const SECONDS = soakSeconds()
const INTERVAL_MS = 10
const CONNECTIONS = 10
// Samples within 2% of elapsed / period.
const TICK_TOLERANCE = 0.02
const MIN_REQ_PER_SEC = 100

const config = {
  intervalMs: INTERVAL_MS,
  thresholdAboveStart: 30 * MiB,
  retainPerRequest: 50 * 1024,
  retainMax: 60 * MiB,
  // RSS rises over the first half of the load, then holds.
  rampMs: (SECONDS * 1000) / 2,
  // The whole span in the history (for the gap count), up to 10 minutes' worth.
  historySize: Math.min(60_000, Math.ceil((SECONDS * 1000 * 1.1) / INTERVAL_MS) + 500),
}

/** Sends { type } to the child and resolves its answer of the same type. */
function ask(child, type, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server: no '${type}' in ${timeoutMs} ms`)),
      timeoutMs,
    )
    child.on('message', function onMessage(msg) {
      if (msg?.type !== type) return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(msg)
    })
    child.send({ type })
  })
}

test(
  `soak: ${SECONDS} s of max load on a Koa server with a sentry at ${INTERVAL_MS} ms: every ` +
    'tick taken, the RSS threshold fires during the load, throughput holds',
  { timeout: (SECONDS + 60) * 1000 },
  async (t) => {
    const started = performance.now()
    const server = fork(serverScript, [JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    })
    let serverStderr = ''
    server.stderr.setEncoding('utf8').on('data', (d) => (serverStderr += d))
    t.after(() => {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL')
    })

    const [ready] = await Promise.race([
      once(server, 'message'),
      once(server, 'exit').then(([code]) => {
        throw new Error(`server exited (${code}) before listening:\n${serverStderr}`)
      }),
    ])
    assert.equal(ready.type, 'ready')

    const load = startNode(
      [
        loadScript,
        JSON.stringify({
          port: ready.port,
          seconds: SECONDS,
          connections: CONNECTIONS,
          paths: ['/items/1', '/items/2', '/health', '/items/3'],
        }),
      ],
      { timeoutMs: (SECONDS + 30) * 1000 },
    )
    const run = await load.done
    assert.equal(run.code, 0, describeRun(run))
    const loadResult = load.lines.findLast((l) => typeof l === 'object' && l !== null)
    assert.ok(loadResult, describeRun(run))

    const report = await ask(server, 'report')
    await once(server, 'exit')
    assert.equal(report.error, undefined, `${report.error}\n${serverStderr}`)

    const up = report.thresholdEvents.find((e) => e.direction === 'up')
    const missing = report.expectedTicks - report.ticks
    const figures = {
      span: `${(report.spanMs / 1000).toFixed(2)} s`,
      ticks: `${report.ticks} of ${report.expectedTicks.toFixed(1)} expected (${((missing / report.expectedTicks) * 100).toFixed(2)}% short)`,
      samplesDelivered: report.samplesDelivered,
      history: report.history,
      samplerCpuPerTick: `mean ${report.samplerMeanCpuUs.toFixed(1)} µs, max ${report.samplerMaxCpuUs.toFixed(0)} µs`,
      server: `${Math.round(report.reqPerSec)} req/s (${report.served} requests), ${report.serverCores.toFixed(2)} cores`,
      autocannon: loadResult,
      rss: `start ${(report.rssStart / MiB).toFixed(1)} MiB, threshold ${(report.threshold / MiB).toFixed(1)} MiB, end ${(report.rssEnd / MiB).toFixed(1)} MiB, retained ${(report.retainedBytes / MiB).toFixed(1)} MiB`,
      thresholdUp: up
        ? `${(up.atMs / 1000).toFixed(2)} s into the load, rss ${(up.value / MiB).toFixed(1)} MiB, ${(up.retainedBytes / MiB).toFixed(1)} MiB retained by then`
        : 'none',
      thresholdEvents: report.thresholdEvents.length,
      leakEvents: report.leakEvents,
      errors: report.errors,
      totalMs: Math.round(performance.now() - started),
    }
    for (const [k, v] of Object.entries(figures)) {
      t.diagnostic(`${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    }
    const context = JSON.stringify(figures, null, 2)

    // The load really ran: every request answered, none failed, throughput did not collapse.
    assert.equal(loadResult.errors, 0, context)
    assert.equal(loadResult.non2xx, 0, context)
    assert.ok(report.spanMs >= SECONDS * 1000 * 0.95, context)
    assert.ok(report.reqPerSec > MIN_REQ_PER_SEC, context)

    // The sampler kept its period: ticks over the span within 2% of span / period.
    assert.ok(
      Math.abs(missing) <= TICK_TOLERANCE * report.expectedTicks,
      `ticks ${report.ticks} vs ${report.expectedTicks.toFixed(1)} expected\n${context}`,
    )
    // Every tick reached the 'sample' listener on the loaded main thread (those of the last
    // moments may still be queued when the report is made).
    assert.ok(
      report.samplesDelivered >= report.ticks * (1 - TICK_TOLERANCE),
      `${report.samplesDelivered} 'sample' events for ${report.ticks} ticks\n${context}`,
    )

    // The threshold fired 'up', during the load, on a value above it.
    assert.ok(up, `no threshold 'up' event\n${context}`)
    assert.ok(up.atMs !== null && up.atMs >= 0 && up.atMs <= report.spanMs, context)
    assert.ok(up.value > report.threshold, context)
    assert.ok(report.rssEnd > report.threshold, context)
    assert.deepEqual(report.errors, [], context)
  },
)
