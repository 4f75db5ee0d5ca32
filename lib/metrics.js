'use strict'

// The metrics of a Sample, each written once: its name (the Sample field, and the name in
// thresholds and leak options), unit, source, the options it needs, whether thresholds and the
// leak detector can watch it, how to read it from a Sample, and its Prometheus series. Options
// validation (./options.js), the report (./report.js) and memsentry/prometheus are built from this
// table; __test__/metrics.spec.mjs checks index.d.ts and the native addon's names against it.
//
// `needs`: the options that must be on for the metric to have a value ('smaps', 'heap',
// 'cgroup', 'children'); a threshold on it without them is refused, since it would never fire.
// `watch`: a byte figure thresholds and the leak detector accept (the Rust core's Metric::ALL).
// `prometheus`: [name suffix, help, kind ('gauge' | 'counter'), aggregator for prom-client's
// cluster registry]; absent when not exported (per-second fault rates: Prometheus computes them
// from the counters).

const ROWS = [
  // name, unit, source, needs, watch, read, prometheus
  [
    'rss',
    'bytes',
    'statm resident',
    [],
    true,
    (s) => s.rss,
    ['rss_bytes', 'Resident set size (VmRSS).'],
  ],
  [
    'vsz',
    'bytes',
    'statm size',
    [],
    true,
    (s) => s.vsz,
    ['vsz_bytes', 'Virtual memory size (VmSize).'],
  ],
  [
    'shared',
    'bytes',
    'statm shared',
    [],
    true,
    (s) => s.shared,
    ['shared_bytes', 'Resident shared pages (statm shared).'],
  ],
  [
    'text',
    'bytes',
    'statm text',
    [],
    true,
    (s) => s.text,
    ['text_bytes', 'Text (code) size (statm text).'],
  ],
  [
    'data',
    'bytes',
    'statm data',
    [],
    true,
    (s) => s.data,
    ['data_bytes', 'Data plus stack size (statm data).'],
  ],
  [
    'rssAnon',
    'bytes',
    'status RssAnon',
    [],
    true,
    (s) => s.rssAnon,
    ['rss_anon_bytes', 'Resident anonymous memory (RssAnon).'],
  ],
  [
    'rssFile',
    'bytes',
    'status RssFile',
    [],
    true,
    (s) => s.rssFile,
    ['rss_file_bytes', 'Resident file mappings (RssFile).'],
  ],
  [
    'rssShmem',
    'bytes',
    'status RssShmem',
    [],
    true,
    (s) => s.rssShmem,
    ['rss_shmem_bytes', 'Resident shared memory (RssShmem).'],
  ],
  [
    'swap',
    'bytes',
    'status VmSwap',
    [],
    true,
    (s) => s.swap,
    ['swap_bytes', 'Swapped-out anonymous memory (VmSwap).'],
  ],
  [
    'hwm',
    'bytes',
    'status VmHWM',
    [],
    true,
    (s) => s.hwm,
    ['hwm_bytes', 'Peak resident set size (VmHWM).', 'gauge', 'max'],
  ],
  [
    'memPercent',
    'percent',
    'rss / meminfo MemTotal',
    [],
    false,
    (s) => s.memPercent,
    [
      'memory_ratio',
      'Resident set size as a ratio of MemTotal, 0..1 (pidstat %MEM / 100).',
      'gauge',
      'sum',
      // Prometheus convention is ratios, not percents.
      (s) => (s.memPercent == null ? null : s.memPercent / 100),
    ],
  ],
  [
    'threads',
    'count',
    'stat num_threads',
    [],
    false,
    (s) => s.threads,
    ['threads', 'Number of threads.'],
  ],
  [
    'time',
    'ms',
    'clock_gettime(CLOCK_REALTIME)',
    [],
    false,
    (s) => s.time,
    [
      'last_sample_timestamp_seconds',
      'When the exported sample was taken, in seconds since the epoch.',
      'gauge',
      'max',
      (s) => s.time / 1000,
    ],
  ],
  [
    'minorFaults',
    'faults',
    'stat minflt',
    [],
    false,
    (s) => s.minorFaults,
    ['minor_faults_total', 'Minor page faults since the process started.', 'counter'],
  ],
  [
    'majorFaults',
    'faults',
    'stat majflt',
    [],
    false,
    (s) => s.majorFaults,
    ['major_faults_total', 'Major page faults since the process started.', 'counter'],
  ],
  [
    'minorFaultsPerSec',
    'faults/s',
    'stat minflt, two readings',
    [],
    false,
    (s) => s.minorFaultsPerSec,
    null,
  ],
  [
    'majorFaultsPerSec',
    'faults/s',
    'stat majflt, two readings',
    [],
    false,
    (s) => s.majorFaultsPerSec,
    null,
  ],
  [
    'pss',
    'bytes',
    'smaps_rollup Pss',
    ['smaps'],
    true,
    (s) => s.pss,
    ['pss_bytes', 'Proportional set size (smaps_rollup Pss).'],
  ],
  [
    'uss',
    'bytes',
    'smaps_rollup Private_Clean + Private_Dirty',
    ['smaps'],
    true,
    (s) => s.uss,
    ['uss_bytes', 'Unique set size (private clean + private dirty).'],
  ],
  [
    'swapPss',
    'bytes',
    'smaps_rollup SwapPss',
    ['smaps'],
    true,
    (s) => s.swapPss,
    ['swap_pss_bytes', 'Proportional swap (smaps_rollup SwapPss).'],
  ],
  [
    'heapUsed',
    'bytes',
    'process.memoryUsage() after GC',
    ['heap'],
    true,
    (s) => s.heapUsed,
    ['heap_used_bytes', 'V8 heap used, after the latest GC.'],
  ],
  [
    'heapTotal',
    'bytes',
    'process.memoryUsage() after GC',
    ['heap'],
    true,
    (s) => s.heapTotal,
    ['heap_total_bytes', 'V8 heap total, after the latest GC.'],
  ],
  [
    'external',
    'bytes',
    'process.memoryUsage() after GC',
    ['heap'],
    true,
    (s) => s.external,
    ['external_bytes', 'Memory of C++ objects bound to JS objects (V8 external).'],
  ],
  [
    'arrayBuffers',
    'bytes',
    'process.memoryUsage() after GC',
    ['heap'],
    true,
    (s) => s.arrayBuffers,
    ['array_buffers_bytes', 'Memory of ArrayBuffers and SharedArrayBuffers.'],
  ],
  [
    'childCount',
    'count',
    'the watched children',
    ['children'],
    false,
    (s) => s.children?.length,
    ['children', 'Number of watched child processes.'],
  ],
  [
    'childrenRss',
    'bytes',
    "the children's statm resident, summed",
    ['children'],
    true,
    (s) => s.childrenRss,
    ['children_rss_bytes', 'Sum of the resident set sizes of the children.'],
  ],
  [
    'treeRss',
    'bytes',
    'rss + childrenRss',
    ['children'],
    true,
    (s) => s.treeRss,
    ['tree_rss_bytes', 'Resident set size of this process plus its children.'],
  ],
  [
    'treePss',
    'bytes',
    "pss + the children's pss",
    ['children', 'smaps'],
    true,
    (s) => s.treePss,
    ['tree_pss_bytes', 'Proportional set size of this process plus its children.'],
  ],
  // The cgroup is shared by every process in it: in a cluster, take one worker's figure.
  [
    'workingSet',
    'bytes',
    'cgroup usage - inactive_file',
    ['cgroup'],
    true,
    (s) => s.cgroup?.workingSet,
    [
      'cgroup_working_set_bytes',
      'Working set of the cgroup (usage minus inactive file), what the OOM killer weighs.',
      'gauge',
      'first',
    ],
  ],
  [
    'cgroupUsage',
    'bytes',
    'cgroup memory.current / memory.usage_in_bytes',
    ['cgroup'],
    true,
    (s) => s.cgroup?.usage,
    ['cgroup_usage_bytes', 'Memory charged to the cgroup.', 'gauge', 'first'],
  ],
  [
    'cgroupLimit',
    'bytes',
    'cgroup memory.max / memory.limit_in_bytes',
    ['cgroup'],
    false,
    (s) => s.cgroup?.limit,
    ['cgroup_limit_bytes', 'Memory limit of the cgroup (absent when unlimited).', 'gauge', 'first'],
  ],
  [
    'cgroupHigh',
    'bytes',
    'cgroup memory.high',
    ['cgroup'],
    false,
    (s) => s.cgroup?.high,
    ['cgroup_high_bytes', 'memory.high throttling limit (absent when unset).', 'gauge', 'first'],
  ],
  [
    'cgroupInactiveFile',
    'bytes',
    'cgroup memory.stat inactive_file',
    ['cgroup'],
    false,
    (s) => s.cgroup?.inactiveFile,
    ['cgroup_inactive_file_bytes', 'Inactive file cache of the cgroup.', 'gauge', 'first'],
  ],
  [
    'cgroupAnon',
    'bytes',
    'cgroup memory.stat anon / rss',
    ['cgroup'],
    false,
    (s) => s.cgroup?.anon,
    ['cgroup_anon_bytes', 'Anonymous memory of the cgroup.', 'gauge', 'first'],
  ],
  [
    'cgroupFile',
    'bytes',
    'cgroup memory.stat file / cache',
    ['cgroup'],
    false,
    (s) => s.cgroup?.file,
    ['cgroup_file_bytes', 'File cache of the cgroup.', 'gauge', 'first'],
  ],
  [
    'cgroupUnderOom',
    'boolean',
    'cgroup v1 memory.oom_control under_oom',
    ['cgroup'],
    false,
    (s) => s.cgroup?.underOom,
    ['cgroup_under_oom', '1 while the cgroup is under OOM (cgroup v1), else 0.', 'gauge', 'first'],
  ],
  [
    'cgroupPressureSomeAvg10',
    'percent',
    'memory.pressure some avg10',
    ['cgroup'],
    false,
    (s) => s.cgroup?.pressure?.someAvg10,
    [
      'cgroup_pressure_some_avg10',
      'Memory pressure: percent of time some task stalled on memory, 10 s average.',
      'gauge',
      'first',
    ],
  ],
  [
    'cgroupPressureSomeAvg60',
    'percent',
    'memory.pressure some avg60',
    ['cgroup'],
    false,
    (s) => s.cgroup?.pressure?.someAvg60,
    [
      'cgroup_pressure_some_avg60',
      'Memory pressure: percent of time some task stalled on memory, 60 s average.',
      'gauge',
      'first',
    ],
  ],
  [
    'cgroupPressureFullAvg10',
    'percent',
    'memory.pressure full avg10',
    ['cgroup'],
    false,
    (s) => s.cgroup?.pressure?.fullAvg10,
    [
      'cgroup_pressure_full_avg10',
      'Memory pressure: percent of time all tasks stalled on memory, 10 s average.',
      'gauge',
      'first',
    ],
  ],
  [
    'cgroupOomEvents',
    'events',
    'cgroup memory.events oom_kill (v1: oom_control, failcnt)',
    ['cgroup'],
    false,
    (s) => s.cgroup?.oomEvents,
    ['cgroup_oom_events_total', 'OOM kills in the cgroup.', 'counter', 'first'],
  ],
]

