'use strict'
// What a terminated worker leaves behind: `npm run bench:teardown [-- rounds blockedMs]`.
//
// Workers terminated while their event loop is blocked and their sentry has thousands of
// threshold events waiting, round after round; prints the process's RSS after each round and
// its growth from the fifth. napi-rs never frees what is still in a threadsafe function's queue
// when a worker ends, so what that queue holds must be small: each round here queues up to the
// outbox's cap (4096 threshold events). A measurement, not a test: worker churn moves the RSS by
// a few MiB on its own.
// argv[2]: rounds (default 30), argv[3]: ms each worker is blocked (default 1500).

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Worker, isMainThread, workerData, parentPort } = require('node:worker_threads')
const { setTimeout: sleep } = require('node:timers/promises')

const memsentry = path.join(__dirname, '..')
const MiB = 1024 * 1024
// 48 rules between 60 and 295 MiB: each flip of the RSS between 50 and 300 MiB crosses all of
// them, so a blocked worker reaches the cap of 4096 waiting events within a second or two.
const RULES = 48

if (!isMainThread) {
  const { MemorySentry } = require(memsentry)
  const sentry = new MemorySentry({
    procRoot: workerData.root,
    intervalMs: 10,
    children: 'none',
    leak: false,
    thresholds: Array.from({ length: RULES }, (_, i) => ({
      name: `r${i}`,
      metric: 'rss',
      above: (60 + 5 * i) * MiB,
      hysteresis: MiB,
    })),
  })
  sentry.on('threshold', () => {})
  // A file rewritten under the reader fails to parse now and then: an 'error' event, listened to.
  sentry.on('error', () => {})
  parentPort.postMessage('ready')
  // Blocked until terminated, as a synchronous parse of a huge body blocks a server.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000)
} else {
  const rounds = Number(process.argv[2] ?? 30)
  const blockedMs = Number(process.argv[3] ?? 1500)
  // A proc root of this process whose RSS (status and statm) the main thread flips.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-backlog-'))
  const self = path.join(root, 'self')
  fs.mkdirSync(self)
  for (const f of ['meminfo', 'self/stat']) {
    fs.writeFileSync(path.join(root, f), fs.readFileSync(path.join('/proc', f)))
  }
  const status = fs.readFileSync('/proc/self/status', 'utf8')
  // statm counts pages: 4 KiB on x64, 4, 16 or 64 KiB on arm64.
  const pageSize = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }))
  const setRss = (mib) => {
    fs.writeFileSync(
      path.join(self, 'statm'),
      `100000 ${(mib * MiB) / pageSize} 1000 100 0 5000 0\n`,
    )
    fs.writeFileSync(
      path.join(self, 'status'),
      status.replace(/VmRSS:\s+\d+ kB/, `VmRSS:\t${mib * 1024} kB`),
    )
  }
  setRss(50)

  ;(async () => {
    const rss = []
    for (let round = 0; round < rounds; round++) {
      const worker = new Worker(__filename, { workerData: { root } })
      await new Promise((resolve, reject) => {
        worker.once('message', resolve)
        worker.once('error', reject)
      })
      let high = false
      for (const until = Date.now() + blockedMs; Date.now() < until;) {
        high = !high
        setRss(high ? 300 : 50)
        await sleep(3)
      }
      await worker.terminate()
      rss.push(process.memoryUsage.rss())
    }
    fs.rmSync(root, { recursive: true, force: true })
    const mib = rss.map((b) => Math.round(b / MiB))
    const from = Math.min(4, mib.length - 1)
    console.log(`RSS after each round (MiB): ${mib.join(' ')}`)
    console.log(`growth from round ${from + 1} to ${mib.length}: ${mib.at(-1) - mib[from]} MiB`)
  })().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}
