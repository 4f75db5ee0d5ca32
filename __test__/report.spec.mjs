// memsentry/report and the live dashboard: real reports rendered in headless Chromium.
//
// Needs Debian's chromium at /usr/bin/chromium (CI installs it: apt-get install -y chromium).
// The browser is driven by playwright-core over a fresh profile, with no network but localhost.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createRequire } from 'node:module'

import { sleep, waitFor, drainEvents } from './helpers/wait.mjs'

const require = createRequire(import.meta.url)
const Koa = require('koa')
const { chromium } = require('playwright-core')
const { MemorySentry } = require('../index.js')
const report = require('../integrations/report.js')
// What the entry point does not export: the recorder's and the leak actions' caps.
const recorder = require('../lib/recorder.js')
const leakActions = require('../lib/leak-actions.js')
const { MAX_POINTS } = require('../lib/report.js')
const { memoryDashboard } = require('../integrations/dashboard.js')

const CHROMIUM = process.env.MEMSENTRY_CHROMIUM ?? '/usr/bin/chromium'
const leaker = fileURLToPath(new URL('./fixtures/report/leaker.js', import.meta.url))
const leakOptionScript = fileURLToPath(new URL('./fixtures/report/leak-option.js', import.meta.url))
const GiB = 1024 ** 3
const MiB = 1024 ** 2
const SECRET = 'hunter2secret'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-report-'))

// ---------------------------------------------------------------------------------------------
// The browser: one per file, a fresh profile, each test on its own page

let browser = null
// The sentry's leak.report option (wired in lib/options.js and lib/sentry.js).
const hasLeakReportOption = (() => {
  try {
    new MemorySentry({ leak: { report: tmp } }).close()
    return true
  } catch {
    return false
  }
})()

// The leaking child processes (about 13 s) run while the other tests do; their tests are last.
let leakRun = null
let leakOptionRun = null

before(async () => {
  leakRun = runLeaker(path.join(tmp, 'leak.html'))
  leakRun.catch(() => {}) // awaited (and reported) by its test
  if (hasLeakReportOption) {
    leakOptionRun = runNodeJson([leakOptionScript, path.join(tmp, 'leak-option')])
    leakOptionRun.catch(() => {})
  }
  assert.ok(
    fs.existsSync(CHROMIUM),
    `these tests need Chromium at ${CHROMIUM} (apt-get install -y chromium)`,
  )
  browser = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
})

after(async () => {
  await browser?.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

/**
 * Opens `url` in a new page; resolves { page, errors, requests, loadMs } once the page says its
 * chart has drawn (the `data-rendered` attribute). `errors` collects console errors and page
 * errors; `requests` every URL the page asked for.
 */
async function openReport(url, { timeoutMs = 10_000 } = {}) {
  const page = await browser.newPage()
  const errors = []
  const requests = []
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`)
  })
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
  page.on('request', (req) => requests.push(req.url()))
  page.on('dialog', (dialog) => {
    errors.push(`dialog: ${dialog.message()}`)
    dialog.dismiss()
  })
  const started = performance.now()
  await page.goto(url)
  await page.waitForSelector('html[data-rendered="true"]', { timeout: timeoutMs })
  const loadMs = performance.now() - started
  return { page, errors, requests, loadMs }
}

/** The page's embedded data, parsed by the page itself. */
function pageData(page) {
  return page.evaluate(() => JSON.parse(document.getElementById('memsentry-data').textContent))
}

/**
 * Counts the strongly coloured pixels in the chart's plot area (the canvas under `.u-over`):
 * series lines, threshold lines and markers; not the white background, the grey grid or the pale
 * leak shading. Also counts the pixels of the RSS series' blue (#2563eb) in particular.
 */
function plotPixels(page) {
  return page.evaluate(() => {
    const canvas = document.querySelector('#chart canvas')
    const over = document.querySelector('#chart .u-over')
    const c = canvas.getBoundingClientRect()
    const o = over.getBoundingClientRect()
    const k = canvas.width / c.width
    const x0 = Math.round((o.left - c.left) * k)
    const y0 = Math.round((o.top - c.top) * k)
    const w = Math.round(o.width * k)
    const h = Math.round(o.height * k)
    const px = canvas.getContext('2d').getImageData(x0, y0, w, h).data
    let colored = 0
    let blue = 0
    for (let i = 0; i < px.length; i += 4) {
      const [r, g, b, a] = [px[i], px[i + 1], px[i + 2], px[i + 3]]
      if (a < 128) continue
      if (Math.max(r, g, b) - Math.min(r, g, b) > 80) colored++
      if (Math.abs(r - 37) < 40 && Math.abs(g - 99) < 40 && Math.abs(b - 235) < 40) blue++
    }
    return { colored, blue, width: w, height: h }
  })
}

/** Runs `node ...args`; resolves the last line of its stdout, parsed as JSON. */
function runNodeJson(args) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      args,
      { encoding: 'utf8', timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stdout}\n${stderr}`))
        resolve(JSON.parse(stdout.trim().split('\n').pop()))
      },
    )
  })
}

