'use strict'

// Route naming and route attribution for the request loggers (memsentry/koa).
//
// Naming: a route is 'METHOD /path/template'. The router's template is used when there is one;
// otherwise ids in the path (numbers, UUIDs, hex strings of 16 or more characters) collapse to
// ':id', so '/orders/123' and '/orders/456' are the same route.
//
// Attribution: each observation is one stretch of time (GC to GC for the heap, sample to sample
// for RSS) with the number of requests per route served in it and how much memory grew
// meanwhile. Over the last 50 observations, the growth is fitted by non-negative least squares as
//   background × seconds + perRequest × (all requests) + Σ extra(route) × requests(route)
// where the background takes growth that follows time, not requests (a timer's cache), and
// perRequest takes what every request keeps alike (garbage promoted and not collected yet, a
// middleware's leak); a route stands out by its extra. Major GCs free in one observation what
// piled up over several: those outliers (beyond 3.5 robust standard deviations, each judged by
// its residual against the fit made without it) are left out and the rest refitted. A route is
// a suspect when its extra is significant (drop-one F test: the fit without it is worse by more
// than 3 sigma, as a t value for the fit's degrees of freedom) and perRequest + extra is over
// 1 KiB a request. Its bytesPerRequest is perRequest + extra.
//
// The fit needs the mix of routes to vary from one observation to the next, which real traffic
// does; where it does not, a route's growth is indistinguishable from the shared terms and no
// route is named. Two routes leaking alike look like all requests leaking: none is named.

const { typeError, rangeError, isObject, own, checkKnownKeys } = require('../lib/validation')

const WHO = 'memsentry/koa'
const FIT_KEYS = ['window', 'minT', 'minBytesPerRequest', 'minObservations']
// The most observations kept. estimate() runs on the main thread (at each batch end in a leak
// episode) in time about window × routes²: 8 ms at the default 50 with 100 routes, 76 ms at 500.
const MAX_WINDOW = 500

// One of the fit's options (as `attribution.<key>`, the Koa logger's name for it): undefined is
// the default; a non-number a TypeError; NaN, ±Infinity or out of range a RangeError. An
// unchecked window of Infinity or NaN never dropped an observation.
function readFitOption(
  options,
  key,
  defaultValue,
  { integer = false, min = 0, max = Infinity } = {},
) {
  const value = own(options, key)
  if (value === undefined) return defaultValue
  const path = `attribution.${key}`
  if (typeof value !== 'number') throw typeError(path, 'a number', value, WHO)
  if (
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    const expected = integer ? `an integer in ${min}..=${max}` : 'a non-negative finite number'
    throw rangeError(path, expected, value, WHO)
  }
  return value
}

const ID_SEGMENT =
  /\/(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,})(?=\/|$)/gi

/** '/orders/123/items/9f1c...e2' → '/orders/:id/items/:id'. */
function collapsePath(path) {
  return path.replace(ID_SEGMENT, '/:id')
}

/** The path of a request URL without its query string or fragment. */
function urlPath(url) {
  if (typeof url !== 'string' || url === '') return '/'
  let end = url.length
  const q = url.indexOf('?')
  if (q !== -1) end = q
  const h = url.indexOf('#')
  if (h !== -1 && h < end) end = h
  return end === url.length ? url : url.slice(0, end)
}

/**
 * The route name of a request: `template` (a router's path pattern, e.g. '/orders/:id') when
 * given, else the path with its ids collapsed.
 */
function routeName(method, path, template) {
  if (template != null && template !== '') return `${method} ${String(template)}`
  return `${method} ${collapsePath(urlPath(path))}`
}

const OTHER = 'other'

/**
 * Keeps at most `max` distinct route names: a service whose paths carry ids the collapsing misses
 * would otherwise grow the table (and the logs) without bound. When it is full, a new name takes
 * the place of the name least recently seen, provided that one was not seen in the current batch;
 * else the new name counts as 'other'. So junk paths sent early (a scanner) are evicted by real
 * routes in the next batch, while routes in use are never displaced within a batch.
 */
