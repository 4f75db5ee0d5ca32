// Types of memsentry's public API. Bytes are numbers of bytes; times are milliseconds.
/// <reference types="node" />
import { EventEmitter } from 'node:events'

/** A size: bytes, or a string such as `'600MiB'`, `'1.5GB'`, `'512 KiB'` (K/M/G/T are 1000-based, Ki/Mi/Gi/Ti 1024-based). */
export type Size = number | string
/** A size or a percent of the memory limit, such as `'90%'`. */
export type SizeOrPercent = number | string
/** A growth rate: bytes per second, or a string such as `'1MiB/min'`, `'2MB/s'`, `'100MB/h'`. */
export type Slope = number | string

/** A byte figure thresholds and the leak detector can watch. */
export type ByteMetric =
  | 'rss'
  | 'vsz'
  | 'shared'
  | 'text'
  | 'data'
  | 'rssAnon'
  | 'rssFile'
  | 'rssShmem'
  | 'swap'
  | 'hwm'
  | 'pss'
  | 'uss'
  | 'swapPss'
  | 'heapUsed'
  | 'heapTotal'
  | 'external'
  | 'arrayBuffers'
  | 'childrenRss'
  | 'treeRss'
  | 'treePss'
  | 'workingSet'
  | 'cgroupUsage'

export interface ThresholdOptions {
  /** Names the rule in events; default `` `${metric}>${above}` ``. Unique per sentry. */
  name?: string
  /** Default `'rss'`. `'child.rss'` watches each child process on its own. */
  metric?: ByteMetric | 'child.rss'
  /** Fire `'up'` when the value rises above this; a percent is of the memory limit (see `limit`). */
  above: SizeOrPercent
  /** Fire `'down'` (and re-arm) when the value falls below `above - hysteresis`. Default 1% of `above`, at least 1 MiB; for a percent threshold, 1 percentage point; at most half of `above`. */
  hysteresis?: SizeOrPercent
}

export interface LeakOptions {
  /**
   * The span of history the trend is judged on. Default 600000 (10 min); at least 4 × intervalMs.
   * 150000 or more spans V8's full-GC period under load (300000 or more in production, for a
   * margin: of 1251 healthy recordings replayed, none fires from 270000 up at 1 s sampling,
   * 600000 included); a shorter window answers fast leaks
   * sooner but may fire once, briefly, while a cache or LRU fills for longer than the window.
   * From 180000 up a one-minute look-out runs beside it: a leak that, at its one-minute slope,
   * reaches the memory limit or V8's heap limit within `windowMs` is reported after about 200 s
   * (the event's `windowMs` is then ~60000), not after the window.
   */
  windowMs?: number
  /**
   * Growth slower than this is not a leak. Default (unset or null): it scales with the window and
   * the metric's level, growth per window of at least max(1.5 MiB × √(windowMs / 60000), 2% of
   * the level); an explicit value overrides it.
   */
  minSlope?: Slope | null
  /**
   * Samples in the first warmupMs after start are ignored. Default (unset or null): min(window /
   * 2, 30000) of the window analysed, which is a minute at least unless `minSlope` is set: 30000
   * with the default minimum slope.
   */
  warmupMs?: number | null
  /** The figure watched. Default `'rss'`. */
  metric?: ByteMetric
  /**
   * Write an HTML report (see `memsentry/report`) into this directory (created 0700; the file
   * 0600, `memsentry-leak-<pid>-<time>.html`) when a leak is confirmed, at most 5 in the life of
   * the process; its path is on the `'leak'` event as `report`. Written off the event's call
   * (setImmediate); children's command lines are left out. Off by default.
   */
  report?: string | false | null
  /**
   * Name the code that leaks: on a confirmed `'heap'` or `'unknown'` leak, V8's sampling heap
   * profiler runs in this thread (through `node:inspector`) for `durationMs`, then one
   * `'leak-diagnosis'` event lists the allocation sites of what is still alive. A `'native'` or
   * `'child'` leak gets the history's figures instead (no profiler). On by default; `false` turns
   * it off.
   */
  diagnose?: LeakDiagnoseOptions | boolean
}

export interface LeakDiagnoseOptions {
  /**
   * How long the profiler runs, 1000..=3600000 ms. Default a tenth of `windowMs`, 10 s to 60 s;
   * longer for a leak too slow to leave 50 samples in that time (up to `windowMs`, at most 10 min).
   */
  durationMs?: number
  /**
   * Average bytes allocated between two samples, 1 KiB..=64 MiB. Default 128 KiB (under 2% of a
   * busy app's CPU while it runs), more for a leak fast enough to fill 1000 samples.
   */
  samplingInterval?: Size
}