function runLeaker(out) {
  return runNodeJson([leaker, out, '12000', '8000', '1000'])
}

/** Listens on a free 127.0.0.1 port; resolves { port, close }. */
async function listen(handler) {
  const server = http.createServer(handler)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const close = () =>
    new Promise((resolve) => {
      server.closeAllConnections?.()
      server.close(() => resolve())
    })
  return { port: server.address().port, close }
}

async function getText(url) {
  const res = await fetch(url)
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

/** A Sample as the history holds it, for synthetic histories. */
function syntheticSample(time, i) {
  const rss = 300 * MiB + i * 40_000 + (i % 60) * 200_000
  return {
    time,
    pid: 4242,
    rss,
    vsz: 1200 * MiB,
    hwm: rss,
    swap: 0,
    threads: 11,
    memPercent: 1.5,
    heapUsed: 120 * MiB + i * 30_000,
    heapTotal: 200 * MiB + i * 30_000,
    external: 8 * MiB,
    arrayBuffers: 2 * MiB,
    childrenRss: 50 * MiB,
    treeRss: rss + 50 * MiB,
    cgroup: {
      version: 2,
      usage: rss + 80 * MiB,
      limit: 800 * MiB,
      high: null,
      workingSet: rss + 60 * MiB,
      oomEvents: 0,
      pressure: null,
    },
  }
}

// ---------------------------------------------------------------------------------------------

describe('the live view', () => {
  test('Koa: data.json grows between reads; the page loads, draws and updates itself', async (t) => {
    const sentry = new MemorySentry({ intervalMs: 50, limit: '1GiB', children: 'none' })
    const app = new Koa()
    app.use(memoryDashboard({ sentry, pollMs: 300 }))
    app.use((ctx) => {
      ctx.body = 'the app'
    })
    const server = await listen(app.callback())
    const base = `http://127.0.0.1:${server.port}`
    try {
      await waitFor(() => sentry.history().length >= 3, { timeoutMs: 5000 })
      const first = JSON.parse((await getText(`${base}/_memsentry/data.json`)).text)
      await sleep(400)
      const second = JSON.parse((await getText(`${base}/_memsentry/data.json`)).text)
      t.diagnostic(`points: ${first.series.time.length} then ${second.series.time.length}`)
      assert.ok(second.series.time.length > first.series.time.length)
      assert.equal(second.lines.find((l) => l.kind === 'limit').bytes, GiB)
      // ?since= returns only the newer points.
      const newest = second.series.time.at(-1)
      await sleep(200)
      const since = JSON.parse((await getText(`${base}/_memsentry/data.json?since=${newest}`)).text)
      assert.ok(since.series.time.length >= 1)
      assert.ok(since.series.time.every((time) => time > newest))
      assert.equal(since.series.rss.length, since.series.time.length)

      // Other paths go on to the app; other methods are refused.
      assert.equal((await getText(`${base}/other`)).text, 'the app')
      assert.equal((await fetch(`${base}/_memsentry`, { method: 'POST' })).status, 405)
      const pageRes = await fetch(`${base}/_memsentry`)
      assert.match(pageRes.headers.get('content-type'), /text\/html/)
      assert.equal(pageRes.headers.get('cache-control'), 'no-store')
      assert.match(pageRes.headers.get('content-security-policy'), /connect-src 'self'/)

      const { page, errors, loadMs } = await openReport(`${base}/_memsentry`)
      t.diagnostic(`live page rendered in ${Math.round(loadMs)} ms`)
      const pixels = await plotPixels(page)
      assert.ok(pixels.colored > 300, `drawn (${pixels.colored} coloured pixels)`)
      const countAt = async () => page.evaluate(() => document.querySelector('#status').textContent)
      const before = await page.evaluate(
        () => JSON.parse(document.getElementById('memsentry-data').textContent).series.time.length,
      )
      // The page polls data.json and says how many samples it has drawn.
      const status = await waitFor(
        async () => {
          const text = await countAt()
          const m = /live · (\d+) samples · updated/.exec(text)
          return m && Number(m[1]) > before ? text : null
        },
        { timeoutMs: 5000, intervalMs: 100 },
      )
      t.diagnostic(`status: ${status} (from ${before})`)
      assert.deepEqual(errors, [])
      await page.close()
    } finally {
      await server.close()
      await sentry.close()
    }
  })

  test('node:http form: serves the page and data.json under a custom path, next() for the rest', async () => {
    const sentry = new MemorySentry({ intervalMs: 50, children: 'none' })
    const view = memoryDashboard.http({ sentry, path: '/admin/memory/' })
    const server = await listen((req, res) => view(req, res, () => res.end('next')))
    const base = `http://127.0.0.1:${server.port}`
    try {
      await waitFor(() => sentry.history().length >= 2, { timeoutMs: 5000 })
      const pageRes = await getText(`${base}/admin/memory`)
      assert.equal(pageRes.status, 200)
      assert.match(pageRes.type, /text\/html/)
      assert.match(pageRes.text, /<script type="application\/json" id="memsentry-data">/)
      const data = await getText(`${base}/admin/memory/data.json`)
      assert.match(data.type, /application\/json/)
      assert.ok(JSON.parse(data.text).series.time.length >= 2)
      assert.equal((await getText(`${base}/admin`)).text, 'next')
      assert.equal((await getText(`${base}/_memsentry`)).text, 'next')
    } finally {
      await server.close()
      await sentry.close()
    }
  })

  test('bad options throw', () => {
    assert.throws(() => memoryDashboard({}), TypeError)
    const sentry = new EventEmitter()
    sentry.history = () => []
    assert.throws(() => memoryDashboard({ sentry, path: 'x' }), RangeError)
    assert.throws(() => memoryDashboard({ sentry, path: 7 }), TypeError)
    assert.throws(() => memoryDashboard({ sentry, includeCmdline: 'yes' }), TypeError)
    assert.throws(() => memoryDashboard({ sentry, pollMs: 5 }), RangeError)
    assert.throws(() => memoryDashboard({ sentry, pathh: '/x' }), /unknown option 'pathh'/)
  })
})

describe('command lines', () => {
  test("a child's secret argument appears only with includeCmdline: true", async () => {
    const child = spawn(
      process.execPath,
      ['-e', 'setTimeout(() => {}, 30000)', '--', `--token=${SECRET}`],
      { stdio: 'ignore' },
    )
    // The sentry reads a child's command line once, when it finds the child: start it after the
    // child has exec'd (a child found between fork and exec shows an empty command line).
    await waitFor(() => {
      try {
        return fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').includes(SECRET)
      } catch {
        return false
      }
    })
    const sentry = new MemorySentry({ intervalMs: 50, children: 'direct' })
    const koaApp = new Koa()
    koaApp.use(memoryDashboard({ sentry }))
    const plain = await listen(koaApp.callback())
    const withCmd = await listen(memoryDashboard.http({ sentry, includeCmdline: true }))
    try {
      // The sentry has the command line (so leaving it out is the report's doing).
      await waitFor(
        () => sentry.latest?.children?.find((c) => c.pid === child.pid)?.cmdline?.includes(SECRET),
        {
          timeoutMs: 10_000,
          message: () =>
            `the sentry sees child ${child.pid} and its command line: ` +
            JSON.stringify(sentry.latest?.children),
        },
      )
      const without = report.writeReport(sentry, path.join(tmp, 'plain.html'))
      const html = fs.readFileSync(without, 'utf8')
      assert.ok(!html.includes(SECRET), 'not in the report')
      assert.ok(html.includes(`"pid":${child.pid}`), 'the child is listed')
      const data = await getText(`http://127.0.0.1:${plain.port}/_memsentry/data.json`)
      assert.ok(!data.text.includes(SECRET), 'not in data.json')
      const livePage = await getText(`http://127.0.0.1:${plain.port}/_memsentry`)
      assert.ok(!livePage.text.includes(SECRET), 'not in the live page')

      const withFile = report.writeReport(sentry, path.join(tmp, 'cmd.html'), {
        includeCmdline: true,
      })
      assert.ok(fs.readFileSync(withFile, 'utf8').includes(SECRET), 'in the report when asked')
      const data2 = await getText(`http://127.0.0.1:${withCmd.port}/_memsentry/data.json`)
      const kid = JSON.parse(data2.text).children.find((c) => c.pid === child.pid)
      assert.ok(kid.cmdline.includes(`--token=${SECRET}`), 'in data.json when asked')

      // The report with the command line renders it in the children table.
      const { page, errors } = await openReport(pathToFileURL(withFile).href)
      assert.match(await page.textContent('#children'), new RegExp(SECRET))
      assert.deepEqual(errors, [])
      await page.close()
    } finally {
      child.kill('SIGKILL')
      await plain.close()
      await withCmd.close()
      await sentry.close()
    }
  })

  test("'</script>' in a string cannot break out of the embedded JSON", async () => {
    const evil = '</script><script>alert("pwned")</script><!--'
    const t0 = Date.now() - 10_000
    const history = Array.from({ length: 20 }, (_, i) => syntheticSample(t0 + i * 500, i))
    history.at(-1).children = [
      { pid: 7, ppid: 4242, comm: 'sh', cmdline: evil, rss: 3 * MiB, vsz: 10 * MiB },
    ]
    const events = [
      { type: 'child', time: t0 + 1000, change: 'spawn', pid: 7, ppid: 4242, comm: evil },
    ]
    const data = report.buildData(history, events, { title: evil }, { includeCmdline: true })
    const html = report.renderHtml(data)
    assert.equal(html.split('</script>').length - 1, 3, 'only the three script elements close')
    const file = path.join(tmp, 'evil.html')
    fs.writeFileSync(file, html)
    const { page, errors } = await openReport(pathToFileURL(file).href)
    assert.deepEqual(errors, [], 'no dialog, no error')
    const parsed = await pageData(page)
    assert.equal(parsed.children[0].cmdline, evil, 'the string survives the escaping unchanged')
    assert.equal(parsed.events[0].comm, evil)
    assert.equal(await page.title(), evil)
    assert.equal(await page.evaluate(() => document.scripts.length), 3)
    await page.close()
  })
})

describe('size and speed', () => {
  test('3,600 points render in Chromium in under a second (bound 3 s on a loaded box)', async (t) => {
    const t0 = Date.now() - 3600 * 1000
    const history = Array.from({ length: 3600 }, (_, i) => syntheticSample(t0 + i * 1000, i))
    history.at(-1).children = [{ pid: 99, ppid: 4242, comm: 'worker', cmdline: 'x', rss: 50 * MiB }]
    const events = [
      {
        type: 'threshold',
        time: t0 + 600_000,
        name: 'warn',
        metric: 'rss',
        threshold: 400 * MiB,
        value: 401 * MiB,
        direction: 'up',
      },
      { type: 'child', time: t0 + 60_000, change: 'spawn', pid: 99, ppid: 4242, comm: 'worker' },
      {
        type: 'leak',
        time: t0 + 1_800_000,
        metric: 'rss',
        slopeBytesPerSec: 40_000,
        growthBytes: 24e6,
        windowMs: 600_000,
        confidence: 0.999,
        msToLimit: 3e6,
        suspect: 'heap',
      },
      {
        type: 'leak-end',
        time: t0 + 3_000_000,
        metric: 'rss',
        slopeBytesPerSec: 1000,
        growthBytes: 1e6,
        windowMs: 600_000,
        confidence: 0.4,
        msToLimit: null,
        suspect: 'heap',
      },
    ]
    const meta = {
      options: {
        intervalMs: 1000,
        historySize: 3600,
        children: 'tree',
        thresholds: [
          { name: 'warn', metric: 'rss', above: 400 * MiB, abovePercent: null },
          { name: 'high', metric: 'workingSet', above: null, abovePercent: 90 },
        ],
        leak: { windowMs: 600_000, minSlope: 8738 },
      },
      limit: 800 * MiB,
    }
    const started = performance.now()
    const data = report.buildData(history, events, meta)
    const html = report.renderHtml(data)
    const buildMs = performance.now() - started
    const file = path.join(tmp, 'big.html')
    fs.writeFileSync(file, html)
    assert.equal(data.series.time.length, 3600)
    assert.deepEqual(
      data.lines.map((l) => [l.name, l.bytes]),
      [
        ['limit', 800 * MiB],
        ['warn', 400 * MiB],
        ['high', Math.round(0.9 * 800 * MiB)],
      ],
    )
    assert.deepEqual(
      data.leaks.map((l) => [l.start, l.end]),
      [[t0 + 1_200_000, t0 + 3_000_000]],
    )
    assert.equal(data.children[0].cmdline, undefined, 'no command line by default')

    const { page, errors, loadMs } = await openReport(pathToFileURL(file).href)
    const inPageMs = await page.evaluate(() => window.memsentryRenderedMs)
    t.diagnostic(
      `3600 points: html ${(html.length / 1024).toFixed(0)} KiB built in ${buildMs.toFixed(1)} ms; ` +
        `first draw ${inPageMs.toFixed(0)} ms after navigation start, ${loadMs.toFixed(0)} ms from goto()`,
    )
    assert.deepEqual(errors, [])
    assert.ok(inPageMs < 3000, `rendered ${inPageMs} ms after navigation`)
    assert.ok(loadMs < 3000, `rendered ${loadMs} ms after goto()`)
    const pixels = await plotPixels(page)
    assert.ok(pixels.colored > 1000, `drawn (${pixels.colored} coloured pixels)`)
    await page.close()
  })
})

describe('events and files', () => {
  test('attach is idempotent and keeps the last 1000 events', () => {
    const fake = new EventEmitter()
    fake.history = () => []
    report.attach(fake)
    report.attach(fake)
    assert.equal(fake.listenerCount('child'), 1)
    for (let i = 0; i < 1100; i++) {
      fake.emit('child', { type: 'spawn', pid: i, ppid: 1, comm: 'c' })
    }
    const rec = recorder.recordedEvents(fake)
    assert.equal(rec.events.length, recorder.MAX_EVENTS)
    assert.equal(rec.dropped, 100)
    assert.equal(rec.events[0].pid, 100)
    assert.equal(rec.events.at(-1).pid, 1099)
    assert.equal(rec.events[0].change, 'spawn')
    // What a later listener adds to a leak event (memsentry/koa's routes) is in the report.
    const leak = { metric: 'rss', slopeBytesPerSec: 1, windowMs: 1000, sample: { time: 5 } }
    fake.emit('leak', leak)
    leak.routes = [{ route: 'GET /orders', bytesPerRequest: 600 }]
    const last = recorder.recordedEvents(fake).events.at(-1)
    assert.equal(last.type, 'leak')
    assert.deepEqual(last.routes, leak.routes)
    assert.equal(JSON.stringify(last).includes('"sample"'), false, 'no Sample kept in the ring')
    assert.throws(() => report.attach({}), TypeError)
  })

  test('a history longer than MAX_POINTS is thinned to its peaks', () => {
    const n = MAX_POINTS * 2 + 7
    const t0 = Date.now() - n * 10
    const history = Array.from({ length: n }, (_, i) => ({
      time: t0 + i * 10,
      pid: 1,
      rss: i === 12_345 ? 900 * MiB : 100 * MiB + (i % 3),
      cgroup: null,
    }))
    const data = report.buildData(history, [], {})
    assert.ok(data.series.time.length <= MAX_POINTS + 1, `${data.series.time.length}`)
    assert.equal(data.thinnedFrom, n)
    assert.ok(data.series.rss.includes(900 * MiB), 'the peak survives')
    assert.equal(data.series.time.at(-1), Math.round(history.at(-1).time), 'the newest survives')
  })

  test('the page gives no element id twice', () => {
    const html = report.renderHtml(report.buildData([], [], { process: { pid: 1 } }))
    const ids = [...html.matchAll(/<[a-z]+[^>]*\sid="([^"]+)"/g)].map((m) => m[1])
    assert.ok(ids.length > 10, `ids found: ${ids.length}`)
    assert.deepEqual(
      ids.filter((id, i) => ids.indexOf(id) !== i),
      [],
    )
  })

  test('a history the sentry thinned is drawn as it came, and the page says from how many', () => {
    // What history({ maxPoints }) gives for a 50,000-sample history: MAX_POINTS plus the newest.
    const held = 50_000
    const t0 = Date.now() - held * 10
    const given = Array.from({ length: MAX_POINTS + 1 }, (_, i) => ({
      time: t0 + i * 25,
      pid: 1,
      rss: 100 * MiB + i,
      cgroup: null,
    }))
    const sentry = new EventEmitter()
    sentry.history = ({ maxPoints }) => (assert.equal(maxPoints, MAX_POINTS), given)
    sentry.stats = () => ({ historyLength: held })
    const data = report.collectData(sentry)
    assert.equal(data.series.time.length, MAX_POINTS + 1, 'not thinned a second time')
    assert.equal(data.thinnedFrom, held)
    // A whole history (the sentry's count is read first: a tick after it adds one) has no note.
    sentry.stats = () => ({ historyLength: given.length - 1 })
    assert.equal(report.collectData(sentry).thinnedFrom, undefined)
  })

  test('stats().historyLength is what history() holds, up to historySize', async () => {
    const sentry = new MemorySentry({ intervalMs: 10, historySize: 5, children: 'none' })
    try {
      await waitFor(() => sentry.stats().ticks >= 8, { timeoutMs: 10_000 })
      sentry.stop()
      assert.equal(sentry.stats().historyLength, 5)
      assert.equal(sentry.history().length, 5)
    } finally {
      await sentry.close()
    }
    assert.equal(sentry.stats().historyLength, 5, 'the history still answers after close()')
  })

  test('writeReport replaces an existing file with a 0600 one', () => {
    const sentry = new EventEmitter()
    sentry.history = () => [syntheticSample(Date.now(), 0)]
    const file = path.join(tmp, 'existing.html')
    fs.writeFileSync(file, 'old', { mode: 0o644 })
    fs.chmodSync(file, 0o644)
    assert.equal(report.writeReport(sentry, file), file)
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    assert.match(fs.readFileSync(file, 'utf8'), /^<!doctype html>/)
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    )
    assert.throws(() => report.writeReport(sentry, file, { includeCmdLine: true }), TypeError)
  })

  test('writeLeakReport: path at once, file off the hot path, 0600, at most 5 per process', async () => {
    const sentry = new MemorySentry({ intervalMs: 50, children: 'none' })
    const dir = path.join(tmp, 'leaks', 'sub')
    try {
      await waitFor(() => sentry.history().length >= 2, { timeoutMs: 5000 })
      const paths = []
      const now = Date.now()
      const errors = []
      sentry.on('error', (err) => errors.push(err))
      // The last allowed one goes to a 'directory' that is a file: an 'error' event, no throw.
      const notADir = path.join(tmp, 'not-a-dir')
      fs.writeFileSync(notADir, '')
      for (let i = 0; i < leakActions.MAX_LEAK_REPORTS + 1; i++) {
        const event = {
          metric: 'rss',
          slopeBytesPerSec: 50_000,
          growthBytes: 3e7,
          windowMs: 600_000,
          confidence: 0.99,
          msToLimit: null,
          suspect: 'heap',
          sample: { time: now + i },
        }
        const last = i === leakActions.MAX_LEAK_REPORTS - 1
        const file = leakActions.writeLeakReport(sentry, last ? notADir : dir, event)
        if (file) assert.equal(event.report, file)
        paths.push(file)
        if (i === 0) assert.equal(fs.existsSync(file), false, 'not written synchronously')
      }
      assert.equal(paths.at(-1), null, 'the sixth is refused')
      await drainEvents()
      assert.equal(errors.length, 1, 'one error event')
      assert.ok(['EEXIST', 'ENOTDIR'].includes(errors[0].code), errors[0].code)
      assert.match(errors[0].message, /^memsentry: leak report not written: /)
      assert.equal(errors[0].path, paths[leakActions.MAX_LEAK_REPORTS - 1])
      const written = paths.slice(0, -2)
      for (const file of written) {
        assert.match(
          path.basename(file),
          new RegExp(`^memsentry-leak-${process.pid}-[0-9T-]+Z\\.html$`),
        )
        assert.equal(fs.statSync(file).mode & 0o777, 0o600)
      }
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700)
      const html = fs.readFileSync(written[0], 'utf8')
      const json = /<script type="application\/json" id="memsentry-data">\s*(.*?)\s*<\/script>/s
      const data = JSON.parse(json.exec(html)[1])
      assert.equal(data.trigger.type, 'leak')
      assert.equal(data.trigger.report, written[0])
      assert.equal(data.leaks[0].report, written[0])
      // Each written report waits for the episode's diagnosis once; nothing is left behind.
      const waiting = sentry.listenerCount('leak-diagnosis')
      assert.ok(waiting >= written.length, `${waiting} listeners`)
      sentry.emit('leak-diagnosis', {
        time: Date.now(),
        suspect: 'heap',
        sites: [{ functionName: 'keepOrders', url: '/srv/orders.js', line: 3, column: 1 }],
      })
      await drainEvents()
      assert.equal(sentry.listenerCount('leak-diagnosis'), waiting - written.length)
      assert.match(fs.readFileSync(written[0], 'utf8'), /keepOrders/, 'rewritten with the sites')
    } finally {
      await sentry.close()
    }
  })
})

