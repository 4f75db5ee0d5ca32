// memsentry's figures against pidstat -r, watching the same process over the same seconds.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { readFileSync } from 'node:fs'

import { childScript, describe, startNode } from './helpers/child.mjs'
import { waitFor } from './helpers/wait.mjs'

const execFileAsync = promisify(execFile)
const KiB = 1024

function assertPidstatInstalled() {
  try {
    execFileSync('pidstat', ['-V'], { stdio: 'pipe' })
  } catch (err) {
    assert.fail(
      `pidstat is needed by this test and could not be run (${err.code ?? err.message}): ` +
        'install the sysstat package (apt-get install -y sysstat)',
    )
  }
}

/**
 * The per-second lines of `pidstat -r -p <pid>` run with LC_ALL=C:
 *   Time UID PID minflt/s majflt/s VSZ RSS %MEM Command   (VSZ and RSS in KiB)
 * as { secondOfDay, minfltPerSec, majfltPerSec, vszBytes, rssBytes, memPercent }.
 */
function parsePidstat(text, pid) {
  const rows = []
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/)
    const time = /^(\d\d):(\d\d):(\d\d)$/.exec(cols[0])
    if (time === null || cols.length < 9 || Number(cols[2]) !== pid) continue
    rows.push({
      secondOfDay: Number(time[1]) * 3600 + Number(time[2]) * 60 + Number(time[3]),
      minfltPerSec: Number(cols[3]),
      majfltPerSec: Number(cols[4]),
      vszBytes: Number(cols[5]) * KiB,
      rssBytes: Number(cols[6]) * KiB,
      memPercent: Number(cols[7]),
      command: cols[8],
    })
  }
  return rows
}

// Local time of day in seconds, as pidstat prints it (same TZ as this process).
function secondOfDay(epochMs) {
  const d = new Date(epochMs)
  return d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds() + d.getMilliseconds() / 1000
}

function secondsApart(a, b) {
  const diff = Math.abs(a - b) % 86_400
  return Math.min(diff, 86_400 - diff)
}

function assertWithin(ours, theirs, fraction, absolute, what) {
  const allowed = Math.max(Math.abs(theirs) * fraction, absolute)
  assert.ok(
    Math.abs(ours - theirs) <= allowed,
    `${what}: memsentry ${ours} vs pidstat ${theirs} (allowed difference ${allowed})`,
  )
}

test('rss, vsz, %MEM and minflt/s agree with pidstat -r over the same seconds', async (t) => {
  assertPidstatInstalled()
  const { child, done, lines } = startNode([childScript('pidstat-target.js')], {
    timeoutMs: 55_000,
  })
  t.after(() => child.kill('SIGTERM'))
  const ready = await waitFor(() => lines.find((l) => l.type === 'ready'), {
    timeoutMs: 15_000,
    message: () => "the child's first sample",
  })
  assert.equal(ready.pid, child.pid)
  // pidstat's Command column is the process's comm: 'node' up to Node 22, but Node 24 names
  // its main thread 'MainThread' (26: 'node-MainThread'), and that is the process's comm.
  const comm = readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim()

  const { stdout: pidstatOut } = await execFileAsync(
    'pidstat',
    ['-r', '-p', String(child.pid), '1', '3'],
    {
      env: { ...process.env, LC_ALL: 'C' },
      timeout: 20_000,
    },
  )
  const pidstatDoneAt = Date.now()
  // One more sample so ours cover pidstat's last second.
  await waitFor(() => lines.some((l) => l.type === 'sample' && l.time > pidstatDoneAt), {
    timeoutMs: 5000,
    message: 'a sample after pidstat finished',
  })
  child.kill('SIGTERM')
  const result = await done
  assert.equal(result.signal, null, describe(result))
  assert.equal(result.code, 0, describe(result))

  const rows = parsePidstat(pidstatOut, child.pid)
  assert.equal(rows.length, 3, `three per-second pidstat lines:\n${pidstatOut}`)
  assert.equal(rows[0].command, comm)
  // The child reads ~5000 untouched pages a second, so the rate comparison below has teeth.
  assert.ok(
    rows.some((row) => row.minfltPerSec > 100),
    `the child's fault generator shows in pidstat:\n${pidstatOut}`,
  )
  const samples = lines.filter((l) => l.type === 'sample')
  for (const s of samples) assert.equal(s.pid, child.pid)

  for (const row of rows) {
    // pidstat reads at the second it prints (truncated): the nearest of our 1 s samples.
    let best = null
    for (const s of samples) {
      const apart = secondsApart(secondOfDay(s.time), row.secondOfDay + 0.5)
      if (best === null || apart < best.apart) best = { s, apart }
    }
    const context = `pidstat line at ${row.secondOfDay}s vs sample ${JSON.stringify(best.s)}`
    assert.ok(best.apart <= 1.5, `a sample within 1.5 s: ${context}\n${pidstatOut}`)
    const s = best.s
    assert.ok(s.rss > 90 * 1024 * KiB, `the child holds ~100 MB: ${s.rss}`)
    assertWithin(s.rss, row.rssBytes, 0.05, 0, `RSS (${context})`)
    assertWithin(s.vsz, row.vszBytes, 0.05, 0, `VSZ (${context})`)
    // pidstat prints %MEM with two decimals.
    assertWithin(s.memPercent, row.memPercent, 0.05, 0.01, `%MEM (${context})`)

    for (const [name, value] of [
      ['minorFaultsPerSec', s.minorFaultsPerSec],
      ['majorFaultsPerSec', s.majorFaultsPerSec],
    ]) {
      assert.ok(Number.isFinite(value) && value >= 0, `${name} ${value} (${context})`)
    }
    assert.ok(Number.isFinite(row.minfltPerSec) && row.minfltPerSec >= 0, pidstatOut)
    if (row.minfltPerSec > 100) {
      assert.ok(
        s.minorFaultsPerSec >= row.minfltPerSec / 10 &&
          s.minorFaultsPerSec <= row.minfltPerSec * 10,
        `minflt/s of the same order: memsentry ${s.minorFaultsPerSec} vs pidstat ${row.minfltPerSec}`,
      )
    }
  }
})
