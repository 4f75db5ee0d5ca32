// Reading /proc directly, to check memsentry's figures against the kernel's.
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

export const KiB = 1024
export const MiB = 1024 * KiB

let pageSizeCache
/** The page size in bytes, from `getconf PAGESIZE` (asked once). */
export function pageSize() {
  pageSizeCache ??= Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim())
  return pageSizeCache
}

/** /proc/<pid>/statm in bytes: { vsz, rss, shared, text, data }. */
export function readStatm(pid = 'self') {
  const [size, resident, shared, text, , data] = readFileSync(`/proc/${pid}/statm`, 'utf8')
    .trim()
    .split(/\s+/)
    .map(Number)
  const page = pageSize()
  return {
    vsz: size * page,
    rss: resident * page,
    shared: shared * page,
    text: text * page,
    data: data * page,
  }
}

/** /proc/<pid>/status as a map of field name to its raw value text. */
export function readStatus(pid = 'self') {
  const fields = new Map()
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  return fields
}

/** MemTotal from /proc/meminfo, in bytes. */
export function memTotal() {
  const match = /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))
  if (match === null) throw new Error('no MemTotal in /proc/meminfo')
  return Number(match[1]) * KiB
}

/** Number of threads of a process (entries of /proc/<pid>/task). */
export function threadCount(pid = 'self') {
  return readdirSync(`/proc/${pid}/task`).length
}

/** Thread names of a process, for failure messages. */
export function threadNames(pid = 'self') {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
    } catch {
      return `${tid}?`
    }
  })
}

/** Open file descriptors of a process, as fd -> target. */
export function openFds(pid = 'self') {
  const fds = new Map()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      fds.set(fd, readlinkSync(`/proc/${pid}/fd/${fd}`))
    } catch {
      // closed between readdir and readlink (the readdir's own fd, say)
    }
  }
  return fds
}
