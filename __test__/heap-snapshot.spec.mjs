import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

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

test('a symlink planted in the snapshot directory is replaced, never written through', async () => {
  // V8 opens the snapshot by path. Someone who can write in `dir` swaps whatever V8 is about to
  // open there for a symlink to a file of the process's owner; that file must stay as it was.
  const require = createRequire(import.meta.url)
  const v8 = require('node:v8')
  const native = require('../lib/native.js')
  const { MemorySentry } = require('../index.js')
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-snap-link-'))
  const dir = path.join(root, 'snaps')
  const victim = path.join(root, 'victim')
  fs.writeFileSync(victim, 'precious')
  const realWrite = v8.writeHeapSnapshot
  const RealNative = native.NativeSentry
  let onEvent = null
  let sentry = null
  try {
    v8.writeHeapSnapshot = (file, ...rest) => {
      const inDir = path.join(dir, path.basename(file))
      fs.rmSync(inDir, { force: true })
      fs.symlinkSync(victim, inDir)
      return realWrite.call(v8, file, ...rest)
    }
    // The sentry's event callback, to hand it a 'leak' event as the sampler thread would.
    native.NativeSentry = class extends RealNative {
      constructor(options, callback) {
        super(options, callback)
        onEvent = callback
      }
    }
    sentry = new MemorySentry({ intervalMs: 3_600_000, heapSnapshot: { dir } })
    const event = { metric: 'rss', slopeBytesPerSec: 1e6, suspect: 'heap' }
    onEvent('leak', event)
    assert.equal(fs.readFileSync(victim, 'utf8'), 'precious', 'the victim file is untouched')
    assert.ok(event.heapSnapshot, 'the snapshot was written')
    const st = fs.lstatSync(event.heapSnapshot)
    assert.ok(st.isFile(), 'a regular file, not the planted link')
    assert.equal(st.mode & 0o777, 0o600)
    assert.match(fs.readFileSync(event.heapSnapshot, 'utf8').slice(0, 200), /"snapshot":\{"meta"/)
    assert.deepEqual(fs.readdirSync(dir), [path.basename(event.heapSnapshot)], 'nothing left over')
  } finally {
    v8.writeHeapSnapshot = realWrite
    native.NativeSentry = RealNative
    await sentry?.close()
    fs.rmSync(root, { recursive: true, force: true })
  }
})