class RouteTable {
  /** name → the batch it was last seen in; in order of that batch (least recent first). */
  #known = new Map()
  #max
  #batch = 0

  constructor(max = 100) {
    this.#max = max
  }

  /**
   * The name to count `route` under: itself, or 'other' when the table has no room for it.
   * `onEvict(name)` hears of a name that gave way to it, so that counts kept under that name
   * can move to 'other' (they are bounded by the table only if they go with it).
   */
  intern(route, onEvict) {
    const seen = this.#known.get(route)
    if (seen !== undefined) {
      if (seen !== this.#batch) {
        // Moved to the end: the Map's first entry stays the least recently seen.
        this.#known.delete(route)
        this.#known.set(route, this.#batch)
      }
      return route
    }
    if (this.#known.size >= this.#max) {
      const [oldest, oldestBatch] = this.#known.entries().next().value
      if (oldestBatch === this.#batch) return OTHER
      this.#known.delete(oldest)
      onEvict?.(oldest)
    }
    this.#known.set(route, this.#batch)
    return route
  }

  /** A batch ended: names seen so far may now give way to new ones. */
  endBatch() {
    this.#batch++
  }

  get size() {
    return this.#known.size
  }
}

// ---------------------------------------------------------------------------------------------
// Small dense linear algebra (the systems are at most a few dozen unknowns).

/** Solves the symmetric positive definite system `a x = b` (Cholesky); null when singular. */
function solveSpd(a, b) {
  const n = b.length
  const l = a.map((row) => row.slice())
  for (let j = 0; j < n; j++) {
    let d = l[j][j]
    for (let k = 0; k < j; k++) d -= l[j][k] * l[j][k]
    if (!(d > 0)) return null
    d = Math.sqrt(d)
    l[j][j] = d
    for (let i = j + 1; i < n; i++) {
      let s = l[i][j]
      for (let k = 0; k < j; k++) s -= l[i][k] * l[j][k]
      l[i][j] = s / d
    }
  }
  const y = new Array(n)
  for (let i = 0; i < n; i++) {
    let s = b[i]
    for (let k = 0; k < i; k++) s -= l[i][k] * y[k]
    y[i] = s / l[i][i]
  }
  const x = new Array(n)
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]
    for (let k = i + 1; k < n; k++) s -= l[k][i] * x[k]
    x[i] = s / l[i][i]
  }
  return x
}

function subMatrix(g, idx) {
  return idx.map((i) => idx.map((j) => g[i][j]))
}

/**
 * Non-negative least squares on the normal equations (Lawson–Hanson active set): minimizes
 * |X b - y|² subject to b ≥ 0, given G = XᵀX and h = Xᵀy. Returns b.
 */
function nnls(g, h) {
  const n = h.length
  const b = new Array(n).fill(0)
  const passive = new Array(n).fill(false)
  const scale = Math.max(1e-300, ...h.map(Math.abs))
  const tol = 1e-10 * scale
  const gradient = () => h.map((hi, i) => hi - g[i].reduce((s, gij, j) => s + gij * b[j], 0))
  for (let outer = 0; outer < 3 * n + 10; outer++) {
    const w = gradient()
    let best = -1
    for (let i = 0; i < n; i++) {
      if (!passive[i] && w[i] > tol && (best === -1 || w[i] > w[best])) best = i
    }
    if (best === -1) break
    passive[best] = true
    for (let inner = 0; inner < 3 * n + 10; inner++) {
      const idx = []
      for (let i = 0; i < n; i++) if (passive[i]) idx.push(i)
      const s = solveSpd(
        subMatrix(g, idx),
        idx.map((i) => h[i]),
      )
      if (s === null) {
        // Numerically dependent with what is already in: leave it out.
        passive[best] = false
        break
      }
      if (s.every((v) => v > 0)) {
        b.fill(0)
        idx.forEach((i, k) => (b[i] = s[k]))
        break
      }
      let alpha = Infinity
      idx.forEach((i, k) => {
        if (s[k] <= 0) alpha = Math.min(alpha, b[i] / (b[i] - s[k]))
      })
      idx.forEach((i, k) => {
        b[i] += alpha * (s[k] - b[i])
        if (b[i] <= 0) {
          b[i] = 0
          passive[i] = false
        }
      })
      if (!passive.some(Boolean)) break
    }
  }
  return b
}