/** Every metric, in table order: `{ name, unit, source, needs, watch, read, prometheus }`. */
const METRICS = Object.freeze(
  ROWS.map(([name, unit, source, needs, watch, read, prom]) =>
    Object.freeze({
      name,
      unit,
      source,
      needs: Object.freeze(needs),
      watch,
      read,
      prometheus:
        prom === null
          ? null
          : Object.freeze({
              suffix: prom[0],
              help: prom[1],
              kind: prom[2] ?? 'gauge',
              aggregator: prom[3] ?? 'sum',
              read: prom[4] ?? read,
            }),
    }),
  ),
)

const BY_NAME = new Map(METRICS.map((m) => [m.name, m]))

/** The metric named `name`, or undefined. */
function metric(name) {
  return BY_NAME.get(name)
}

/** What thresholds and the leak detector watch: the byte figures, then each child's RSS. */
const CHILD_RSS = 'child.rss'
const WATCHABLE = Object.freeze([...METRICS.filter((m) => m.watch).map((m) => m.name), CHILD_RSS])

/** The options a watchable name needs ('child.rss': the children). */
function needsOf(name) {
  return name === CHILD_RSS ? ['children'] : (BY_NAME.get(name)?.needs ?? [])
}

module.exports = { METRICS, WATCHABLE, CHILD_RSS, metric, needsOf }
