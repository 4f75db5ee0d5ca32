// Types of memsentry/otel: a sentry's figures through an OpenTelemetry Meter.
import type { Meter } from '@opentelemetry/api'
import type { MemorySentry } from '../index'

export interface ObserveOptions {
  /** Default: `metrics.getMeter('memsentry')` of @opentelemetry/api. */
  meter?: Meter
  /** Prefix of the non-semantic-convention names. Default 'memsentry'. */
  prefix?: string
}

/** Registers observable instruments; `close()` stops observing them. */
export declare function observe(sentry: MemorySentry, options?: ObserveOptions): { close(): void }