export interface MemorySentryOptions {
  /** Sampling period, an integer in 10..=3600000. Default 1000. */
  intervalMs?: number
  /** Samples kept in the ring buffer, 1..=1000000. Default 3600. */
  historySize?: number
  /** Which child processes to sample. Default `'tree'` (all descendants). */
  children?: 'none' | 'direct' | 'tree'
  /** Any number of rules; each fires `'threshold'` once on the way up and once on the way down. */
  thresholds?: ThresholdOptions[]
  /** Leak detection; `false` turns it off. On by default. */
  leak?: LeakOptions | boolean
  /** Also read PSS/USS/swapPss from smaps_rollup (about 1 ms per read on a large heap); `{ everyN }` reads it every N ticks. Default false. */
  smaps?: boolean | { everyN?: number }
  /**
   * Merge V8 heap figures recorded after each GC into the samples (main-thread work per GC, at
   * most one `process.memoryUsage()` per half interval plus one per full GC). Default false. The
   * leak detector gets these figures whenever leak detection is on, whatever this says.
   */
  heap?: boolean
  /** Read the process's memory cgroup (usage, limit, working set, OOM events, PSI). Default true; false leaves `cgroup` null and the cgroup metrics unavailable. */
  cgroup?: boolean
  /** The memory limit for percent thresholds and `msToLimit`: `'auto'` (the cgroup's limit, else none) or a size. Default `'auto'`. */
  limit?: 'auto' | Size
  /**
   * Write one V8 heap snapshot into `dir` (created 0700; the file 0600) when a leak episode is
   * confirmed, at most `maxCount` (default 1, ≤ 100) in the life of the process. Writing one
   * blocks the event loop while V8 walks the heap (seconds on a large heap). Skipped with an
   * `'error'` event when the disk has less free space than twice the heap. Off by default.
   */
  heapSnapshot?: { dir: string; maxCount?: number } | false | null
  /** Root of procfs, for tests on fixture trees. Default `'/proc'`. */
  procRoot?: string
  /** A root under which the cgroup mount points are looked up, for tests on fixture trees. Default: the real filesystem. */
  cgroupRoot?: string | null
}

export interface ReportOptions {
  /** Put children's command lines and this process's arguments in the report. Default false: arguments can hold secrets. */
  includeCmdline?: boolean
  /** The page's title. Default `'memsentry: pid <pid>'`. */
  title?: string
}

export interface SnapshotOptions {
  /** Also read smaps_rollup. Default false. */
  smaps?: boolean
  /** Default `'none'`. */
  children?: 'none' | 'direct' | 'tree'
  procRoot?: string
  cgroupRoot?: string | null
}

/** PSI memory pressure, percent of time stalled. */
export interface Pressure {
  someAvg10: number
  someAvg60: number
  fullAvg10: number | null
}

/** The process's memory cgroup (v1 or v2). */
export interface CgroupFigures {
  version: 1 | 2
  /** memory.current (v2) or memory.usage_in_bytes (v1). */
  usage: number | null
  /**
   * The limit that applies: the smallest memory.max of the cgroup and its ancestors up to the
   * mount (v2), or memory.limit_in_bytes and the kernel's hierarchical_memory_limit (v1); null
   * when unlimited.
   */
  limit: number | null
  /** memory.high (v2), the smallest on the way up as for `limit`; null when unset or v1. */
  high: number | null
  /** usage − inactive_file, floored at 0: what the kubelet and cAdvisor call the working set. */
  workingSet: number | null
  inactiveFile: number | null
  anon: number | null
  file: number | null
  /**
   * oom_kill from memory.events (v2) or memory.oom_control (v1); on kernels before 4.13, which
   * lack it, v2's oom (times the cgroup hit OOM) or v1's memory.failcnt.
   */
  oomEvents: number | null
  /** v1 only. */
  underOom: boolean | null
  /** null where the kernel has no PSI. */
  pressure: Pressure | null
}

/** One child process's figures (with `children` other than 'none'). */
export interface ChildSample {
  pid: number
  ppid: number
  comm: string
  /** The first 256 bytes of its command line, NULs as spaces. */
  cmdline: string
  rss: number | null
  vsz: number | null
  rssAnon: number | null
  swap: number | null
  minorFaults: number | null
  majorFaults: number | null
  /** With `smaps`. */
  pss?: number
}

