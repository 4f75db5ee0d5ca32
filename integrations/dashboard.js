'use strict'

// The live memory view: the report page of ./report.js, served by your own app, updating itself.
//
//   const { memoryDashboard } = require('memsentry/dashboard')
//   adminApp.use(memoryDashboard({ sentry }))                 // Koa: GET /_memsentry
//   const view = memoryDashboard.http({ sentry })             // node:http or Express
//   http.createServer((req, res) => view(req, res, () => handle(req, res)))
//
// GET `path` serves the page with the history so far; the page then polls
// `path + '/data.json?since=<ms>'` every `pollMs` for the newer samples (and the events, limit,
// thresholds and newest figures, whole) and redraws. Anything else goes to `next()`.
//
// SECURITY: this exposes the process's memory figures, its pid, its executable and main script,
// its children and (with includeCmdline) their command lines. It binds to nothing itself: mount
// it only on an internal or admin listener (127.0.0.1, a private port, behind authentication),
// never on a public one. Command lines are left out unless `includeCmdline: true`. Besides:
// - The request target is matched as sent, byte for byte (no decoding, no '..' or '//'
//   resolution, no absolute-form `http://host/...`), so a guard on the raw path in front of it
//   (`app.use('/_memsentry', auth)`, a proxy's prefix rule) sees every request it serves.
// - `hosts`: the Host names it answers (port ignored), against DNS rebinding, where a web page
//   whose domain now resolves to 127.0.0.1 reads the dashboard from the user's browser. Default:
//   localhost, 127.0.0.1, [::1] and the address the request came in on; a name of your own
//   (`admin.internal`) must be listed; '*' answers any. Others get 403.
// - `authorize(req)`: called for every request it would serve (with Koa's ctx as a second
//   argument); it serves only when that returns true (or a promise of true), else 403.
//   **Without it, only loopback peers are served** (127.0.0.0/8, ::1, a unix socket: a local
//   curl, `kubectl port-forward`); others get 403. Behind a proxy on the same host, over TCP or
//   a unix socket, every peer is the proxy, so set `authorize` there; in a container, a browser
//   through `docker run -p` comes from the bridge (172.17.0.1) and gets 403. `hosts` is no
//   access control: any client can send `Host: localhost`. `authorize: () => true` serves any
//   peer, on purpose.
// - A view costs at most one rebuild per sample: the page and data.json are cached until the
//   next sample or event, and the history is thinned to MAX_POINTS in native code.
//
// Events shown are those emitted after the dashboard was created (it calls report.attach(sentry))
// or after an earlier attach / writeReport.

const net = require('node:net')
const { attach, collectData, eventCount, renderHtml } = require('./report')
const {
  MAX_TIMER_MS,
  checkKnownKeys,
  ownOptions,
  rangeError,
  typeError,
} = require('../lib/validation')

const DEFAULT_PATH = '/_memsentry'
const DEFAULT_POLL_MS = 2000
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]']
const WHO = 'memsentry/dashboard'

function checkOptions(options) {
  if (options == null || typeof options !== 'object') {
    throw new TypeError('memsentry/dashboard: memoryDashboard({ sentry }) needs an options object')
  }
  const known = ['sentry', 'path', 'includeCmdline', 'pollMs', 'title', 'hosts', 'authorize']
  checkKnownKeys(options, known, '', WHO)
  const {
    sentry,
    path = DEFAULT_PATH,
    includeCmdline = false,
    pollMs = DEFAULT_POLL_MS,
    title,
    hosts,
    authorize,
  } = ownOptions(options)
  if (sentry == null || typeof sentry.history !== 'function' || typeof sentry.on !== 'function') {
    throw new TypeError('memsentry/dashboard: sentry must be a MemorySentry')
  }
  if (typeof path !== 'string') throw typeError('path', 'a string', path, WHO)
  if (!path.startsWith('/') || /[?#]/.test(path)) {
    throw rangeError('path', "a path starting with '/', without '?' or '#'", path, WHO)
  }
  if (typeof includeCmdline !== 'boolean') {
    throw typeError('includeCmdline', 'a boolean', includeCmdline, WHO)
  }
  if (typeof pollMs !== 'number') throw typeError('pollMs', 'an integer', pollMs, WHO)
  // The page polls with it (setTimeout).
  if (!Number.isInteger(pollMs) || pollMs < 100 || pollMs > MAX_TIMER_MS) {
    throw rangeError('pollMs', `an integer from 100 to ${MAX_TIMER_MS}`, pollMs, WHO)
  }
  if (title !== undefined && typeof title !== 'string') {
    throw typeError('title', 'a string', title, WHO)
  }
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw typeError('authorize', 'a function (req) => boolean', authorize, WHO)
  }
  // '/_memsentry/' and '/_memsentry' are the same page.
  const base = path.length > 1 ? path.replace(/\/+$/, '') : ''
  return { sentry, base, includeCmdline, pollMs, title, hosts: checkHosts(hosts), authorize }
}

