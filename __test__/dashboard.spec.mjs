// The live dashboard's guard (no browser needed): hostile request targets, Host headers and
// methods against both forms, the authorize hook, what one view costs, and what the page and
// the report say about the process's arguments.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'

import { waitFor } from './helpers/wait.mjs'

const require = createRequire(import.meta.url)
const Koa = require('koa')
const { MemorySentry } = require('../index.js')
const report = require('../integrations/report.js')
const { MAX_POINTS } = require('../lib/report.js')
const { memoryDashboard } = require('../integrations/dashboard.js')

const sentries = []
after(async () => {
  await Promise.all(sentries.map((s) => s.close()))
})
function newSentry(options = {}) {
  const s = new MemorySentry({ intervalMs: 50, children: 'none', leak: false, ...options })
  sentries.push(s)
  return s
}

function listen(handler, address = '127.0.0.1') {
  return new Promise((resolve) => {
    const server = http.createServer(handler)
    server.listen(0, address, () => {
      resolve({
        port: server.address().port,
        close: () => new Promise((r) => server.close(r)),
      })
    })
  })
}

/** Both forms in front of an app that answers 'the app' to whatever they pass on. */
async function servers(t, options, address) {
  const koa = new Koa()
  koa.use(memoryDashboard(options))
  koa.use((ctx) => {
    ctx.body = 'the app'
  })
  const view = memoryDashboard.http(options)
  const forms = {
    koa: await listen(koa.callback(), address),
    http: await listen((req, res) => view(req, res, () => res.end('the app')), address),
  }
  t.after(() => Promise.all(Object.values(forms).map((f) => f.close())))
  return forms
}

/**
 * One request with the request target and Host sent exactly as given (`host: null` sends none).
 * Resolves { status, type, body, allow }.
 */
function raw(
  port,
  { method = 'GET', target, host = `127.0.0.1:${port}`, headers = {}, address = '127.0.0.1' },
) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: address,
      port,
      method,
      path: target,
      setHost: false,
      headers: { ...(host === null ? {} : { Host: host }), ...headers },
      agent: false,
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          type: res.headers['content-type'] ?? '',
          body,
          allow: res.headers.allow,
        }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

const served = (r) =>
  r.status === 200 && (/memsentry-data/.test(r.body) || /application\/json/.test(r.type))