/** One reading. A field whose read failed is `null`. */
export interface Sample {
  /** Wall clock, epoch ms. */
  time: number
  pid: number
  /** Resident set size (statm resident × page size). */
  rss: number | null
  /** Virtual size (statm size). */
  vsz: number | null
  /** Resident file-backed and shmem pages (statm shared). */
  shared: number | null
  /** Text (code) size (statm text). */
  text: number | null
  /** Data + stack (statm data). */
  data: number | null
  /** status RssAnon. */
  rssAnon: number | null
  /** status RssFile. */
  rssFile: number | null
  /** status RssShmem. */
  rssShmem: number | null
  /** status VmSwap. */
  swap: number | null
  /** Peak RSS (status VmHWM). */
  hwm: number | null
  /** rss as a percent of MemTotal, like pidstat's %MEM. */
  memPercent: number | null
  threads: number | null
  /** Cumulative minor page faults (stat minflt). */
  minorFaults: number | null
  /** Cumulative major page faults (stat majflt). */
  majorFaults: number | null
  /** Per second, from the previous reading, like pidstat's minflt/s. null on the first. */
  minorFaultsPerSec: number | null
  majorFaultsPerSec: number | null
  /** smaps_rollup Pss (with `smaps`). */
  pss?: number
  /** smaps_rollup Private_Clean + Private_Dirty (with `smaps`). */
  uss?: number
  /** smaps_rollup SwapPss (with `smaps`). */
  swapPss?: number
  /** V8 heap after the latest GC (with `heap`). */
  heapUsed?: number
  heapTotal?: number
  external?: number
  arrayBuffers?: number
  /** null when no memory cgroup was found. */
  cgroup: CgroupFigures | null
  /** Watched children, newest sample only (history entries keep just the sums). */
  children?: ChildSample[]
  /** Sum of the children's RSS (shared pages counted once per process). */
  childrenRss?: number | null
  /** Own RSS + childrenRss. */
  treeRss?: number | null
  /** Own PSS + the children's (with `smaps`): shared pages split, not double-counted. */
  treePss?: number | null
}

export interface ChildEvent {
  type: 'spawn' | 'exit'
  pid: number
  ppid: number
  comm: string
  /** exit only: the last RSS seen. */
  rss?: number | null
  /** exit only: how long the child was seen, ms. */
  seenMs?: number
}

export interface ThresholdEvent {
  name: string
  metric: ByteMetric | 'child.rss'
  /** For a `'child.rss'` rule: the child that crossed. */
  pid?: number
  comm?: string
  /** The line, in bytes (a percent threshold resolved against the limit). */
  threshold: number
  value: number
  direction: 'up' | 'down'
  sample: Sample
}

export interface LeakEvent {
  metric: ByteMetric
  /** Theil–Sen slope of the post-GC floors, bytes per second. */
  slopeBytesPerSec: number
  /** slope × windowMs: the growth the trend implies over the analysed span. */
  growthBytes: number
  /**
   * The span analysed, ms: about the option's `windowMs` (a minute at least, unless `minSlope` is
   * set), or ~60000 when the one-minute look-out reported a leak that reaches a limit before that
   * window could (see `LeakOptions.windowMs`).
   */
  windowMs: number
  /** 1 − p of the Mann–Kendall test for an increasing trend, 0..1. */
  confidence: number
  /**
   * At the current slope, ms until the limit is reached; null without a limit. Against the
   * cgroup's limit (`limit: 'auto'`) it is the cgroup's working set that reaches it, as the kernel
   * counts (a page shared by a parent and its child once); against a given `limit`, the metric.
   * For a 'heap' leak, with or without those, the sooner of that and the heap (`heapUsed`)
   * reaching V8's heap limit (`heap_size_limit`) at the heap's own slope, where V8 ends the
   * process: in a container Node sizes that limit from the cgroup's, so it comes first.
   */
  msToLimit: number | null
  /**
   * What grows: 'heap' when the live JS heap (what full GCs leave) accounts for it, 'native' when
   * external memory (Buffers) or memory outside V8 does, 'child' when a child process does (a tree
   * metric such as `treeRss`), 'unknown' when the figures cannot tell.
   */
  suspect: 'heap' | 'native' | 'child' | 'unknown'
  /** The child that grows fastest, when `suspect` is 'child'; else null. */
  child: { pid: number; comm: string; slopeBytesPerSec: number } | null
  /** The heap snapshot written for this episode (`heapSnapshot` option). */
  heapSnapshot?: string
  /** The HTML report being written for this episode (`leak.report` option). */
  report?: string
  /** Routes whose requests the growth follows, when the Koa/HTTP memoryLogger is in use. */
  routes?: { route: string; bytesPerRequest: number }[]
  sample: Sample
}

