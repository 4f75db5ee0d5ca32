// The queue from the sampler thread to JS stays bounded while the event loop is blocked: samples
// are coalesced into the newest one, threshold events are all kept, in order.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

import { waitFor } from './helpers/wait.mjs'

const require = createRequire(import.meta.url)
const { MemorySentry, rss } = require('../index.js')

const MiB = 1024 * 1024

test('a blocked event loop gets the newest sample, not a backlog, and every threshold event in order', async () => {
  const base = rss()
  const sentry = new MemorySentry({
    intervalMs: 10,
    children: 'none',
    leak: false,
    thresholds: [
      { name: 'first', metric: 'rss', above: base + 48 * MiB },
      { name: 'second', metric: 'rss', above: base + 144 * MiB },
    ],
  })
  const samples = []
  const crossings = []
  sentry.on('sample', (s) => samples.push(s))
  sentry.on('threshold', (e) => crossings.push(e))
  await waitFor(() => samples.length >= 3, { message: "'sample' events flowing" })

  // 3 s without yielding, the way a synchronous JSON.parse of a big body or a long sort blocks
  // a server; RSS crosses 'first' after about 1 s and 'second' after about 2 s.
  const ticksBefore = sentry.stats().ticks
  const buffers = []
  const blockedFrom = Date.now()
  for (let elapsed = 0; elapsed < 3000; elapsed = Date.now() - blockedFrom) {
    if (elapsed >= 1000 && buffers.length === 0) buffers.push(Buffer.alloc(96 * MiB, 1))
    if (elapsed >= 2000 && buffers.length === 1) buffers.push(Buffer.alloc(96 * MiB, 1))
  }
  const blockedTo = Date.now()
  const ticksBlocked = sentry.stats().ticks - ticksBefore
  // Without ticks while blocked there would be nothing to pile up, and the test could not fail.
  assert.ok(ticksBlocked >= 50, `the sampler ticked ${ticksBlocked} times in 3 s at 10 ms`)

  await waitFor(() => samples.some((s) => s.time > blockedTo), {
    timeoutMs: 5_000,
    message: 'a sample taken after the block',
  })
  const fromBlock = samples.filter((s) => s.time >= blockedFrom && s.time <= blockedTo)
  // Unbounded, every tick of the block arrives here, one call into JS each (238 for 237 ticks
  // before the outbox).
  assert.ok(
    fromBlock.length <= 2,
    `${fromBlock.length} samples taken during the block were delivered, for ${ticksBlocked} ticks`,
  )
  for (let i = 1; i < samples.length; i++) {
    assert.ok(samples[i].time >= samples[i - 1].time, 'samples arrive oldest first')
  }

  assert.deepEqual(
    crossings.map((e) => `${e.name} ${e.direction}`),
    ['first up', 'second up'],
    'each crossing, in the order it happened',
  )
  const [first, second] = crossings
  assert.ok(first.sample.time >= blockedFrom && first.sample.time < second.sample.time)
  assert.ok(second.value >= base + 144 * MiB)
  assert.equal(sentry.stats().droppedEvents, 0)
  // The history still has every tick of the block.
  const history = sentry.history({ sinceMs: blockedFrom }).filter((s) => s.time <= blockedTo)
  assert.ok(history.length >= ticksBlocked - 2, `${history.length} of ${ticksBlocked} in history`)

  await sentry.close()
  // Held to here, so that RSS stayed above both thresholds (no 'down' crossing).
  assert.equal(buffers.length, 2)
})