describe('the live page guard', () => {
  test('hostile request targets never reach it: matched raw, as sent', async (t) => {
    const sentry = newSentry()
    const forms = await servers(t, { sentry })
    await waitFor(() => sentry.latest !== null)
    const hostile = [
      '//x/_memsentry',
      '//x/_memsentry/data.json',
      '/a/../_memsentry',
      '/a/../_memsentry/data.json',
      '/a/%2e%2e/_memsentry',
      '/a/%2E%2E/_memsentry/data.json',
      '/\\x/_memsentry',
      '/\\x/../_memsentry/data.json',
      'http://evil/_memsentry/data.json',
      'http://evil/_memsentry',
      '/%5fmemsentry',
      '/_memsentry%2fdata.json',
      '/_memsentry/./data.json',
      '/_memsentry//data.json',
      '/_MEMSENTRY',
      '*',
    ]
    for (const [form, { port }] of Object.entries(forms)) {
      // The real paths are served, so a refusal below is the guard's doing.
      assert.ok(served(await raw(port, { target: '/_memsentry' })), `${form}: the page`)
      assert.ok(served(await raw(port, { target: '/_memsentry/data.json?since=1' })), form)
      for (const target of hostile) {
        const r = await raw(port, { target })
        assert.ok(!served(r), `${form} served ${JSON.stringify(target)}: ${r.status}`)
        // Passed on to the app (or refused by Node's parser), never answered by the dashboard.
        assert.ok(r.body === 'the app' || r.status >= 400, `${form} ${target}: ${r.status}`)
      }
    }
  })

  test('Host allow-list: loopback names and the listening address by default, others 403', async (t) => {
    const sentry = newSentry()
    const forms = await servers(t, { sentry })
    await waitFor(() => sentry.latest !== null)
    for (const [form, { port }] of Object.entries(forms)) {
      const allowed = [
        `127.0.0.1:${port}`,
        `localhost:${port}`,
        'LOCALHOST',
        `localhost.:${port}`,
        `[::1]:${port}`,
      ]
      for (const host of allowed) {
        const r = await raw(port, { target: '/_memsentry/data.json', host })
        assert.ok(served(r), `${form}: Host ${host} gets ${r.status}`)
      }
      // DNS rebinding: a name of the attacker's that now resolves to 127.0.0.1.
      const refused = [
        'evil.example',
        `evil.example:${port}`,
        `127.0.0.1.evil.example:${port}`,
        `localhost@evil.example`,
        `localhost:${port}@evil.example`,
        'evil.example/localhost',
        '',
        null,
      ]
      for (const host of refused) {
        for (const target of ['/_memsentry', '/_memsentry/data.json']) {
          const r = await raw(port, { target, host })
          assert.ok(!served(r), `${form}: Host ${JSON.stringify(host)} served ${target}`)
          assert.ok(r.status === 403 || r.status === 400, `${form} ${host}: ${r.status}`)
        }
      }
    }
  })

  test('a polluted Object.prototype is no option: its authorize and hosts let nobody in', async (t) => {
    const sentry = newSentry()
    await waitFor(() => sentry.latest !== null)
    // What a prototype pollution elsewhere in the app could plant, for as long as the requests
    // run: options are read from the object's own keys only.
    const planted = { authorize: () => true, hosts: ['*', 'evil.example'] }
    Object.assign(Object.prototype, planted)
    try {
      const forms = await servers(t, { sentry })
      for (const [form, { port }] of Object.entries(forms)) {
        assert.ok(served(await raw(port, { target: '/_memsentry/data.json' })), `${form}: served`)
        for (const target of ['/_memsentry', '/_memsentry/data.json']) {
          const r = await raw(port, { target, host: 'evil.example' })
          assert.equal(r.status, 403, `${form}: Host evil.example got ${r.status} for ${target}`)
        }
      }
    } finally {
      for (const key of Object.keys(planted)) delete Object.prototype[key]
    }
  })

  test('without authorize, only loopback peers are served; authorize lets others in', async (t) => {
    // A peer that is not loopback: this machine's own address on a real interface.
    const address = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a.family === 'IPv4' && !a.internal)?.address
    if (address === undefined) return t.skip('no non-loopback IPv4 address on this machine')
    const sentry = newSentry()
    await waitFor(() => sentry.latest !== null)
    const open = await servers(t, { sentry }, address)
    const allowed = await servers(t, { sentry, authorize: () => true }, address)
    for (const form of ['koa', 'http']) {
      for (const target of ['/_memsentry', '/_memsentry/data.json']) {
        // Host is the address the request came in on, so the Host check passes: the peer decides.
        const { port } = open[form]
        const refused = await raw(port, { target, host: `${address}:${port}`, address })
        assert.equal(refused.status, 403, `${form} ${target} from ${address}: ${refused.status}`)
        assert.ok(!served(refused))
        const spoofed = await raw(port, { target, host: 'localhost', address })
        assert.equal(spoofed.status, 403, `${form} ${target}, Host: localhost from ${address}`)
        const p = allowed[form].port
        const r = await raw(p, { target, host: `${address}:${p}`, address })
        assert.ok(served(r), `${form} ${target} with authorize: ${r.status}`)
      }
      // The app behind it still gets every other request.
      const other = await raw(open[form].port, { target: '/orders', address })
      assert.equal(other.body, 'the app')
    }
  })

  test('without authorize, a unix socket listener is served (its file mode says who connects)', async (t) => {
    const sentry = newSentry()
    await waitFor(() => sentry.latest !== null)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-dash-sock-'))
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
    const view = memoryDashboard.http({ sentry })
    const socketPath = path.join(dir, 'admin.sock')
    const server = http.createServer((req, res) => view(req, res, () => res.end('the app')))
    await new Promise((resolve) => server.listen(socketPath, resolve))
    t.after(() => new Promise((resolve) => server.close(resolve)))
    const r = await new Promise((resolve, reject) => {
      const req = http.get({ socketPath, path: '/_memsentry/data.json', agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode, body }))
      })
      req.on('error', reject)
    })
    assert.equal(r.status, 200, r.body.slice(0, 200))
    assert.ok(JSON.parse(r.body).series, 'the data')
    // A TCP peer handed to that server (protocol sniffing, a sticky-session balancer) is judged
    // by its own address, not by the unix listener.
    const address = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a.family === 'IPv4' && !a.internal)?.address
    if (address === undefined) return t.diagnostic('no non-loopback IPv4 address: TCP part skipped')
    const front = net.createServer((socket) => server.emit('connection', socket))
    await new Promise((resolve) => front.listen(0, address, resolve))
    t.after(() => new Promise((resolve) => front.close(resolve)))
    const { port } = front.address()
    const tcp = await raw(port, { target: '/_memsentry/data.json', host: 'localhost', address })
    assert.equal(tcp.status, 403, `a TCP peer from ${address} through the unix server`)
  })

  test("hosts: a name of one's own, or '*'; bad values throw naming the option", async (t) => {
    const sentry = newSentry()
    const named = await servers(t, { sentry, hosts: ['Admin.Internal'] })
    const any = await servers(t, { sentry, hosts: ['*'] })
    await waitFor(() => sentry.latest !== null)
    for (const form of ['koa', 'http']) {
      const { port } = named[form]
      assert.ok(served(await raw(port, { target: '/_memsentry', host: 'admin.internal:1' })))
      // The address the request came in on stays allowed.
      assert.ok(served(await raw(port, { target: '/_memsentry', host: `127.0.0.1:${port}` })))
      assert.equal(
        (await raw(port, { target: '/_memsentry', host: `localhost:${port}` })).status,
        403,
      )
      assert.ok(served(await raw(any[form].port, { target: '/_memsentry', host: 'evil.example' })))
    }
    assert.throws(() => memoryDashboard({ sentry, hosts: 'localhost' }), {
      name: 'TypeError',
      message: /hosts must be an array of host names, got string/,
    })
    assert.throws(() => memoryDashboard({ sentry, hosts: ['localhost:80'] }), {
      name: 'RangeError',
      message: /hosts\[0\] must be a host name without port .*got 'localhost:80'/,
    })
    assert.throws(() => memoryDashboard.http({ sentry, hosts: [''] }), RangeError)
    assert.throws(() => memoryDashboard({ sentry, hosts: ['a', 42] }), {
      name: 'TypeError',
      message: /hosts\[1\] must be a string, got number 42/,
    })
    // A wrong type is a TypeError, a value out of range a RangeError, each showing the value.
    const bad = [
      [{ path: 42 }, 'TypeError', /path must be a string, got number 42/],
      [{ path: 'x' }, 'RangeError', /path must be a path starting with '\/'.*got 'x'/],
      [{ path: '/a?b' }, 'RangeError', /got '\/a\?b'/],
      [{ pollMs: '2000' }, 'TypeError', /pollMs must be an integer, got string '2000'/],
      [{ pollMs: 50 }, 'RangeError', /pollMs must be an integer from 100 to 2147483647, got 50/],
      // Past setTimeout's longest delay the page's timer would fire at once.
      [{ pollMs: 2 ** 31 }, 'RangeError', /pollMs .*got 2147483648/],
      [{ pollMs: NaN }, 'RangeError', /pollMs .*got NaN/],
      [
        { includeCmdline: 'yes' },
        'TypeError',
        /includeCmdline must be a boolean, got string 'yes'/,
      ],
      [{ title: 7 }, 'TypeError', /title must be a string, got number 7/],
    ]
    for (const [options, name, message] of bad) {
      assert.throws(() => memoryDashboard({ sentry, ...options }), { name, message })
    }
    assert.throws(() => memoryDashboard({ sentry, authorize: 'yes' }), {
      name: 'TypeError',
      message: /authorize must be a function .*got string/,
    })
  })

  test('methods other than GET and HEAD: 405 with Allow; HEAD has no body', async (t) => {
    const sentry = newSentry()
    const forms = await servers(t, { sentry })
    await waitFor(() => sentry.latest !== null)
    for (const [form, { port }] of Object.entries(forms)) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
        for (const target of ['/_memsentry', '/_memsentry/data.json']) {
          const r = await raw(port, { method, target })
          assert.equal(r.status, 405, `${form} ${method} ${target}`)
          assert.equal(r.allow, 'GET, HEAD')
          assert.equal(r.body, '')
        }
      }
      const head = await raw(port, { method: 'HEAD', target: '/_memsentry' })
      assert.equal(head.status, 200)
      assert.equal(head.body, '')
      // A refused Host is refused whatever the method.
      const post = await raw(port, { method: 'POST', target: '/_memsentry', host: 'evil.example' })
      assert.equal(post.status, 403)
    }
  })

  test('authorize(req): served only when it returns (a promise of) true', async (t) => {
    const sentry = newSentry()
    const seen = []
    const forms = await servers(t, {
      sentry,
      authorize: async (req, ctx) => {
        seen.push(ctx === undefined ? 'http' : 'koa')
        if (req.headers['x-token'] === 'throw') throw new Error('auth backend down')
        return req.headers['x-token'] === 'ok'
      },
    })
    await waitFor(() => sentry.latest !== null)
    for (const [form, { port }] of Object.entries(forms)) {
      for (const target of ['/_memsentry', '/_memsentry/data.json']) {
        assert.equal((await raw(port, { target })).status, 403, `${form} ${target}: no token`)
        const bad = await raw(port, { target, headers: { 'x-token': 'nope' } })
        assert.equal(bad.status, 403)
        const broken = await raw(port, { target, headers: { 'x-token': 'throw' } })
        assert.equal(broken.status, 403, 'a throwing authorize refuses')
        assert.ok(served(await raw(port, { target, headers: { 'x-token': 'ok' } })), form)
      }
      // Other paths go on to the app without asking.
      assert.equal((await raw(port, { target: '/other' })).body, 'the app')
    }
    assert.ok(seen.includes('koa') && seen.includes('http'), `${seen}`)
  })

  test(
    'http form: a next() that throws is answered 500 and warned of, never an unhandled rejection',
    { timeout: 15_000 },
    async (t) => {
      const sentry = newSentry()
      const view = memoryDashboard.http({ sentry })
      const { port, close } = await listen((req, res) =>
        view(req, res, () => {
          throw new Error('a bug in the app')
        }),
      )
      t.after(close)
      const warnings = []
      const rejections = []
      const onWarning = (w) => warnings.push(w.message)
      const onRejection = (reason) => rejections.push(reason)
      process.on('warning', onWarning)
      process.on('unhandledRejection', onRejection)
      t.after(() => {
        process.off('warning', onWarning)
        process.off('unhandledRejection', onRejection)
      })
      const r = await raw(port, { target: '/orders' })
      assert.equal(r.status, 500)
      await waitFor(() => warnings.some((m) => m.includes('a bug in the app')), { timeoutMs: 2000 })
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepEqual(rejections, [])
      // The view itself still answers.
      assert.ok(served(await raw(port, { target: '/_memsentry' })))
    },
  )

  test('one view costs at most one history read per sample, thinned to MAX_POINTS', async (t) => {
    const sentry = newSentry({ intervalMs: 60_000 })
    const calls = []
    const history = sentry.history.bind(sentry)
    sentry.history = (options) => {
      calls.push(options)
      return history(options)
    }
    const forms = await servers(t, { sentry })
    await waitFor(() => sentry.latest !== null)
    for (const [form, { port }] of Object.entries(forms)) {
      calls.length = 0
      const pages = new Set()
      const since = Math.round(sentry.latest.time) - 1
      for (let i = 0; i < 20; i++) {
        pages.add((await raw(port, { target: '/_memsentry' })).body.length)
        assert.ok(served(await raw(port, { target: '/_memsentry/data.json' })))
        const polled = await raw(port, { target: `/_memsentry/data.json?since=${since}` })
        assert.equal(JSON.parse(polled.body).series.time.length, 1, form)
      }
      // One sample in all that time: the page, data.json and the polls' answer were each built
      // once.
      assert.equal(calls.length, 3, `${form}: ${calls.length} history reads for 60 views`)
      assert.ok(
        calls.every((o) => o?.maxPoints === MAX_POINTS),
        `${form}: ${JSON.stringify(calls)}`,
      )
    }
  })

  test('history({ maxPoints }) thins in native code and keeps the newest', async () => {
    const sentry = newSentry({ intervalMs: 10 })
    await waitFor(() => sentry.history().length >= 40, { timeoutMs: 10_000 })
    const all = sentry.history()
    const thin = sentry.history({ maxPoints: 10 })
    assert.ok(thin.length <= 11 && thin.length >= 5, `${thin.length} of ${all.length}`)
    assert.ok(thin.at(-1).time >= all.at(-1).time)
    const peak = Math.max(...all.map((s) => s.rss))
    assert.ok(thin.some((s) => s.rss === peak) || thin.at(-1).time > all.at(-1).time)
    assert.throws(() => sentry.history({ maxPoints: 0 }), {
      name: 'RangeError',
      message: /history maxPoints must be an integer in 1..=1000000, got 0/,
    })
    assert.throws(() => sentry.history({ maxPoints: '5' }), {
      name: 'TypeError',
      message: /history maxPoints must be an integer, got string '5'/,
    })
    assert.throws(() => sentry.history({ since: 0 }), {
      name: 'TypeError',
      message: /unknown option 'since' \(did you mean 'sinceMs'\?\)/,
    })
    assert.throws(() => sentry.history(null), { name: 'TypeError', message: /^memsentry: / })
    // Only own properties are options, as for the constructor.
    assert.equal(sentry.history(Object.create({ sinceMs: 'x' })).length > 0, true)
    assert.throws(() => sentry.history({ sinceMs: 'x' }), {
      name: 'TypeError',
      message: /history sinceMs must be a number, got string 'x'/,
    })
    assert.throws(() => sentry.history({ sinceMs: null }), {
      name: 'TypeError',
      message: /history sinceMs must be a number, got null/,
    })
  })
})