/**
 * The Student t value with `df` degrees of freedom that is as unlikely as `z` standard normal
 * deviations (Cornish–Fisher expansion; within 2% for df ≥ 5 at z = 3): a t-statistic over 3
 * means "3 sigma" whatever the number of observations, so few observations need a larger one
 * (df 10: 3.9; df 20: 3.4; df 50: 3.2).
 */
function criticalT(z, df) {
  if (!(df >= 1)) return Infinity
  const z3 = z ** 3
  const z5 = z ** 5
  const z7 = z ** 7
  return (
    z +
    (z3 + z) / (4 * df) +
    (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) +
    (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3)
  )
}

function median(values) {
  if (values.length === 0) return 0
  const v = [...values].sort((a, b) => a - b)
  const m = v.length >> 1
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2
}

/**
 * Non-negative least squares of y on the columns of x: `{ coef, residuals, t(j) }`, where t(j)
 * is column j's significance: how much worse the best non-negative fit gets without it, as the
 * t-statistic of a drop-one F test, sqrt((RSS₋ⱼ − RSS) / (RSS / df)). Unlike the usual standard
 * error of a refit on the non-zero terms, it accounts for the terms the constraint pinned at
 * zero: growth that the background, the any-route term or another route explains as well makes
 * a route not significant.
 */
function fitNonNegative(x, y) {
  const n = y.length
  const p = x[0]?.length ?? 0
  // Scale columns to unit RMS so that the tolerances and the small ridge mean the same for
  // seconds and for request counts; all-zero columns stay out.
  const norms = new Array(p).fill(0)
  for (const row of x) for (let j = 0; j < p; j++) norms[j] += row[j] * row[j]
  for (let j = 0; j < p; j++) norms[j] = Math.sqrt(norms[j] / Math.max(1, n))
  const live = []
  for (let j = 0; j < p; j++) if (norms[j] > 0) live.push(j)
  const q = live.length
  const xs = x.map((row) => live.map((j) => row[j] / norms[j]))
  const g = Array.from({ length: q }, () => new Array(q).fill(0))
  const h = new Array(q).fill(0)
  let yy = 0
  for (let k = 0; k < n; k++) {
    const row = xs[k]
    yy += y[k] * y[k]
    for (let i = 0; i < q; i++) {
      h[i] += row[i] * y[k]
      for (let j = 0; j < q; j++) g[i][j] += row[i] * row[j]
    }
  }
  for (let i = 0; i < q; i++) g[i][i] += 1e-9 * n

  // Residual sum of squares of a fit b: |y|² − 2 bᵀh + bᵀG b (the ridge is negligible).
  const rssOf = (b) => {
    let r = yy
    for (let i = 0; i < q; i++) {
      if (b[i] === 0) continue
      r -= 2 * b[i] * h[i]
      for (let j = 0; j < q; j++) r += b[i] * g[i][j] * b[j]
    }
    return Math.max(0, r)
  }
  const b = nnls(g, h)
  const rss = rssOf(b)
  const df = n - b.filter((v) => v > 0).length

  const coef = new Array(p).fill(0)
  live.forEach((j, i) => (coef[j] = b[i] / norms[j]))
  const residuals = xs.map((row, k) => y[k] - row.reduce((s, v, i) => s + v * b[i], 0))
  const t = (j) => {
    const i = live.indexOf(j)
    if (i === -1 || b[i] <= 0 || df < 2) return 0
    const keep = []
    for (let k = 0; k < q; k++) if (k !== i) keep.push(k)
    const sub = nnls(
      subMatrix(g, keep),
      keep.map((k) => h[k]),
    )
    const without = new Array(q).fill(0)
    keep.forEach((k, m) => (without[k] = sub[m]))
    const worse = Math.max(0, rssOf(without) - rss)
    if (rss === 0) return worse > 0 ? Infinity : 0
    return Math.sqrt(worse / (rss / df))
  }
  return { coef, residuals, t, df }
}

