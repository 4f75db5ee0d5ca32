// Types of memsentry/dashboard: the report page served live by your own app.
/// <reference types="node" />
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MemorySentry } from '../index'

export interface DashboardOptions {
  sentry: MemorySentry
  /** Where the page is served. Default '/_memsentry'. */
  path?: string
  /** Children's command lines and the process's arguments. Default false. */
  includeCmdline?: boolean
  /** How often the page polls for new samples, ms (100 to 2147483647, setTimeout's longest). Default 2000. */
  pollMs?: number
  title?: string
  /** Host names answered (port ignored), against DNS rebinding, not access control; '*' for any. Default localhost, 127.0.0.1, [::1] and the local address. */
  hosts?: string[]
  /** Called for every request it would serve (Koa's ctx second); serves only on true. Without it, only loopback peers and unix-socket clients are served: set it behind a same-host proxy (TCP or unix socket), where every peer is the proxy. */
  authorize?: (req: IncomingMessage, ctx?: unknown) => boolean | Promise<boolean>
}

/** The part of a Koa context the dashboard uses. */
export interface KoaContextLike {
  req: IncomingMessage
  url: string
  status: number
  body: unknown
  set(headers: Record<string, string>): void
}

export declare const memoryDashboard: {
  /** Koa middleware serving the live view at `path`. */
  (
    options: DashboardOptions,
  ): (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<unknown>
  /** The same for node:http and Express; other requests go to `next` (else 404). */
  http(
    options: DashboardOptions,
  ): (req: IncomingMessage, res: ServerResponse, next?: () => void) => void
}
