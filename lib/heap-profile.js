'use strict'

// Reduces a V8 sampling heap profile (`HeapProfiler.getSamplingProfile`) to allocation sites:
// the live sampled bytes grouped by the first frame in the application's own code. Pure: no
// inspector, no clock, so it is unit-tested on saved and synthetic profiles.
//
// What a profile holds: a tree of call frames (`head`), and one entry per sampled allocation that
// is still alive (`samples: [{ size, nodeId, ordinal }]`). `size` is already V8's unbiased estimate
// of the bytes that sample stands for (object size × 1 / (1 − e^(−size / interval))), so sums of
// `size` estimate live bytes. V8 records frames per function: a frame's line and column are where
// the function starts (0-based in the protocol), not the line of the allocation inside it.

/** Sites listed at most, the heaviest first; the rest are summed in `otherBytes`. */
const MAX_SITES = 10
/** Frames kept per site's stack, from the allocation outward. */
const MAX_STACK = 8

/**
 * 'internal': V8 builtins and runtime entries (no url: `(root)`, `(V8 API)`, `JSON.parse`...) and
 * Node's own modules (`node:...`, and `internal/...` on old versions); 'own': a file under one of
 * `ownRoots` (memsentry's own code: what it allocates, such as the profile it reads, is not the
 * application's); 'dependency': a file under node_modules; 'user': any other script, the
 * application's own code.
 */
function frameKind(callFrame, ownRoots = []) {
  const url = callFrame.url ?? ''
  if (url === '' || url.startsWith('node:') || url.startsWith('internal/')) return 'internal'
  if (ownRoots.length > 0) {
    const file = framePath(url)
    if (ownRoots.some((root) => file.startsWith(root))) return 'own'
  }
  if (/[/\\]node_modules[/\\]/.test(url)) return 'dependency'
  return 'user'
}

/** The file of a frame as a path (ESM frames are file:// URLs), or the url as it is. */
function framePath(url) {
  if (!url.startsWith('file://')) return url
  try {
    return decodeURIComponent(new URL(url).pathname)
  } catch {
    return url
  }
}

/** `function (file:line:column)`, 1-based, as Node prints stack frames. */
function formatFrame(callFrame) {
  const name = callFrame.functionName || '(anonymous)'
  if (!callFrame.url) return name
  return `${name} (${framePath(callFrame.url)}:${callFrame.lineNumber + 1}:${callFrame.columnNumber + 1})`
}

/**
 * Allocation sites from a sampling heap profile.
 *
 * Each sample is charged to the first frame, walking from the allocation outward, in the user's
 * code; when no frame is, to the first frame in node_modules; when none is either, to the
 * allocating frame itself. Sites are keyed by function (url, line, column, name). Samples that
 * code under `ownRoots` allocated itself (its frame is the first one past Node's and V8's) are
 * left out: they are the monitor's, not the application's.
 * `maxOrdinal`: count only samples with `ordinal <= maxOrdinal` (see ./diagnosis.js: samples taken
 * in the last seconds of a run are mostly young garbage that no scavenge has freed yet).
 *
 * Returns `{ sampledBytes, sampleCount, otherBytes, sites }`, each site `{ functionName, url,
 * line, column, kind, bytes, share, count, stack }`: line and column 1-based (the function's
 * start), share of sampledBytes in 0..1, stack the heaviest stack that allocated there, as
 * `function (file:line:column)` from the allocation outward.
 */
function reduceProfile(
  profile,
  { maxSites = MAX_SITES, maxStack = MAX_STACK, maxOrdinal = Infinity, ownRoots = [] } = {},
) {
  // Each node's parent and the site its samples are charged to, found in one walk from the root
  // (iterative: a deep recursion in the profiled code must not overflow our stack).
  const parent = new Map()
  const frameOf = new Map()
  const siteNodeOf = new Map()
  const stack = [[profile.head, null, null, null, false]]
  while (stack.length > 0) {
    const [node, parentId, nearestUser, nearestDep, nearestIsOwn] = stack.pop()
    parent.set(node.id, parentId)
    frameOf.set(node.id, node.callFrame)
    const kind = frameKind(node.callFrame, ownRoots)
    // The walk goes root → leaf, so the "first frame from the allocation outward" of a kind is
    // the deepest one on the path: each node overrides what its ancestors found.
    const user = kind === 'user' ? node.id : nearestUser
    const dep = kind === 'dependency' ? node.id : nearestDep
    const own = kind === 'internal' ? nearestIsOwn : kind === 'own'
    // null: memsentry's own allocation, not counted.
    siteNodeOf.set(node.id, own ? null : (user ?? dep ?? node.id))
    for (const child of node.children ?? []) stack.push([child, node.id, user, dep, own])
  }

  // Bytes per allocating node, then per site.
  const byNode = new Map()
  let sampledBytes = 0
  let sampleCount = 0
  for (const s of profile.samples ?? []) {
    if (!(s.ordinal <= maxOrdinal)) continue
    if (siteNodeOf.get(s.nodeId) == null) continue
    const n = byNode.get(s.nodeId)
    if (n === undefined) byNode.set(s.nodeId, { bytes: s.size, count: 1 })
    else {
      n.bytes += s.size
      n.count++
    }
    sampledBytes += s.size
    sampleCount++
  }

  const sites = new Map()
  for (const [nodeId, { bytes, count }] of byNode) {
    const frame = frameOf.get(siteNodeOf.get(nodeId))
    const key = `${frame.url}\0${frame.lineNumber}\0${frame.columnNumber}\0${frame.functionName}`
    let site = sites.get(key)
    if (site === undefined) {
      site = { key, frame, bytes: 0, count: 0, heaviest: nodeId, heaviestBytes: -1 }
      sites.set(key, site)
    }
    site.bytes += bytes
    site.count += count
    // Ties go to the lower node id, so the result does not depend on Map order.
    if (bytes > site.heaviestBytes || (bytes === site.heaviestBytes && nodeId < site.heaviest)) {
      site.heaviest = nodeId
      site.heaviestBytes = bytes
    }
  }

  // Heaviest first; equal bytes in key order, so the result does not depend on Map order.
  const ranked = [...sites.values()].sort(
    (a, b) => b.bytes - a.bytes || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  )
  const listed = ranked.slice(0, maxSites).map((site) => {
    const frames = []
    for (let id = site.heaviest; id != null && frames.length < maxStack; id = parent.get(id)) {
      const f = frameOf.get(id)
      // The root and V8's bookkeeping entries say nothing about the code.
      if (parent.get(id) == null || (!f.url && f.functionName.startsWith('('))) continue
      frames.push(formatFrame(f))
    }
    const { frame } = site
    return {
      functionName: frame.functionName || '(anonymous)',
      url: frame.url,
      line: frame.lineNumber + 1,
      column: frame.columnNumber + 1,
      kind: frameKind(frame, ownRoots),
      bytes: Math.round(site.bytes),
      share: sampledBytes > 0 ? site.bytes / sampledBytes : 0,
      count: site.count,
      stack: frames,
    }
  })
  const listedBytes = listed.reduce((sum, s) => sum + s.bytes, 0)
  return {
    sampledBytes: Math.round(sampledBytes),
    sampleCount,
    otherBytes: Math.max(0, Math.round(sampledBytes) - listedBytes),
    sites: listed,
  }
}

/** The highest sample ordinal in a profile (0 for none). */
function maxOrdinalOf(profile) {
  let max = 0
  for (const s of profile.samples ?? []) if (s.ordinal > max) max = s.ordinal
  return max
}

module.exports = { reduceProfile, maxOrdinalOf, frameKind, formatFrame, framePath }