/** Where a leak's live bytes were allocated: the first function in the application's own code. */
export interface LeakSite {
  /** `'(anonymous)'` for a function without a name. */
  functionName: string
  /** The script: a path (CommonJS), a `file://` URL (ESM), `''` for V8 builtins. */
  url: string
  /** 1-based line and column where the function starts (V8 samples record functions, not lines). */
  line: number
  column: number
  /** 'user' (the app), 'dependency' (only node_modules code on the stack), 'internal' (only Node or V8). */
  kind: 'user' | 'dependency' | 'internal'
  /** Estimated live bytes allocated there since sampling began. */
  bytes: number
  /** bytes / sampledBytes, 0..1. */
  share: number
  /** Samples taken there. */
  count: number
  /** The heaviest stack that allocated there, from the allocation outward: `'fn (file:line:column)'`. */
  stack: string[]
}

/** What grew over the leak window, from the sentry's history (native and unknown suspects). */
export interface NativeGrowth {
  spanMs: number
  /** Growth of each series' post-GC floor; null when not sampled (heap figures need `heap: true`). */
  growth: Record<
    'rss' | 'rssAnon' | 'heapUsed' | 'external' | 'arrayBuffers' | 'treeRss',
    { bytesPerSec: number; bytes: number } | null
  >
  /** rssAnon's growth less the heap's: memory outside the JS heap; null without heap figures. */
  outsideHeap: { bytesPerSec: number; bytes: number } | null
  /** The child process whose RSS grew most, or null. */
  child: { pid: number; comm: string; bytesPerSec: number; bytes: number } | null
}

export interface LeakDiagnosis {
  /** When the span the diagnosis describes began (epoch ms): sampling's start, or the window's. */
  since: number
  durationMs: number
  /** The sampling interval, bytes; null for a native suspect (no profiler run). */
  samplingIntervalBytes: number | null
  /** Estimated live bytes allocated since sampling began (0 without a profiler run). */
  sampledBytes: number
  sampleCount?: number
  /** Bytes of the sites past the first 10. */
  otherBytes?: number
  /** The heaviest first, at most 10; empty for a native or child suspect (no profiler run). */
  sites: LeakSite[]
  suspect: 'heap' | 'native' | 'child' | 'unknown'
  /** For 'native', 'child' and 'unknown' suspects. */
  native?: NativeGrowth | null
}

/**
 * `sentry.options`: the constructor's options normalized, sizes in bytes, slopes in bytes per
 * second, durations in ms. null where a default is worked out later (`minSlope` and `warmupMs`
 * from the window, `limit` from the cgroup: `sentry.limit` has the one in force).
 */
export interface SentryOptions {
  intervalMs: number
  historySize: number
  children: 'none' | 'direct' | 'tree'
  thresholds: {
    name: string
    metric: ByteMetric | 'child.rss'
    /** Bytes, or null for a percent of the limit (`abovePercent`). */
    above: number | null
    abovePercent: number | null
    hysteresis: number
    hysteresisPercent: number | null
  }[]
  /** null with `leak: false`. */
  leak: {
    windowMs: number
    minSlope: number | null
    warmupMs: number | null
    metric: ByteMetric
    /** Absent: the default diagnosis; null: `diagnose: false`. */
    diagnose?: { durationMs: number | null; samplingInterval: number | null } | null
    /** The report folder, when `report` is set. */
    report?: string
  } | null
  /** Read smaps_rollup every that many ticks; 0 for never. */
  smapsEveryN: number
  heap: boolean
  cgroup: boolean
  limit: number | null
  procRoot: string
  /** null: found from /proc/self/cgroup. */
  cgroupRoot: string | null
  heapSnapshot: { dir: string; maxCount: number } | null
}

/** One threshold rule's state now (`sentry.thresholdStates()`). */
export interface ThresholdState {
  name: string
  metric: ByteMetric | 'child.rss'
  /** Between an `'up'` and its `'down'`. */
  active: boolean
  /** The figure last judged, bytes; null before it had a value. */
  value: number | null
  /** For a `'child.rss'` rule: the child (the rule has one state per watched child). */
  pid?: number
}

/** The leak episode in progress (`sentry.leakEpisode`). */
export interface LeakEpisode {
  /** When it was confirmed (`'leak'` sent), epoch ms. */
  since: number
  metric: ByteMetric
  /** The detector's latest estimate, bytes per second. */
  slopeBytesPerSec: number
  suspect: 'heap' | 'native' | 'child' | 'unknown'
  /** At that slope, ms until the limit is reached (as in the 'leak' event, V8's heap limit included for an episode that started as 'heap'); null without a limit. */
  msToLimit: number | null
}