describe('the process arguments', () => {
  const SECRET = 'hunter2-api-key'
  const probe = `
    const { MemorySentry } = require(${JSON.stringify(require.resolve('../index.js'))})
    const report = require(${JSON.stringify(require.resolve('../integrations/report.js'))})
    const { memoryDashboard } = require(${JSON.stringify(require.resolve('../integrations/dashboard.js'))})
    const sentry = new MemorySentry({ intervalMs: 50, children: 'none' })
    setTimeout(async () => {
      const data = report.collectData(sentry)
      const html = report.renderHtml(data)
      const view = memoryDashboard.http({ sentry })
      const page = await new Promise((resolve) => {
        const req = { method: 'GET', url: '/_memsentry', headers: { host: 'localhost' }, socket: {} }
        const res = { writeHead() {}, end: (body) => resolve(String(body)) }
        view(req, res)
      })
      process.stdout.write(JSON.stringify({ script: data.process.script, data, html, page }))
      await sentry.close()
    }, 200)
  `

  test('node -e: the first argument (a secret) is in neither the report nor the live page', () => {
    const out = execFileSync(process.execPath, ['-e', probe, '--', `--api-key=${SECRET}`], {
      encoding: 'utf8',
      timeout: 30_000,
    })
    assert.ok(!out.includes(SECRET), 'the argument shows nowhere')
    assert.equal(JSON.parse(out).script, null)
  })

  test('a script file: its path is shown, its arguments are not', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-argv-'))
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
    const script = path.join(dir, 'app.js')
    fs.writeFileSync(script, probe)
    const out = execFileSync(process.execPath, [script, `--api-key=${SECRET}`], {
      encoding: 'utf8',
      timeout: 30_000,
    })
    assert.ok(!out.includes(SECRET))
    assert.equal(JSON.parse(out).script, script)
  })
})
