// Types of memsentry/prometheus: a sentry's figures as prom-client metrics, read at scrape time.
import type { Metric, Registry } from 'prom-client'
import type { MemorySentry } from '../index'

export interface CollectOptions {
  /** Default: prom-client's global `register`. */
  registry?: Registry
  /** Metric name prefix. Default 'memsentry_'. */
  prefix?: string
}

export interface Collection {
  registry: Registry
  /** By full metric name. */
  metrics: Record<string, Metric>
  /** Unregisters the metrics; idempotent. */
  close(): void
}

/** Registers the metrics; a second call on the same registry and prefix replaces the first. */
export declare function collect(sentry: MemorySentry, options?: CollectOptions): Collection