/**
 * The columns of a Gram matrix of unit-length columns that are independent of those before them
 * (an incremental Cholesky that skips a column whose part outside the span so far has a squared
 * length under 1e-10, i.e. within rounding of it): indices of a basis of their span.
 */
function independentColumns(g) {
  const basis = []
  const rows = [] // rows of the Cholesky factor, one per basis column
  for (let j = 0; j < g.length; j++) {
    const row = []
    let d = g[j][j]
    for (let m = 0; m < basis.length; m++) {
      let s = g[j][basis[m]]
      for (let k = 0; k < m; k++) s -= row[k] * rows[m][k]
      s /= rows[m][m]
      row.push(s)
      d -= s * s
    }
    if (d > 1e-10) {
      row.push(Math.sqrt(d))
      basis.push(j)
      rows.push(row)
    }
  }
  return basis
}

/**
 * The deleted residuals of a fit on `rows` of x: each row's residual against the fit made
 * without that row, e / (1 − leverage), the leverage taken on the fit's non-zero terms (exact
 * for least squares; for the non-negative fit, exact while leaving the row out keeps the same
 * terms at zero). A row whose leverage is 1 alone determines a term: its residual stays as is.
 */
function deletedResiduals(fit, x, rows) {
  const nonZero = []
  for (let j = 0; j < fit.coef.length; j++) if (fit.coef[j] > 0) nonZero.push(j)
  if (nonZero.length === 0) return fit.residuals.slice()
  // Columns scaled to unit length, so that seconds and request counts condition alike.
  const norms = nonZero.map((j) => Math.sqrt(rows.reduce((s, k) => s + x[k][j] ** 2, 0)) || 1)
  const gram = nonZero.map((i, a) =>
    nonZero.map((j, b) => rows.reduce((s, k) => s + x[k][i] * x[k][j], 0) / (norms[a] * norms[b])),
  )
  // The leverages are those of the projection onto the columns' span, so a basis of it will do;
  // it must be one: each request counts in one route column (or 'other') and in the any-route
  // column, so that column is their sum whenever the fit keeps them all, and the inverse of a
  // singular Gram matrix is rounding noise (leverages summing to 2.3 for rank 3), which flagged
  // sound observations as outliers and named a route in a healthy run.
  const basis = independentColumns(gram)
  const active = basis.map((a) => nonZero[a])
  const g = subMatrix(gram, basis)
  const scale = basis.map((a) => norms[a])
  const inverse = active.map((_, a) =>
    solveSpd(
      g,
      active.map((_, b) => (a === b ? 1 : 0)),
    ),
  )
  if (inverse.includes(null)) return fit.residuals.slice()
  return rows.map((k, i) => {
    const v = active.map((j, a) => x[k][j] / scale[a])
    const leverage = v.reduce(
      (s, va, a) => s + va * v.reduce((t, vb, b) => t + inverse[a][b] * vb, 0),
      0,
    )
    return leverage < 1 - 1e-9 ? fit.residuals[i] / (1 - leverage) : fit.residuals[i]
  })
}

// ---------------------------------------------------------------------------------------------

const BACKGROUND = Symbol('background')
const ANY_ROUTE = Symbol('any route')

/**
 * Estimates each route's memory growth per request from observations
 * `{ counts: { [route]: requests }, growthBytes, seconds }`, over the last `window` of them.
 */
class RouteAttribution {
  #window
  #observations = []

