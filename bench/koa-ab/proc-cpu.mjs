// CPU time from procfs, for the A/B benchmark's per-round figures: the server's, this process's
// (autocannon's) and the whole machine's (to see what else was running meanwhile).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let clockTicks
/** Jiffies per second (USER_HZ), from `getconf CLK_TCK` (asked once). */
function clkTck() {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  return clockTicks
}

// utime + stime of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line, in ms. The fields
// after the command name (which may hold spaces and parentheses) start after the last ')'.
function statCpuMs(text) {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clkTck()
}

/** CPU time (user + system) a process has used, in ms; null when it is gone. */
export function processCpuMs(pid = 'self') {
  try {
    return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return null
  }
}

/** Busy CPU time of the whole machine (all cores, everything but idle and iowait), in ms. */
export function machineBusyMs() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
  const [user, nice, system, , , irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number)
  return ((user + nice + system + irq + softirq + (steal || 0)) * 1000) / clkTck()
}
