// Interleaved micro-benchmark rounds: every contender runs once per round, in an order rotated
// from round to round, so slow drifts of the machine (other processes, frequency scaling) hit all
// contenders alike. Each contender is calibrated once to a fixed number of operations per round;
// the figure reported is the median of the rounds' ns/op.

import { performance } from 'node:perf_hooks'

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

// Keeps results observable so no call can be optimized away.
let sink = 0
export function consume(value) {
  sink = (sink + (typeof value === 'number' ? value : value == null ? 1 : 2)) % 1e9
}
export function sinkValue() {
  return sink
}

/**
 * @typedef {{ name: string, sync?: () => unknown, async?: () => Promise<unknown> }} Contender
 * A contender is one operation; `sync` runs in a tight loop, `async` is awaited sequentially.
 */

async function runOnce(contender, ops) {
  const start = performance.now()
  if (contender.sync) {
    const fn = contender.sync
    for (let i = 0; i < ops; i++) consume(fn())
  } else {
    const fn = contender.async
    for (let i = 0; i < ops; i++) consume(await fn())
  }
  return ((performance.now() - start) * 1e6) / ops
}

// Ops per round so that one round of this contender takes about `roundMs`. Doubles the count
// until a run lasts a quarter of a round (which also warms the JIT and any lazy initialization),
// then sizes a full round from a second, full-length run: one slow first call cannot skew it.
async function calibrate(contender, roundMs) {
  let ops = 1
  let elapsedMs
  for (;;) {
    const nsPerOp = await runOnce(contender, ops)
    elapsedMs = (nsPerOp * ops) / 1e6
    if (elapsedMs >= roundMs / 4 || ops >= 1 << 24) break
    ops *= 2
  }
  const estimate = Math.max(3, Math.ceil((ops * roundMs) / Math.max(elapsedMs, 1e-3)))
  const nsPerOp = await runOnce(contender, estimate)
  return Math.max(3, Math.round((roundMs * 1e6) / nsPerOp))
}

/**
 * @param {Contender[]} contenders
 * @param {{ rounds: number, roundMs: number, onRound?: (round: number) => void }} options
 * @returns {Promise<Record<string, { ops: number, rounds: number[], median: number }>>} ns/op
 */
export async function interleave(contenders, { rounds, roundMs, onRound }) {
  const ops = new Map()
  for (const c of contenders) ops.set(c.name, await calibrate(c, roundMs))
  const results = Object.fromEntries(
    contenders.map((c) => [c.name, { ops: ops.get(c.name), rounds: [], median: NaN }]),
  )
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(k + r) % contenders.length]
      results[c.name].rounds.push(await runOnce(c, ops.get(c.name)))
    }
    onRound?.(r)
  }
  for (const entry of Object.values(results)) entry.median = median(entry.rounds)
  return results
}

export function formatNs(ns) {
  if (!Number.isFinite(ns)) return 'n/a'
  if (ns < 1_000) return `${ns.toFixed(0)} ns`
  if (ns < 1_000_000) return `${(ns / 1_000).toFixed(ns < 10_000 ? 2 : 1)} µs`
  return `${(ns / 1_000_000).toFixed(2)} ms`
}

export function formatRatio(x) {
  if (!Number.isFinite(x)) return 'n/a'
  return `${x.toFixed(x < 10 ? 2 : 1)}x`
}