describe('leak diagnoses in reports', () => {
  test("an episode shows its 'leak-diagnosis', even one that came after 'leak-end'", () => {
    const t0 = 1_700_000_000_000
    const site = { functionName: 'getData', url: '/srv/app/orders.js', line: 12, column: 3 }
    const diagnosis = (time, sites) => ({
      type: 'leak-diagnosis',
      time,
      since: time - 10_000,
      durationMs: 10_000,
      suspect: 'heap',
      samplingIntervalBytes: 16384,
      sampledBytes: 1e6,
      sites,
    })
    const events = [
      { type: 'leak', time: t0, metric: 'rss', windowMs: 60_000, suspect: 'heap' },
      diagnosis(t0 + 10_000, [{ ...site, where: 'getData (orders.js:12)', share: 0.9 }]),
      { type: 'leak-end', time: t0 + 20_000, metric: 'rss' },
      { type: 'leak', time: t0 + 60_000, metric: 'rss', windowMs: 60_000, suspect: 'heap' },
      { type: 'leak-end', time: t0 + 65_000, metric: 'rss' },
      diagnosis(t0 + 70_000, []),
    ]
    const data = report.buildData([], events, { process: { pid: 1 } })
    assert.equal(data.leaks.length, 2)
    assert.deepEqual(data.leaks[0].diagnosis.sites[0].where, 'getData (orders.js:12)')
    assert.equal(data.leaks[0].diagnosis.since, t0)
    assert.deepEqual(data.leaks[1].diagnosis.sites, [])
  })
})

