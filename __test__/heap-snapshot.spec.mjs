import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const leaker = fileURLToPath(new URL('./fixtures/snapshot/leaker.js', import.meta.url))

function runLeaker(dir) {
  const out = execFileSync(process.execPath, [leaker, dir], { encoding: 'utf8', timeout: 90_000 })
  return JSON.parse(out.trim().split('\n').pop())
}

test('a confirmed leak writes one heap snapshot, mode 0600, and the event names it', () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-snap-')), 'snaps')
  try {
    const event = runLeaker(dir)
    assert.equal(event.timeout, undefined, 'the leak was caught')
    assert.ok(['heap', 'native', 'unknown'].includes(event.suspect))
    assert.ok(event.heapSnapshot, 'the leak event carries the snapshot path')
    assert.equal(path.dirname(event.heapSnapshot), dir)
    const st = fs.statSync(event.heapSnapshot)
    assert.equal(st.mode & 0o777, 0o600)
    assert.ok(st.size > 1e6, `a real snapshot (${st.size} bytes)`)
    // It parses as a V8 heap snapshot.
    const head = fs.readFileSync(event.heapSnapshot, 'utf8').slice(0, 200)
    assert.match(head, /"snapshot":\{"meta"/)
    assert.deepEqual(fs.readdirSync(dir).length, 1)
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true })
  }
})