/** The `hosts` option as a Set of lowercase names, or null for any host ('*'). */
function checkHosts(hosts) {
  if (hosts === undefined) return new Set(LOOPBACK_HOSTS)
  if (!Array.isArray(hosts)) {
    throw typeError('hosts', 'an array of host names', hosts, WHO)
  }
  for (const [i, h] of hosts.entries()) {
    if (typeof h !== 'string') throw typeError(`hosts[${i}]`, 'a string', h, WHO)
    if (h === '' || /[\s/:@]/.test(h.replace(/^\[[0-9a-f:.]+\]$/i, ''))) {
      const expected = "a host name without port such as 'admin.internal' or '[::1]', or '*'"
      throw rangeError(`hosts[${i}]`, expected, h, WHO)
    }
  }
  if (hosts.includes('*')) return null
  return new Set(hosts.map((h) => h.toLowerCase().replace(/\.$/, '')))
}

/**
 * Whether the peer of a request is this machine: 127.0.0.0/8 or ::1 (also IPv4-mapped), or, with
 * no IP address, a client of a unix socket listener (the socket file's mode says who connects).
 * The peer's address is asked first: a TCP socket handed to a server that listens on a unix
 * path (`server.emit('connection', socket)`) is not local for that.
 */
function fromLoopback(req) {
  const socket = req?.socket
  const addr = socket?.remoteAddress
  if (typeof addr !== 'string') {
    // Only a live net.Socket: any Duplex handed to emit('connection') has no address either.
    return (
      socket instanceof net.Socket &&
      !socket.destroyed &&
      typeof socket.server?.address?.() === 'string'
    )
  }
  const v4 = addr.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')
  return /^127\.\d+\.\d+\.\d+$/.test(v4) || v4 === '::1'
}

/** The host name of a Host header, lowercase, without port or trailing dot; null if malformed. */
function hostName(header) {
  if (typeof header !== 'string') return null
  const m = /^(\[[0-9a-f:.]+\]|[^\s:/@[\]]+)(?::\d*)?$/i.exec(header.trim())
  return m ? m[1].toLowerCase().replace(/\.$/, '') : null
}

/** The address the request came in on, as it would appear in a Host header. */
function localHost(req) {
  const addr = req?.socket?.localAddress
  if (typeof addr !== 'string' || addr === '') return null
  const v4 = addr.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')
  return v4.includes(':') ? `[${v4.toLowerCase()}]` : v4
}