describe('a report of a real leaking process', () => {
  test(
    "the sentry's leak: { report: dir } option writes a report when the leak is confirmed",
    { skip: hasLeakReportOption ? false : 'leak.report is not wired into the sentry yet' },
    async () => {
      const dir = path.join(tmp, 'leak-option')
      const result = await leakOptionRun
      // The line of the setInterval callback that keeps the strings.
      const leakingLine =
        fs
          .readFileSync(leakOptionScript, 'utf8')
          .split('\n')
          .findIndex((l) => l.includes('const leaking = setInterval(')) + 1
      assert.equal(result.timeout, undefined, 'the leak was caught')
      assert.equal(path.dirname(result.report), dir)
      assert.match(path.basename(result.report), /^memsentry-leak-\d+-[0-9T-]+Z\.html$/)
      assert.equal(result.existsAtEmit, false, 'written after the event, off its call')
      assert.equal(result.mode, '600')
      const json = /<script type="application\/json" id="memsentry-data">\s*(.*?)\s*<\/script>/s
      const data = JSON.parse(json.exec(fs.readFileSync(result.report, 'utf8'))[1])
      assert.equal(data.trigger.type, 'leak')
      assert.equal(data.leaks.length, 1)
      assert.equal(data.leaks[0].report, result.report)
      // Recorded from the sentry's start: the threshold crossed before the leak is there.
      assert.ok(data.events.some((e) => e.type === 'threshold' && e.name === 'early'))
      // Written again with the episode's diagnosis: the setInterval callback that keeps strings.
      assert.ok(result.diagnosis, 'the diagnosis is in the leak report')
      if (result.diagnosis.suspect !== 'native') {
        assert.equal(
          result.diagnosis.sites[0].where,
          `(anonymous) (${path.relative(process.cwd(), leakOptionScript)}:${leakingLine})`,
        )
      }
      // sentry.writeReport(file) too.
      assert.equal(fs.statSync(result.manual).mode & 0o777, 0o600)
      // A sentry closed by its own 'leak' listener: the promised report holds the history.
      assert.equal(result.closedLeaks, 1)
      assert.ok(
        result.closedPoints > 20,
        `${result.closedPoints} points in the closed one's report`,
      )
    },
  )

  test('renders in Chromium with no error, draws the chart, holds the leak and the limit', async (t) => {
    const result = await leakRun
    assert.equal(result.timeout, undefined, `the leak was caught: ${JSON.stringify(result)}`)
    assert.ok(result.leak, 'a leak event')
    const st = fs.statSync(result.file)
    assert.equal(st.mode & 0o777, 0o600, 'mode 0600')
    t.diagnostic(`report ${st.size} bytes, ${result.points} points`)

    const { page, errors, requests, loadMs } = await openReport(pathToFileURL(result.file).href)
    t.diagnostic(`rendered in ${Math.round(loadMs)} ms`)
    assert.deepEqual(errors, [])
    // Self-contained: the file itself is the only thing the page loaded.
    assert.deepEqual(requests, [pathToFileURL(result.file).href])

    const pixels = await plotPixels(page)
    t.diagnostic(`plot pixels: ${JSON.stringify(pixels)}`)
    assert.ok(pixels.colored > 500, `the series are drawn (${pixels.colored} coloured pixels)`)
    assert.ok(pixels.blue > 100, `the RSS line is drawn (${pixels.blue} blue pixels)`)

    const data = await pageData(page)
    assert.equal(data.series.time.length, result.points)
    for (const key of ['rss', 'heapUsed', 'external', 'treeRss']) {
      assert.ok(Array.isArray(data.series[key]), `series ${key}`)
    }
    // The leak episode: shaded from the analysed window's start, with its slope and suspect.
    assert.equal(data.leaks.length, 1, JSON.stringify(data.leaks))
    const [episode] = data.leaks
    assert.equal(episode.detected, Math.round(result.leak.time))
    // The event's windowMs is the span analysed: at most the configured window.
    assert.ok(episode.windowMs > 0 && episode.windowMs <= 8000, `windowMs ${episode.windowMs}`)
    assert.equal(episode.start, episode.detected - episode.windowMs)
    assert.equal(episode.suspect, result.leak.suspect)
    assert.ok(episode.slopeBytesPerSec > 0)
    // The limit and both thresholds as lines; 'critical' is 90% of the 2 GiB limit.
    const lines = Object.fromEntries(data.lines.map((l) => [l.name, l]))
    assert.equal(lines.limit.kind, 'limit')
    assert.equal(lines.limit.bytes, 2 * GiB)
    assert.equal(lines.critical.bytes, Math.round(0.9 * 2 * GiB))
    assert.equal(lines.warn.kind, 'threshold')
    // Events: the threshold crossing and the child's spawn and exit.
    const kinds = data.events.map((e) => (e.type === 'child' ? `child-${e.change}` : e.type))
    for (const kind of ['threshold', 'leak', 'child-spawn', 'child-exit']) {
      assert.ok(kinds.includes(kind), `${kind} in ${kinds}`)
    }
    // The header: pid, Node version, no arguments without includeCmdline.
    assert.ok(data.process.pid > 0)
    assert.equal(data.process.node, process.version)
    assert.equal(data.process.argv, undefined)
    const head = await page.textContent('#proc')
    assert.ok(head.includes(`pid ${data.process.pid}`), head)
    const eventsTable = await page.textContent('#events')
    assert.match(eventsTable, /warn up: rss/)
    assert.match(await page.textContent('#leaks'), /MiB\/min/)
    // The episode's diagnosis: the leaker's setInterval callback (line 51) keeps the strings.
    const { diagnosis } = episode
    assert.ok(diagnosis, `a diagnosis on the episode: ${JSON.stringify(result.diagnosis)}`)
    if (episode.suspect !== 'native') {
      const [top] = diagnosis.sites
      assert.equal(top.where, `(anonymous) (${path.relative(process.cwd(), leaker)}:51)`)
      assert.match(await page.textContent('#leaks'), /leaker\.js:51\) \d+%/)
      assert.equal(await page.isVisible('#sites-box'), true)
      assert.match(await page.textContent('#sites'), /leaker\.js:51/)
    }
    await page.close()
  })
})
