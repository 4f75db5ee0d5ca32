// The reducer of sampling heap profiles (lib/heap-profile.js), on synthetic profiles and on one
// saved from a Koa app (fixtures/diagnosis/profile-koa.json, made by make-profile.mjs there).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { reduceProfile, frameKind, formatFrame } = require('../lib/heap-profile.js')

// A profile from nested arrays: [functionName, url, line0, col0, children...]; ids in walk order.
function profileOf(tree, samples) {
  let next = 1
  const build = ([functionName, url, lineNumber, columnNumber, ...children]) => ({
    id: next++,
    callFrame: { functionName, scriptId: '0', url, lineNumber, columnNumber },
    selfSize: 0,
    children: children.map(build),
  })
  return { head: build(tree), samples }
}
const sample = (nodeId, size, ordinal) => ({ nodeId, size, ordinal })

const ROOT = ['(root)', '', -1, -1]

test('frames: builtins and node: are internal, node_modules a dependency, the rest user code', () => {
  assert.equal(frameKind({ url: '' }), 'internal')
  assert.equal(frameKind({ url: 'node:internal/timers' }), 'internal')
  assert.equal(frameKind({ url: 'internal/process/task_queues' }), 'internal')
  assert.equal(frameKind({ url: '/srv/app/node_modules/koa/lib/application.js' }), 'dependency')
  assert.equal(frameKind({ url: 'file:///srv/app/node_modules/@koa/router/x.mjs' }), 'dependency')
  assert.equal(frameKind({ url: '/srv/app/routes/orders.js' }), 'user')
  assert.equal(frameKind({ url: 'file:///srv/app/server.mjs' }), 'user')
  assert.equal(frameKind({ url: '/srv/memsentry/lib/x.js' }, ['/srv/memsentry/lib/']), 'own')
  assert.equal(
    formatFrame({
      functionName: '',
      url: 'file:///srv/app/a%20b.mjs',
      lineNumber: 9,
      columnNumber: 0,
    }),
    '(anonymous) (/srv/app/a b.mjs:10:1)',
  )
  assert.equal(
    formatFrame({ functionName: 'JSON.parse', url: '', lineNumber: -1, columnNumber: -1 }),
    'JSON.parse',
  )
})

test('a sample is charged to the first user frame from the allocation outward', () => {
  // (root) → main (node:) → dispatch (koa-compose) → handler (user) → loadOrder (user) → repeat
  const p = profileOf(
    [
      ...ROOT,
      [
        'processTicksAndRejections',
        'node:internal/process/task_queues',
        94,
        4,
        [
          'dispatch',
          '/app/node_modules/koa-compose/index.js',
          39,
          22,
          [
            'handler',
            'file:///app/server.mjs',
            41,
            26,
            ['loadOrder', 'file:///app/server.mjs', 9, 0, ['repeat', '', -1, -1]],
            ['JSON.stringify', '', -1, -1],
          ],
        ],
      ],
    ],
    // ids: 1 root, 2 ticks, 3 dispatch, 4 handler, 5 loadOrder, 6 repeat, 7 JSON.stringify
    [sample(6, 3000, 1), sample(6, 3000, 2), sample(7, 1000, 3), sample(4, 500, 4)],
  )
  const r = reduceProfile(p)
  assert.equal(r.sampledBytes, 7500)
  assert.equal(r.sampleCount, 4)
  assert.equal(r.otherBytes, 0)
  assert.deepEqual(
    r.sites.map((s) => [s.functionName, s.line, s.column, s.bytes, s.count, s.kind]),
    [
      ['loadOrder', 10, 1, 6000, 2, 'user'],
      ['handler', 42, 27, 1500, 2, 'user'],
    ],
  )
  assert.equal(r.sites[0].url, 'file:///app/server.mjs')
  assert.equal(r.sites[0].share, 0.8)
  assert.equal(r.sites[1].share, 0.2)
  // From the allocation outward; the root left out.
  assert.deepEqual(r.sites[0].stack, [
    'repeat',
    'loadOrder (/app/server.mjs:10:1)',
    'handler (/app/server.mjs:42:27)',
    'dispatch (/app/node_modules/koa-compose/index.js:40:23)',
    'processTicksAndRejections (node:internal/process/task_queues:95:5)',
  ])
  // The heaviest of the handler's two paths: its own allocation (500) is lighter than the
  // JSON.stringify below it (1000).
  assert.equal(r.sites[1].stack[0], 'JSON.stringify')
})

test('node_modules only when no frame is the user code; else the allocating frame', () => {
  const p = profileOf(
    [
      ...ROOT,
      [
        'outer',
        '/app/node_modules/lib/outer.js',
        0,
        0,
        ['inner', '/app/node_modules/lib/inner.js', 4, 2, ['Buffer.from', 'node:buffer', 1, 1]],
      ],
      ['(V8 API)', '', -1, -1, ['parse', '', -1, -1]],
    ],
    // ids: 1 root, 2 outer, 3 inner, 4 Buffer.from, 5 (V8 API), 6 parse
    [sample(4, 100, 1), sample(6, 50, 2)],
  )
  const r = reduceProfile(p)
  assert.deepEqual(
    r.sites.map((s) => [s.functionName, s.url, s.line, s.kind, s.bytes]),
    [
      ['inner', '/app/node_modules/lib/inner.js', 5, 'dependency', 100],
      ['parse', '', 0, 'internal', 50],
    ],
  )
  // V8's bookkeeping entries such as (V8 API) are not frames of the code.
  assert.deepEqual(r.sites[1].stack, ['parse'])
})