/** The path of a raw request target: origin-form only ('/...'), up to '?' or '#'; else null. */
function rawPath(target) {
  if (typeof target !== 'string' || !target.startsWith('/')) return null
  const end = target.search(/[?#]/)
  return end === -1 ? target : target.slice(0, end)
}

function rawQuery(target) {
  const q = target.indexOf('?')
  if (q === -1) return new URLSearchParams()
  const h = target.indexOf('#', q)
  return new URLSearchParams(target.slice(q + 1, h === -1 ? undefined : h))
}

const HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
}
const PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; frame-ancestors 'none'"

// `?since=` answers kept between two samples (the oldest goes first).
const MAX_SINCE_ANSWERS = 8

const refused = (status, extra = {}) => ({ status, headers: { ...HEADERS, ...extra }, body: '' })

/**
 * The request handling shared by both forms: `respond(req, target, ctx?)` resolves to
 * { status, headers, body } for a request the dashboard answers, or null to pass it on. `target`
 * is the raw request target (req.url as received, after any mount prefix was taken off).
 */
function makeResponder(options) {
  const { sentry, base, includeCmdline, pollMs, title, hosts, authorize } = checkOptions(options)
  attach(sentry)
  const pagePaths = new Set([base || '/', `${base}/`])
  const dataPath = `${base}/data.json`
  const live = { pollMs }
  // The page, the whole data.json and the newest `?since=` answers, kept until the next sample
  // or event: open views poll with the same `since` (the newest sample they have) between two
  // samples, and each answer may hold up to MAX_POINTS samples.
  let cached = { latest: undefined, events: -1, page: null, data: null, since: new Map() }
  const fresh = () => {
    const latest = sentry.latest
    const events = eventCount(sentry)
    if (cached.latest !== latest || cached.events !== events) {
      cached = { latest, events, page: null, data: null, since: new Map() }
    }
    return cached
  }

  return async function respond(req, target, ctx) {
    const pathname = rawPath(target)
    if (pathname === null) return null
    const isPage = pagePaths.has(pathname)
    if (!isPage && pathname !== dataPath) return null
    if (hosts !== null) {
      const host = hostName(req.headers?.host)
      if (host === null || !(hosts.has(host) || host === localHost(req))) return refused(403)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return refused(405, { Allow: 'GET, HEAD' })
    if (authorize === undefined) {
      if (!fromLoopback(req)) return refused(403)
    } else {
      let allowed = false
      try {
        allowed = (await authorize(req, ctx)) === true
      } catch {
        allowed = false
      }
      if (!allowed) return refused(403)
    }
    if (isPage) {
      const c = fresh()
      c.page ??= renderHtml(collectData(sentry, { includeCmdline, title, live }))
      return {
        status: 200,
        headers: {
          ...HEADERS,
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Security-Policy': PAGE_CSP,
        },
        body: c.page,
      }
    }
    const query = rawQuery(target)
    const since = Number(query.get('since'))
    const sinceMs = query.has('since') && Number.isFinite(since) && since > 0 ? since : undefined
    let body
    if (sinceMs === undefined) {
      const c = fresh()
      c.data ??= JSON.stringify(collectData(sentry, { includeCmdline, title, live }))
      body = c.data
    } else {
      const c = fresh()
      body = c.since.get(sinceMs)
      if (body === undefined) {
        body = JSON.stringify(collectData(sentry, { includeCmdline, title, sinceMs, live }))
        // Bounded: a client may send any number of distinct values.
        if (c.since.size >= MAX_SINCE_ANSWERS) c.since.delete(c.since.keys().next().value)
        c.since.set(sinceMs, body)
      }
    }
    return {
      status: 200,
      headers: { ...HEADERS, 'Content-Type': 'application/json; charset=utf-8' },
      body,
    }
  }
}

/** Koa middleware serving the live view at `path` (default '/_memsentry'). */
function memoryDashboard(options) {
  const respond = makeResponder(options)
  return async function memsentryDashboard(ctx, next) {
    const answer = await respond(ctx.req, ctx.url, ctx)
    if (answer === null) return next()
    ctx.status = answer.status
    ctx.set(answer.headers)
    ctx.body = answer.body
  }
}

/**
 * The same for node:http or Express: `(req, res, next)`; `next` is called for every other
 * request (when it is given; else those get a 404).
 */
memoryDashboard.http = function http(options) {
  const respond = makeResponder(options)
  return function memsentryDashboardHttp(req, res, next) {
    respond(req, req.url, undefined)
      .then((answer) => {
        if (!answer) {
          if (typeof next === 'function') return next()
          res.statusCode = 404
          res.end()
          return
        }
        const body = Buffer.from(answer.body, 'utf8')
        res.writeHead(answer.status, { ...answer.headers, 'Content-Length': body.length })
        res.end(req.method === 'HEAD' ? undefined : body)
      })
      // A bug of ours, a failed write, or a `next` that throws (it runs in this promise): an
      // unhandled rejection would end the app's process, so it is answered and warned of.
      .catch((err) => {
        if (!res.headersSent) res.writeHead(500, HEADERS)
        if (!res.writableEnded) res.end()
        process.emitWarning(`memsentry/dashboard: ${err?.message ?? err}`)
      })
  }
}

module.exports = { memoryDashboard }