export interface OomEvent {
  oomEvents: number | null
  sample: Sample
}

export interface SentryStats {
  ticks: number
  /** Sampler-thread CPU time over all ticks, ns. */
  cpuNs: number
  maxCpuNs: number
  meanCpuNs: number
  /**
   * Threshold, leak, leak-end, child, OOM and error events dropped because too many were
   * waiting for a blocked event loop (samples are coalesced instead, and not counted here).
   */
  droppedEvents: number
  /** Samples the history holds now (at most `historySize`); a report drawn thinned says so. */
  historyLength: number
}

export interface MemorySentryEvents {
  threshold: [ThresholdEvent]
  leak: [LeakEvent]
  'leak-end': [LeakEvent]
  'leak-diagnosis': [LeakDiagnosis]
  oom: [OomEvent]
  child: [ChildEvent]
  sample: [Sample]
  error: [Error & { code?: string; path?: string }]
}

export declare class MemorySentry extends EventEmitter {
  /**
   * Validates the options (TypeError / RangeError naming the option) and starts sampling. Throws
   * an Error when its first reads (`meminfo`, the cgroup) hang for 1 s.
   */
  constructor(options?: MemorySentryOptions)
  on<K extends keyof MemorySentryEvents>(
    event: K,
    listener: (...args: MemorySentryEvents[K]) => void,
  ): this
  once<K extends keyof MemorySentryEvents>(
    event: K,
    listener: (...args: MemorySentryEvents[K]) => void,
  ): this
  off<K extends keyof MemorySentryEvents>(
    event: K,
    listener: (...args: MemorySentryEvents[K]) => void,
  ): this
  /**
   * The newest Sample, or null before the first tick. Reads nothing. Frozen, with its nested
   * objects: every caller shares it until the next tick.
   */
  readonly latest: Readonly<Sample> | null
  /**
   * Each threshold rule's state now, read from the core (right whenever asked, whoever listened
   * to the events): one per rule in option order, one per watched child for a `'child.rss'` rule;
   * none after `close()`.
   */
  thresholdStates(): ThresholdState[]
  /** The leak episode in progress, read from the core, or null. */
  readonly leakEpisode: LeakEpisode | null
  /** The memory limit in force (bytes), or null. */
  readonly limit: number | null
  readonly running: boolean
  readonly closed: boolean
  /** The options as the sentry took them, checked and with defaults filled in; a copy. */
  readonly options: SentryOptions
  /**
   * Writes a self-contained HTML report of the history (and of the events recorded since the first
   * report or `attach`) to `file`, mode 0600; returns its absolute path. See `memsentry/report`.
   */
  writeReport(file: string, options?: ReportOptions): string
  /**
   * A fresh Sample read now, synchronously. Not added to the history. Throws when a tick holds
   * the files in a hung read for 300 ms (at once, once that tick has been reading that long), or
   * when a read of the children hangs for 1 s.
   */
  snapshot(): Sample
  /**
   * Samples from the ring buffer, oldest first, at or after `sinceMs` (epoch ms). With
   * `maxPoints` (1..=1000000), at most that many plus the newest: each run of samples gives its
   * highest-RSS one.
   */
  history(options?: { sinceMs?: number; maxPoints?: number }): Sample[]
  stats(): SentryStats
  /**
   * Starts sampling again after stop(); a running sentry is held, as an active timer is. While a
   * tick that stop() left to a hung read is still in it, the new thread skips its ticks.
   */
  start(): this
  /**
   * Stops sampling and joins the thread, waiting at most 300 ms for a tick in a hung read (that
   * thread is then left to its read, and reports nothing when it returns). A stopped sentry
   * nothing refers to can be collected.
   */
  stop(): this
  /** Keep the event loop alive while sampling (off by default). */
  ref(): this
  unref(): this
  /**
   * Stops and joins the sampler thread (waiting at most 300 ms for a tick in a hung read, as
   * stop() does) and closes the files; resolves once it has. No event the thread queued is
   * delivered after it: those not yet delivered are dropped. A leak report whose path a 'leak'
   * event already carries is still written (a failure to write it is an 'error' event).
   * `history()` still answers.
   */
  close(): Promise<void>
}

/**
 * A one-shot fresh Sample without a sentry, read on a helper thread: throws when the read hangs
 * for 1 s (a child stuck in the kernel, a hung lxcfs `/proc/meminfo`); until that read returns,
 * later calls with the same `procRoot` throw at once.
 */
export declare function snapshot(options?: SnapshotOptions): Sample
/** Resident bytes of this process: one pread of /proc/self/statm. */
export declare function rss(): number
