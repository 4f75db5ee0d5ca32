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
// never on a public one. Command lines are left out unless `includeCmdline: true`.
//
// Events shown are those emitted after the dashboard was created (it calls report.attach(sentry))
// or after an earlier attach / writeReport.

const { attach, collectData, renderHtml } = require('./report')

const DEFAULT_PATH = '/_memsentry'
const DEFAULT_POLL_MS = 2000

function checkOptions(options) {
  if (options == null || typeof options !== 'object') {
    throw new TypeError('memsentry/dashboard: memoryDashboard({ sentry }) needs an options object')
  }
  const known = ['sentry', 'path', 'includeCmdline', 'pollMs', 'title']
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(`memsentry/dashboard: unknown option '${key}'`)
    }
  }
  const {
    sentry,
    path = DEFAULT_PATH,
    includeCmdline = false,
    pollMs = DEFAULT_POLL_MS,
    title,
  } = options
  if (sentry == null || typeof sentry.history !== 'function' || typeof sentry.on !== 'function') {
    throw new TypeError('memsentry/dashboard: sentry must be a MemorySentry')
  }
  if (typeof path !== 'string' || !path.startsWith('/') || /[?#]/.test(path)) {
    throw new TypeError(
      `memsentry/dashboard: path must be a string starting with '/', got ${JSON.stringify(path)}`,
    )
  }
  if (typeof includeCmdline !== 'boolean') {
    throw new TypeError(
      `memsentry/dashboard: includeCmdline must be a boolean, got ${typeof includeCmdline}`,
    )
  }
  if (typeof pollMs !== 'number' || !Number.isInteger(pollMs) || pollMs < 100) {
    throw new RangeError(`memsentry/dashboard: pollMs must be an integer >= 100, got ${pollMs}`)
  }
  if (title !== undefined && typeof title !== 'string') {
    throw new TypeError(`memsentry/dashboard: title must be a string, got ${typeof title}`)
  }
  // '/_memsentry/' and '/_memsentry' are the same page.
  const base = path.length > 1 ? path.replace(/\/+$/, '') : ''
  return { sentry, base, includeCmdline, pollMs, title }
}

const HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
}
const PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; frame-ancestors 'none'"

/**
 * The request handling shared by both forms: returns { status, headers, body } for a request the
 * dashboard answers, or null to pass it on.
 */
function makeResponder(options) {
  const { sentry, base, includeCmdline, pollMs, title } = checkOptions(options)
  attach(sentry)
  const pagePaths = new Set([base || '/', `${base}/`])
  const dataPath = `${base}/data.json`
  const live = { pollMs }
  return function respond(method, pathname, query) {
    const isPage = pagePaths.has(pathname)
    if (!isPage && pathname !== dataPath) return null
    if (method !== 'GET' && method !== 'HEAD') {
      return { status: 405, headers: { ...HEADERS, Allow: 'GET, HEAD' }, body: '' }
    }
    if (isPage) {
      const html = renderHtml(collectData(sentry, { includeCmdline, title, live }))
      return {
        status: 200,
        headers: {
          ...HEADERS,
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Security-Policy': PAGE_CSP,
        },
        body: html,
      }
    }
    const since = Number(query.get('since'))
    const sinceMs = query.has('since') && Number.isFinite(since) && since > 0 ? since : undefined
    const data = collectData(sentry, { includeCmdline, title, sinceMs, live })
    return {
      status: 200,
      headers: { ...HEADERS, 'Content-Type': 'application/json; charset=utf-8' },
      body: JSON.stringify(data),
    }
  }
}

/** Koa middleware serving the live view at `path` (default '/_memsentry'). */
function memoryDashboard(options) {
  const respond = makeResponder(options)
  return async function memsentryDashboard(ctx, next) {
    const answer = respond(ctx.method, ctx.path, new URLSearchParams(ctx.querystring))
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
    let url
    try {
      url = new URL(req.url, 'http://localhost')
    } catch {
      url = null
    }
    const answer = url && respond(req.method, url.pathname, url.searchParams)
    if (!answer) {
      if (typeof next === 'function') return next()
      res.statusCode = 404
      res.end()
      return
    }
    const body = Buffer.from(answer.body, 'utf8')
    res.writeHead(answer.status, { ...answer.headers, 'Content-Length': body.length })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
}

module.exports = { memoryDashboard }