test('a user frame further out wins over a dependency frame nearer the allocation', () => {
  const p = profileOf(
    [
      ...ROOT,
      [
        'main',
        '/app/main.js',
        2,
        0,
        ['parse', '/app/node_modules/yaml/parse.js', 7, 0, ['JSON.parse', '', -1, -1]],
      ],
    ],
    [sample(4, 64, 1)],
  )
  const [site] = reduceProfile(p).sites
  assert.deepEqual([site.functionName, site.url, site.line], ['main', '/app/main.js', 3])
})

test('sites past maxSites are summed in otherBytes; equal sites sort by key; empty profiles', () => {
  const leaves = Array.from({ length: 5 }, (_, i) => [`f${i}`, '/app/a.js', i, 0])
  const p = profileOf(
    [...ROOT, ...leaves],
    [sample(2, 100, 1), sample(3, 100, 2), sample(4, 300, 3), sample(5, 50, 4), sample(6, 50, 5)],
  )
  const r = reduceProfile(p, { maxSites: 3 })
  assert.deepEqual(
    r.sites.map((s) => s.functionName),
    ['f2', 'f0', 'f1'],
  )
  assert.equal(r.otherBytes, 100)
  assert.equal(r.sampledBytes, 600)

  const empty = reduceProfile(profileOf([...ROOT], []))
  assert.deepEqual(empty, { sampledBytes: 0, sampleCount: 0, otherBytes: 0, sites: [] })
  // Samples of a node the tree does not have are ignored, not thrown on.
  assert.equal(reduceProfile(profileOf([...ROOT], [sample(99, 10, 1)])).sampledBytes, 0)
})

test("memsentry's own allocations are left out; app code it calls back is not", () => {
  const own = '/srv/memsentry/lib/'
  const p = profileOf(
    [
      ...ROOT,
      [
        'finish',
        '/srv/memsentry/lib/diagnosis.js',
        9,
        0,
        ['post', 'node:inspector', 1, 0, ['JSON.parse', '', -1, -1]],
        ['onLeak', '/srv/app/main.js', 4, 0, ['push', '', -1, -1]],
      ],
    ],
    // ids: 1 root, 2 finish, 3 post, 4 JSON.parse, 5 onLeak, 6 push
    [sample(4, 1000, 1), sample(2, 10, 2), sample(6, 300, 3)],
  )
  const r = reduceProfile(p, { ownRoots: [own] })
  assert.equal(r.sampledBytes, 300)
  assert.deepEqual(
    r.sites.map((s) => [s.functionName, s.bytes]),
    [['onLeak', 300]],
  )
  // Without ownRoots, memsentry's files are user code like any other.
  assert.equal(reduceProfile(p).sites[0].functionName, 'finish')
})

test('maxStack bounds each stack; a deep tree does not overflow the stack', () => {
  // Built bottom-up without recursion: 20,000 nested frames, the leaf deepest.
  const frame = (id, functionName, lineNumber, children) => ({
    id,
    callFrame: { functionName, scriptId: '0', url: '/app/deep.js', lineNumber, columnNumber: 0 },
    selfSize: 0,
    children,
  })
  let node = frame(20_001, 'leaf', 0, [])
  for (let i = 0; i < 20_000; i++) node = frame(20_000 - i, `f${i}`, i + 1, [node])
  const p = { head: frame(0, '(root)', -1, [node]), samples: [sample(20_001, 10, 1)] }
  p.head.callFrame.url = ''
  const [site] = reduceProfile(p, { maxStack: 3 }).sites
  assert.equal(site.functionName, 'leaf')
  assert.deepEqual(site.stack, [
    'leaf (/app/deep.js:1:1)',
    'f0 (/app/deep.js:2:1)',
    'f1 (/app/deep.js:3:1)',
  ])
})

test('a saved profile of a Koa handler keeping a field: the handler is the top site', () => {
  const profile = JSON.parse(
    readFileSync(new URL('./fixtures/diagnosis/profile-koa.json', import.meta.url), 'utf8'),
  )
  const r = reduceProfile(profile)
  assert.equal(r.sampleCount, 246)
  assert.equal(r.sampledBytes, 4371288)
  const [top] = r.sites
  // The handler: `router.get('/orders/:id', (ctx) => {` on line 21 of make-profile.mjs.
  assert.deepEqual(
    [top.functionName, top.url, top.line, top.column, top.count],
    ['(anonymous)', 'file:///app/__test__/fixtures/diagnosis/make-profile.mjs', 21, 27, 114],
  )
  assert.ok(top.share > 0.4, `share ${top.share}`)
  // renderDocument (line 15), called by the handler where V8 did not inline it: its stack
  // reaches the handler's line.
  const render = r.sites.find((s) => s.functionName === 'renderDocument')
  assert.equal(render.line, 15)
  assert.ok(
    render.stack.includes('(anonymous) (/app/__test__/fixtures/diagnosis/make-profile.mjs:21:27)'),
    render.stack.join('\n'),
  )
  const shares = r.sites.reduce((sum, s) => sum + s.share, 0) + r.otherBytes / r.sampledBytes
  assert.ok(Math.abs(shares - 1) < 1e-6, `shares add up to ${shares}`)
})
