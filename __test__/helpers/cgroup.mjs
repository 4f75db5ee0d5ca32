// A memory cgroup with a limit, made for one test: the "container" of a pod that a test runs for
// real, so that memsentry sees a cgroup limit as it would in Kubernetes.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

let made = 0

/** This process's memory cgroup: { version, dir } (v1: the memory hierarchy). */
function ownMemoryCgroup() {
  const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')
  const v1 = lines.map((l) => l.split(':')).find(([, ctrl]) => ctrl.split(',').includes('memory'))
  if (v1) {
    const dir = path.join('/sys/fs/cgroup/memory', v1[2])
    return { version: 1, dir: fs.existsSync(dir) ? dir : '/sys/fs/cgroup/memory' }
  }
  const v2 = lines.find((l) => l.startsWith('0::'))
  return { version: 2, dir: path.join('/sys/fs/cgroup', v2.slice(3)) }
}

/**
 * A new memory cgroup under this process's own, with a limit: the pod's "container". Needs root
 * and a writable cgroup fs, as on the project's machines; anything else fails with the reason.
 */
export function makeContainerCgroup(limitBytes) {
  const own = ownMemoryCgroup()
  const dir = path.join(own.dir, `memsentry-test-${process.pid}-${++made}`)
  try {
    fs.mkdirSync(dir)
    const limitFile = own.version === 1 ? 'memory.limit_in_bytes' : 'memory.max'
    fs.writeFileSync(path.join(dir, limitFile), String(limitBytes))
  } catch (err) {
    throw new Error(
      `cannot make a memory cgroup with a limit for the pod (cgroup v${own.version}, ${dir}): ` +
        `${err.message}. This test needs root and a writable cgroup fs (the project's machines have both).`,
    )
  }
  return {
    ...own,
    dir,
    remove: async () => {
      const procs = path.join(dir, 'cgroup.procs')
      for (let i = 0; i < 50 && fs.existsSync(dir); i++) {
        for (const pid of fs.readFileSync(procs, 'utf8').split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL') // only processes this test started live there
          } catch {}
        }
        try {
          fs.rmdirSync(dir)
        } catch {
          await sleep(100)
        }
      }
    },
  }
}

/** Spawns `command args` inside `cgroup` from its first instruction (memsentry reads its cgroup at start). */
export function spawnInCgroup(cgroup, command, args, options) {
  return spawn(
    'sh',
    // No core file if it aborts (V8 does at its heap limit).
    [
      '-c',
      'ulimit -c 0; echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
      'sh',
      cgroup.dir,
      command,
      ...args,
    ],
    options,
  )
}