  /**
   * @param {object} [options]
   * @param {number} [options.window=50] observations kept (the oldest drop out), 1..=500
   * @param {number} [options.minT=3] significance a suspect needs, in standard normal deviations
   *   (the t-statistic must exceed the t value as unlikely with the fit's degrees of freedom), >= 0
   * @param {number} [options.minBytesPerRequest=1024] bytes a request a suspect must exceed, >= 0
   * @param {number} [options.minObservations=8] fewer observations than this: no estimate;
   *   1..=window
   * Throws a TypeError or RangeError naming `attribution.<key>` on a bad value or unknown key.
   */
  constructor(options = {}) {
    if (!isObject(options)) throw typeError('attribution', 'an object', options, WHO)
    checkKnownKeys(options, FIT_KEYS, 'attribution.', WHO)
    const window = readFitOption(options, 'window', 50, { integer: true, min: 1, max: MAX_WINDOW })
    const minObservations = readFitOption(options, 'minObservations', 8, {
      integer: true,
      min: 1,
      max: MAX_WINDOW,
    })
    // A window that cannot hold minObservations would never give an estimate.
    if (window < minObservations) {
      throw own(options, 'window') === undefined
        ? rangeError(
            'attribution.minObservations',
            `at most attribution.window (${window})`,
            minObservations,
            WHO,
          )
        : rangeError(
            'attribution.window',
            `at least attribution.minObservations (${minObservations})`,
            window,
            WHO,
          )
    }
    this.#window = window
    this.minT = readFitOption(options, 'minT', 3)
    this.minBytesPerRequest = readFitOption(options, 'minBytesPerRequest', 1024)
    this.minObservations = minObservations
  }

  get size() {
    return this.#observations.length
  }

