// Types of memsentry/report: a self-contained HTML report of a sentry's history and events.
import type { MemorySentry, ReportOptions, Sample } from '../index'

/** An event as the recorder keeps it: its type and time, then the event's own fields. */
export interface RecordedEvent {
  type: 'threshold' | 'leak' | 'leak-end' | 'leak-diagnosis' | 'child' | 'oom'
  /** Epoch ms. */
  time: number
  [field: string]: unknown
}

/** The page's data (what the page embeds as JSON and the dashboard serves as data.json). */
export interface ReportData {
  version: 1
  title: string
  generatedAt: number
  process: Record<string, unknown>
  sentry: Record<string, unknown>
  latest: Record<string, unknown> | null
  children: Record<string, unknown>[]
  series: { time: number[]; [key: string]: (number | null)[] }
  thinnedFrom?: number
  lines: { kind: string; name: string; metric: string | null; bytes: number; percent?: number }[]
  leaks: Record<string, unknown>[]
  events: RecordedEvent[]
  eventsSince: number | null
  eventsDropped: number
  trigger: Record<string, unknown> | null
  live: { pollMs: number } | null
}

export interface ReportMeta {
  options?: Record<string, unknown>
  limit?: number | null
  latest?: Sample | null
  process?: Record<string, unknown>
  title?: string
  eventsSince?: number | null
  eventsDropped?: number
  trigger?: Record<string, unknown> | null
  /** The samples `history` was thinned from (collectData sets it), for the page's note. */
  historyLength?: number
  live?: { pollMs: number } | null
}

/** Starts recording the sentry's events for reports (the last 1000). Idempotent; returns it. */
export declare function attach<S extends MemorySentry>(sentry: S): S
/** Writes the report to `file` (mode 0600, replaced atomically); returns its absolute path. */
export declare function writeReport(
  sentry: MemorySentry,
  file: string,
  options?: ReportOptions,
): string
/** The page's data for a live sentry; with `sinceMs`, only newer samples in the series. */
export declare function collectData(
  sentry: MemorySentry,
  options?: ReportOptions & {
    sinceMs?: number
    trigger?: Record<string, unknown>
    live?: { pollMs: number }
  },
): ReportData
/** The page's data from plain inputs (synthetic figures, tools). */
export declare function buildData(
  history: Sample[],
  events?: RecordedEvent[],
  meta?: ReportMeta,
  options?: { includeCmdline?: boolean },
): ReportData
/** The whole HTML page for `data`. */
export declare function renderHtml(data: ReportData): string
/** How many events were ever recorded for the sentry: changes whenever its events do. */
export declare function eventCount(sentry: MemorySentry): number
