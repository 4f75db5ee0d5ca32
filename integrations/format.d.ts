// Types of memsentry/format: text forms of memsentry's figures for logs and terminals.
import type { LeakDiagnosis, LeakSite, Sample } from '../index'
import type { BatchReport } from './koa'

export interface BytesOptions {
  /** Powers of 1024 (KiB) or of 1000 (kB). Default true. */
  binary?: boolean
  /** Decimals after the unit's point, an integer in 0..=20. Default 1. */
  decimals?: number
}

/** '1.5 MiB'; null, undefined and NaN print as 'n/a'. */
export declare function formatBytes(n: number | null | undefined, options?: BytesOptions): string
/** '+1.5 MiB', '-512 B'. */
export declare function formatDelta(n: number | null | undefined, options?: BytesOptions): string
/** The header line of `formatPidstat`, as `pidstat -r` prints it. */
export declare function pidstatHeader(): string
/** One `pidstat -r` line for a Sample. */
export declare function formatPidstat(
  sample: Sample,
  options?: { command?: string; uid?: number | string },
): string
/** A Sample as one line of JSON; children's command lines only with includeCmdline. */
export declare function formatJson(sample: Sample, options?: { includeCmdline?: boolean }): string
/** A memsentry/koa batch report as one line. */
export declare function formatReport(report: BatchReport): string
/**
 * An allocation site as people read it: `getData (examples/demo.js:54)`, the file relative to
 * `cwd` (default `process.cwd()`) when it is under it.
 */
export declare function formatSite(
  site: Pick<LeakSite, 'functionName' | 'url' | 'line'>,
  options?: { cwd?: string },
): string
/**
 * A 'leak-diagnosis' event as one line: `memsentry: leak allocated in getData
 * (examples/demo.js:54) 97% (18.0 MiB sampled over 10 s)`, or what grew outside the JS heap.
 */
export declare function formatDiagnosis(
  diagnosis: LeakDiagnosis,
  /** cwd: paths are shown relative to it (default the process's); maxSites: default 3, an integer >= 1 or Infinity. */
  options?: { cwd?: string; maxSites?: number },
): string
