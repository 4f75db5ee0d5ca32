// CPU time of one thread of this process, from procfs.
//
// process.cpuUsage() sums every thread (the sampler's, libuv's pool, V8's GC helpers), so it cannot
// isolate the main thread. The main thread's tid is the pid; its own figures live under
// /proc/self/task/<pid>/. `schedstat` gives the time on CPU in nanoseconds; `stat`'s utime+stime
// are in clock ticks (10 ms here), far too coarse for a per-sample cost, and are used only when
// schedstat is missing (a kernel without CONFIG_SCHED_INFO).

import { readFileSync, existsSync } from 'node:fs'

const TASK = `/proc/self/task/${process.pid}`
const CLOCK_TICK_NS = 10_000_000 // USER_HZ = 100 on Linux

export const source = existsSync(`${TASK}/schedstat`)
  ? `${TASK}/schedstat (ns)`
  : `${TASK}/stat utime+stime (10 ms ticks)`

const hasSchedstat = source.includes('schedstat')

/** CPU time of the main thread so far, in ns. */
export function mainThreadCpuNs() {
  if (hasSchedstat) {
    return Number(readFileSync(`${TASK}/schedstat`, 'latin1').split(' ')[0])
  }
  const stat = readFileSync(`${TASK}/stat`, 'latin1')
  // Fields after the parenthesized comm; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_NS
}

/** Times the main thread was switched out (voluntary + involuntary): its wake-ups, roughly. */
export function mainThreadSwitches() {
  const status = readFileSync(`${TASK}/status`, 'latin1')
  const v = /voluntary_ctxt_switches:\s+(\d+)/.exec(status)
  const n = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)
  return Number(v?.[1] ?? 0) + Number(n?.[1] ?? 0)
}
