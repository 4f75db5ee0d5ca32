// Types of memsentry/koa: a memory report per batch of requests, for Koa and node:http/Express.
/// <reference types="node" />
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { LeakEvent, LeakSite, MemorySentry } from '../index'

/** One batch's report; figures the sentry does not have are left out. */
export interface BatchReport {
  requests: number
  /** The batch's length, ms. */
  ms: number
  reqPerSec: number | null
  /** null only when no RSS could be read at all (out of file descriptors, say). */
  rss: number | null
  rssDelta: number | null
  heapUsed?: number
  heapDelta?: number
  treeRss?: number
  workingSet?: number
  /** Requests per route name ('GET /orders/:id'), with `routes` on. */
  routes?: Record<string, number>
  /** During a leak episode: the routes whose requests the growth follows. */
  suspectRoutes?: SuspectRoute[]
  /** After a 'leak-diagnosis', until 'leak-end': its top three allocation sites (the code). */
  leakSites?: Pick<LeakSite, 'functionName' | 'url' | 'line' | 'column' | 'share'>[]
}

export interface SuspectRoute {
  route: string
  bytesPerRequest: number
}

export interface AttributionOptions {
  /** Shortest observation, ms; default 1000 for 'heap', 4 sampling periods for 'rss'. */
  minObservationMs?: number
  /** Observations kept, an integer in 1..=500. Default 50. */
  window?: number
  /** Significance a suspect needs, in standard normal deviations (>= 0). Default 3. */
  minT?: number
  /** Bytes a request a suspect must exceed (>= 0). Default 1024. */
  minBytesPerRequest?: number
  /** Fewer observations than this: no estimate; an integer in 1..=window. Default 8. */
  minObservations?: number
}

export interface MemoryLoggerOptions {
  /**
   * The sentry to read; default one of its own (intervalMs 1000, leak and heap on), started by
   * the first request and closed with the server that served it.
   */
  sentry?: MemorySentry
  /** Requests per batch. Default 1000, unless only `everyMs` is given. */
  every?: number
  /** Also end a batch after this many ms (at most 2147483647, setTimeout's longest). */
  everyMs?: number
  /** Receives each report; default one line on console.log. */
  log?: ((report: BatchReport) => void) | { info(report: BatchReport): void }
  /** Count requests per route and attribute leaks to routes. Default true. */
  routes?: boolean
  /** Distinct routes kept. Default 100. */
  maxRoutes?: number
  /** The growth route attribution fits. Default 'heap'. */
  metric?: 'heap' | 'rss'
  attribution?: AttributionOptions
}

export interface RouteEstimate {
  routes: { route: string; bytesPerRequest: number; t: number; requests: number }[]
  perRequest: number
  background: number
  observations: number
  outliers: number
  tCritical: number
}

export interface RouteAttribution {
  readonly size: number
  estimate(): RouteEstimate
  suspects(): SuspectRoute[]
  clear(): void
}

/** What both forms carry besides being a middleware. */
export interface LoggerControls {
  readonly sentry: MemorySentry
  readonly attribution: RouteAttribution
  /** Whether the sentry is in a leak episode now. */
  readonly leaking: boolean
  /** Routes the memory growth follows, now. */
  suspects(): SuspectRoute[]
  /** Ends the current batch now and logs its report; null when it has no request. */
  flush(): BatchReport | null
  /** Stops reporting (and closes the sentry if the logger made it). */
  close(): void
}

/** The part of a Koa context the logger reads. */
export interface KoaContextLike {
  method: string
  path: string
  req: IncomingMessage
}

export type KoaMemoryLogger = ((
  ctx: KoaContextLike,
  next: () => Promise<unknown>,
) => Promise<void>) &
  LoggerControls

export type HttpMemoryLogger = ((
  req: IncomingMessage,
  res: ServerResponse,
  next?: (err?: unknown) => void,
) => void) &
  LoggerControls

export declare const memoryLogger: {
  /** Koa middleware that logs a memory report per batch of requests. */
  (options?: MemoryLoggerOptions): KoaMemoryLogger
  /** The same for node:http and Express. */
  http(options?: MemoryLoggerOptions): HttpMemoryLogger
}

/** The 'leak' event as the logger leaves it: with `routes` when attribution names some. */
export type LeakEventWithRoutes = LeakEvent & { routes?: SuspectRoute[] }