  /** Adds one observation; `counts` is a plain object or a Map of route → requests. */
  add({ counts, growthBytes, seconds = 0 }) {
    if (!Number.isFinite(growthBytes)) return
    const entries = counts instanceof Map ? [...counts] : Object.entries(counts)
    const map = new Map()
    for (const [route, n] of entries) if (n > 0) map.set(route, n)
    this.#observations.push({
      counts: map,
      growthBytes,
      seconds: Number.isFinite(seconds) && seconds > 0 ? seconds : 0,
    })
    if (this.#observations.length > this.#window) this.#observations.shift()
  }

  /** The observations in the window, oldest first (copies). */
  get observations() {
    return this.#observations.map((o) => ({ ...o, counts: Object.fromEntries(o.counts) }))
  }

  clear() {
    this.#observations.length = 0
  }

  /**
   * The fit: `routes: [{ route, bytesPerRequest, t, requests }]` for every route in the window,
   * largest first, where t is the significance of the route's growth beyond what all routes
   * share (0 when there is none); `perRequest`, the bytes every request keeps whatever its route;
   * `background`, bytes per second not tied to requests; `observations` used and `outliers` left
   * out. No routes with too few observations.
   */
  estimate() {
    const obs = this.#observations
    const n = obs.length
    const result = {
      routes: [],
      perRequest: 0,
      background: 0,
      observations: n,
      outliers: 0,
      tCritical: Infinity,
    }
    if (n < this.minObservations) return result

    // The columns: background (seconds), any route (all requests), then routes by traffic. At
    // most about n/3 route columns, so the fit keeps degrees of freedom; the quietest routes
    // share the 'other' column. The any-route term takes growth that follows every request
    // alike (garbage promoted to the old generation and not collected yet, a leak in a
    // middleware): a route stands out only by growth beyond what all routes share.
    const totals = new Map()
    for (const o of obs) for (const [r, c] of o.counts) totals.set(r, (totals.get(r) ?? 0) + c)
    const byTraffic = [...totals].sort((a, b) => b[1] - a[1]).map(([r]) => r)
    let maxRoutes = Math.max(2, Math.floor((n - 3) / 3))
    if (byTraffic.length === maxRoutes + 1) maxRoutes++ // an 'other' column of one route is that route
    const shared = byTraffic.length > 1 ? [ANY_ROUTE] : []
    const columns = [BACKGROUND, ...shared, ...byTraffic.slice(0, maxRoutes)]
    const indexOf = new Map(columns.map((r, i) => [r, i]))
    if (byTraffic.length > maxRoutes) {
      let otherTotal = indexOf.has(OTHER) ? totals.get(OTHER) : 0
      if (!indexOf.has(OTHER)) {
        indexOf.set(OTHER, columns.length)
        columns.push(OTHER)
      }
      const other = indexOf.get(OTHER)
      for (const r of byTraffic.slice(maxRoutes)) {
        indexOf.set(r, other)
        otherTotal += totals.get(r)
      }
      totals.set(OTHER, otherTotal)
    }

    const x = obs.map((o) => {
      const row = new Array(columns.length).fill(0)
      row[0] = o.seconds
      for (const [r, c] of o.counts) {
        row[indexOf.get(r)] += c
        if (shared.length > 0) row[1] += c
      }
      return row
    })
    const y = obs.map((o) => o.growthBytes)

    // A first fit on every observation, then refits without the outliers: a major GC frees in
    // one observation the garbage that piled up over several (a large drop), which is no
    // route's doing, and a GC that lands in the middle of a burst of promotions reads high.
    // Outliers are deleted residuals (each observation against the fit made without it) beyond
    // 3.5 robust standard deviations (1.4826 × their median absolute value). The fit's own
    // residuals would hide the outlier that pulled the fit towards itself: one observation
    // three times the others, among a dozen, spreads its error over all of them. Up to three
    // rounds, at most a quarter of the observations in all.
    const out = new Set()
    const maxOut = Math.floor(n / 4)
    let kept = x.map((_, k) => k)
    let fit = fitNonNegative(x, y)
    for (let round = 0; round < 3 && out.size < maxOut; round++) {
      const deleted = deletedResiduals(fit, x, kept)
      const spread = 1.4826 * median(deleted.map(Math.abs))
      if (!(spread > 0)) break
      const worst = deleted
        .map((r, i) => [Math.abs(r), kept[i]])
        .filter(([a]) => a > 3.5 * spread)
        .sort((a, b) => b[0] - a[0])
        .slice(0, maxOut - out.size)
      if (worst.length === 0) break
      for (const [, k] of worst) out.add(k)
      kept = kept.filter((k) => !out.has(k))
      fit = fitNonNegative(
        kept.map((k) => x[k]),
        kept.map((k) => y[k]),
      )
    }
    result.outliers = out.size
    result.observations = kept.length

    const anyIndex = shared.length > 0 ? 1 : -1
    result.perRequest = anyIndex === -1 ? 0 : fit.coef[anyIndex]
    result.background = fit.coef[0]
    result.backgroundT = fit.t(0)
    result.tCritical = criticalT(this.minT, fit.df)
    for (let j = anyIndex === -1 ? 1 : 2; j < columns.length; j++) {
      result.routes.push({
        route: columns[j],
        bytesPerRequest: result.perRequest + fit.coef[j],
        t: fit.t(j),
        requests: totals.get(columns[j]),
      })
    }
    result.routes.sort((a, b2) => b2.bytesPerRequest - a.bytesPerRequest)
    return result
  }

  /**
   * Routes whose growth per request is significantly positive: `[{ route, bytesPerRequest }]`,
   * largest first (bytesPerRequest rounded to whole bytes).
   */
  suspects() {
    const estimate = this.estimate()
    return estimate.routes
      .filter((r) => r.t > estimate.tCritical && r.bytesPerRequest > this.minBytesPerRequest)
      .map((r) => ({ route: r.route, bytesPerRequest: Math.round(r.bytesPerRequest) }))
  }
}

module.exports = {
  OTHER,
  routeName,
  collapsePath,
  urlPath,
  RouteTable,
  RouteAttribution,
  nnls,
  criticalT,
  OTHER,
}
