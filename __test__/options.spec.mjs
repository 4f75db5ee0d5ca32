import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'

import options from '../lib/options.js'

const { BYTE_METRICS, parseSize, parseSlope, normalizeOptions, normalizeSnapshotOptions } = options

const MiB = 1024 * 1024

// Each row: [label, options, expected error class, substrings the message must contain].
// The substrings always include the option path and the value that was received.
const BAD_OPTIONS = [
  ['intervalMs -5', { intervalMs: -5 }, RangeError, ['intervalMs', '-5', '10..=3600000']],
  ['intervalMs 0', { intervalMs: 0 }, RangeError, ['intervalMs', 'got 0']],
  ['intervalMs 9', { intervalMs: 9 }, RangeError, ['intervalMs', 'got 9']],
  ['intervalMs 3600001', { intervalMs: 3600001 }, RangeError, ['intervalMs', '3600001']],
  ['intervalMs 1.5', { intervalMs: 1.5 }, RangeError, ['intervalMs', 'got 1.5']],
  ['intervalMs NaN', { intervalMs: NaN }, RangeError, ['intervalMs', 'got NaN']],
  ['intervalMs Infinity', { intervalMs: Infinity }, RangeError, ['intervalMs', 'got Infinity']],
  [
    "intervalMs '1000'",
    { intervalMs: '1000' },
    TypeError,
    ['intervalMs must be a number', "got string '1000'"],
  ],
  ['historySize 0', { historySize: 0 }, RangeError, ['historySize', 'got 0']],
  ['historySize 1000001', { historySize: 1000001 }, RangeError, ['historySize', '1000001']],
  ['historySize 2.5', { historySize: 2.5 }, RangeError, ['historySize', 'got 2.5']],
  ['historySize null', { historySize: null }, TypeError, ['historySize', 'got null']],
  ["children 'all'", { children: 'all' }, RangeError, ['children', "got 'all'", "'tree'"]],
  ['children 3', { children: 3 }, TypeError, ['children', 'got number 3']],
  ['thresholds not an array', { thresholds: {} }, TypeError, ['thresholds', 'got object']],
  ['threshold not an object', { thresholds: ['rss'] }, TypeError, ['thresholds[0]', "'rss'"]],
  [
    'threshold without above',
    { thresholds: [{ metric: 'rss' }] },
    TypeError,
    ['thresholds[0].above', 'required', 'undefined'],
  ],
  [
    "above '12 parsecs'",
    { thresholds: [{ above: '1GiB' }, { above: '12 parsecs' }] },
    RangeError,
    ['thresholds[1].above must be a size such as 600MiB, 1.5GB or 90%', "got '12 parsecs'"],
  ],
  ['above -1', { thresholds: [{ above: -1 }] }, RangeError, ['thresholds[0].above', 'got -1']],
  ['above {}', { thresholds: [{ above: {} }] }, TypeError, ['thresholds[0].above', 'got object']],
  ["above '150%'", { thresholds: [{ above: '150%' }] }, RangeError, ['above', "got '150%'"]],
  ["above '0%'", { thresholds: [{ above: '0%' }] }, RangeError, ['above', "got '0%'"]],
  ['above 0', { thresholds: [{ above: 0 }] }, RangeError, ['thresholds[0].above', 'got 0']],
  [
    "above '0.4' (0 bytes)",
    { thresholds: [{ above: '0.4' }] },
    RangeError,
    ['thresholds[0].above', 'at least 1 byte', "got '0.4'"],
  ],
  [
    'hysteresis >= above',
    { thresholds: [{ above: '100MiB', hysteresis: '100MiB' }] },
    RangeError,
    ['thresholds[0].hysteresis', "got '100MiB'", '104857600'],
  ],
  [
    'percent hysteresis >= percent above',
    { thresholds: [{ above: '5%', hysteresis: '5%' }] },
    RangeError,
    ['thresholds[0].hysteresis', "got '5%'"],
  ],
  [
    'byte hysteresis on a percent threshold',
    { thresholds: [{ above: '90%', hysteresis: '1MiB' }] },
    RangeError,
    ['thresholds[0].hysteresis', "got '1MiB'", 'percentage'],
  ],
  [
    'duplicate names',
    {
      thresholds: [
        { name: 'warn', above: '1GiB' },
        { name: 'warn', above: '2GiB' },
      ],
    },
    RangeError,
    ['thresholds[1].name', "'warn'", 'thresholds[0]'],
  ],
  [
    'duplicate default names',
    { thresholds: [{ above: '1GiB' }, { metric: 'rss', above: '1GiB' }] },
    RangeError,
    ['thresholds[1].name', "'rss>1GiB'"],
  ],
  ['empty name', { thresholds: [{ name: '', above: 1 }] }, RangeError, ['thresholds[0].name']],
  [
    'name not a string',
    { thresholds: [{ name: 7, above: 1 }] },
    TypeError,
    ['thresholds[0].name', 'got number 7'],
  ],
  [
    "metric 'rsss'",
    { thresholds: [{ metric: 'rsss', above: '1GiB' }] },
    RangeError,
    ['thresholds[0].metric', "got 'rsss'", "did you mean 'rss'?", "'workingSet'"],
  ],
  [
    'metric not a string',
    { thresholds: [{ metric: 1, above: '1GiB' }] },
    TypeError,
    ['thresholds[0].metric', 'got number 1'],
  ],
  [
    "metric 'pss' without smaps",
    { thresholds: [{ metric: 'pss', above: '1GiB' }] },
    RangeError,
    ["memsentry: thresholds[0].metric 'pss' needs smaps: true"],
  ],
  [
    "metric 'heapUsed' without heap",
    { thresholds: [{ metric: 'heapUsed', above: '1GiB' }] },
    RangeError,
    ["thresholds[0].metric 'heapUsed' needs heap: true"],
  ],
  [
    "metric 'treeRss' with children 'none'",
    { children: 'none', thresholds: [{ metric: 'treeRss', above: '1GiB' }] },
    RangeError,
    ["thresholds[0].metric 'treeRss' needs children: 'direct' or 'tree'"],
  ],
  [
    'unknown key in a threshold',
    { thresholds: [{ above: '1GiB', abov: '2GiB' }] },
    TypeError,
    ["unknown option 'thresholds[0].abov'", "did you mean 'thresholds[0].above'?"],
  ],
  [
    'leak windowMs 500',
    { leak: { windowMs: 500 } },
    RangeError,
    ['leak.windowMs', 'got 500', '1000..=86400000'],
  ],
  [
    'leak windowMs < 4 × intervalMs',
    { intervalMs: 5000, leak: { windowMs: 10000 } },
    RangeError,
    ['leak.windowMs', 'intervalMs', '20000', 'got 10000'],
  ],
  [
    "leak minSlope '1MiB/fortnight'",
    { leak: { minSlope: '1MiB/fortnight' } },
    RangeError,
    ['leak.minSlope', "got '1MiB/fortnight'", '1MiB/min'],
  ],
  ['leak minSlope -1', { leak: { minSlope: -1 } }, RangeError, ['leak.minSlope', 'got -1']],
  ['leak minSlope object', { leak: { minSlope: {} } }, TypeError, ['leak.minSlope', 'got object']],
  [
    'leak warmupMs -1',
    { leak: { warmupMs: -1 } },
    RangeError,
    ['leak.warmupMs', 'got -1', '0..=86400000'],
  ],
  [
    "leak metric 'child.rss'",
    { leak: { metric: 'child.rss' } },
    RangeError,
    ['leak.metric', "'child.rss'"],
  ],
  [
    "leak metric 'uss' without smaps",
    { leak: { metric: 'uss' } },
    RangeError,
    ["leak.metric 'uss' needs smaps: true"],
  ],
  ["leak report ''", { leak: { report: ' ' } }, RangeError, ['leak.report', 'a directory path']],
  [
    'leak report with a leading space',
    { leak: { report: ' /var/reports' } },
    RangeError,
    ['leak.report', 'without surrounding spaces', "' /var/reports'"],
  ],
  [
    'heapSnapshot dir of spaces',
    { heapSnapshot: { dir: '   ' } },
    RangeError,
    ['heapSnapshot.dir', 'a directory path', "'   '"],
  ],
  [
    'leak report with a NUL byte',
    { leak: { report: 'reports\0x' } },
    RangeError,
    ['leak.report', 'a directory path without a NUL byte'],
  ],
  ["leak 'yes'", { leak: 'yes' }, TypeError, ['leak', "got string 'yes'"]],
  [
    'unknown key in leak',
    { leak: { window: 1000 } },
    TypeError,
    ["unknown option 'leak.window'", "did you mean 'leak.windowMs'?"],
  ],
  ['smaps { everyN: 0 }', { smaps: { everyN: 0 } }, RangeError, ['smaps.everyN', 'got 0']],
  ['smaps { everyN: 1.5 }', { smaps: { everyN: 1.5 } }, RangeError, ['smaps.everyN', 'got 1.5']],
  [
    'unknown key in smaps',
    { smaps: { every: 3 } },
    TypeError,
    ["unknown option 'smaps.every'", "did you mean 'smaps.everyN'?"],
  ],
  ["smaps 'on'", { smaps: 'on' }, TypeError, ['smaps', "got string 'on'"]],
  ['heap 1', { heap: 1 }, TypeError, ['heap must be a boolean', 'got number 1']],
  ["limit '-5MiB'", { limit: '-5MiB' }, RangeError, ['limit', "got '-5MiB'"]],
  ["limit 'lots'", { limit: 'lots' }, RangeError, ['limit', "got 'lots'", "'auto'"]],
  ['limit true', { limit: true }, TypeError, ['limit', 'got boolean true']],
  ['limit 0', { limit: 0 }, RangeError, ['limit', 'got 0']],
  ["limit '90%'", { limit: '90%' }, RangeError, ['limit', "got '90%'"]],
  ["procRoot 'proc'", { procRoot: 'proc' }, RangeError, ['procRoot', "got 'proc'"]],
  ['procRoot null', { procRoot: null }, TypeError, ['procRoot', 'got null']],
  ['cgroupRoot 5', { cgroupRoot: 5 }, TypeError, ['cgroupRoot', 'got number 5']],
  [
    'typo intervalMS',
    { intervalMS: 1000 },
    TypeError,
    ["memsentry: unknown option 'intervalMS' (did you mean 'intervalMs'?)"],
  ],
  [
    'typo histrySize',
    { histrySize: 10 },
    TypeError,
    ["unknown option 'histrySize'", "did you mean 'historySize'?"],
  ],
  [
    'unknown key with no close match',
    { frobnicate: true },
    TypeError,
    ["unknown option 'frobnicate'", 'known options: intervalMs'],
  ],
  ['options = 5', 5, TypeError, ['memsentry: options must be an object, got number 5']],
  ['options = array', [], TypeError, ['options must be an object, got array']],
  ["options = 'x'", 'x', TypeError, ["options must be an object, got string 'x'"]],
]

describe('normalizeOptions rejects bad options', () => {
  it('has a table of at least 30 cases', () => {
    assert.ok(BAD_OPTIONS.length >= 30)
  })

  for (const [label, opts, ErrorClass, fragments] of BAD_OPTIONS) {
    it(label, () => {
      assert.throws(
        () => normalizeOptions(opts),
        (err) => {
          // Exact class: a RangeError must not pass for a TypeError or vice versa.
          assert.equal(err.constructor, ErrorClass, `${err.constructor.name}: ${err.message}`)
          assert.ok(err.message.startsWith('memsentry: '), err.message)
          for (const fragment of fragments) {
            assert.ok(
              err.message.includes(fragment),
              `${JSON.stringify(fragment)} in: ${err.message}`,
            )
          }
          return true
        },
      )
    })
  }
})

describe('error message formats', () => {
  it('uses the exact forms of the contract', () => {
    assert.throws(() => normalizeOptions({ intervalMs: -5 }), {
      name: 'RangeError',
      message: 'memsentry: intervalMs must be an integer in 10..=3600000, got -5',
    })
    assert.throws(() => normalizeOptions({ intervalMs: '1000' }), {
      name: 'TypeError',
      message: "memsentry: intervalMs must be a number, got string '1000'",
    })
    assert.throws(() => normalizeOptions({ intervalMS: 1000 }), {
      name: 'TypeError',
      message: "memsentry: unknown option 'intervalMS' (did you mean 'intervalMs'?)",
    })
    assert.throws(() => normalizeOptions({ thresholds: [{ above: 1 }, { above: '12 parsecs' }] }), {
      name: 'RangeError',
      message:
        "memsentry: thresholds[1].above must be a size such as 600MiB, 1.5GB or 90%, got '12 parsecs'",
    })
    assert.throws(() => normalizeOptions(5), {
      name: 'TypeError',
      message: 'memsentry: options must be an object, got number 5',
    })
  })

  it('escapes quotes and control characters in shown strings', () => {
    assert.throws(() => normalizeOptions({ children: "it's\n" }), {
      message: "memsentry: children must be one of 'none', 'direct', 'tree', got 'it\\'s\\u000a'",
    })
  })

  it('ignores inherited keys', () => {
    const opts = Object.create({ intervalMs: -5, bogus: 1 })
    assert.equal(normalizeOptions(opts).intervalMs, 1000)
  })
})

describe('parseSize', () => {
  it('parses binary and decimal units', () => {
    assert.deepEqual(parseSize('600MiB', 'x'), { bytes: 629145600 })
    assert.deepEqual(parseSize('1.5GB', 'x'), { bytes: 1.5e9 })
    assert.deepEqual(parseSize('512 KiB', 'x'), { bytes: 524288 })
    assert.deepEqual(parseSize('1k', 'x'), { bytes: 1000 })
    assert.deepEqual(parseSize('1K', 'x'), { bytes: 1000 })
    assert.deepEqual(parseSize('2mib', 'x'), { bytes: 2 * MiB })
    assert.deepEqual(parseSize('1Gi', 'x'), { bytes: 1024 ** 3 })
    assert.deepEqual(parseSize('1TiB', 'x'), { bytes: 1024 ** 4 })
    assert.deepEqual(parseSize('2TB', 'x'), { bytes: 2e12 })
    assert.deepEqual(parseSize('100', 'x'), { bytes: 100 })
    assert.deepEqual(parseSize('100B', 'x'), { bytes: 100 })
    assert.deepEqual(parseSize('.5KiB', 'x'), { bytes: 512 })
  })

  it('accepts numbers of bytes and rounds them', () => {
    assert.deepEqual(parseSize(1024, 'x'), { bytes: 1024 })
    assert.deepEqual(parseSize(0, 'x'), { bytes: 0 })
    assert.deepEqual(parseSize(10.6, 'x'), { bytes: 11 })
  })

  it('accepts percentages only when allowed', () => {
    assert.deepEqual(parseSize('90%', 'x', { allowPercent: true }), { percent: 90 })
    assert.deepEqual(parseSize('12.5 %', 'x', { allowPercent: true }), { percent: 12.5 })
    assert.deepEqual(parseSize('100%', 'x', { allowPercent: true }), { percent: 100 })
    assert.throws(() => parseSize('90%', 'x'), RangeError)
    assert.throws(() => parseSize('0%', 'x', { allowPercent: true }), RangeError)
    assert.throws(() => parseSize('100.5%', 'x', { allowPercent: true }), RangeError)
  })

  it('rejects bad sizes with the option name in the message', () => {
    assert.throws(() => parseSize('-1MiB', 'opt.size'), {
      name: 'RangeError',
      message: /opt\.size.*'-1MiB'/,
    })
    assert.throws(() => parseSize('1 MiBs', 'x'), RangeError)
    assert.throws(() => parseSize('', 'x'), RangeError)
    assert.throws(() => parseSize('1e9', 'x'), RangeError)
    assert.throws(() => parseSize(-1, 'x'), RangeError)
    assert.throws(() => parseSize(Infinity, 'x'), RangeError)
    assert.throws(() => parseSize(2 ** 60, 'x'), RangeError)
    assert.throws(() => parseSize('9'.repeat(400), 'x'), RangeError)
    assert.throws(() => parseSize(true, 'x'), { name: 'TypeError', message: /got boolean true/ })
    assert.throws(() => parseSize(null, 'x'), { name: 'TypeError', message: /got null/ })
    assert.throws(() => parseSize(10n, 'x'), { name: 'TypeError', message: /got bigint 10n/ })
  })
})

describe('parseSlope', () => {
  it('parses size per time unit', () => {
    assert.equal(parseSlope('1MiB/min', 'x'), 1048576 / 60)
    assert.equal(parseSlope('2MB/s', 'x'), 2e6)
    assert.equal(parseSlope('512KiB/min', 'x'), 524288 / 60)
    assert.equal(parseSlope('36 MB / hour', 'x'), 10000)
    assert.equal(parseSlope('1GiB/h', 'x'), 1024 ** 3 / 3600)
    assert.equal(parseSlope('10KB/second', 'x'), 10000)
    assert.equal(parseSlope('60B/minute', 'x'), 1)
  })

  it('takes numbers as bytes per second', () => {
    assert.equal(parseSlope(100, 'x'), 100)
    assert.equal(parseSlope(0, 'x'), 0)
    assert.equal(parseSlope(0.5, 'x'), 0.5)
  })

  it('rejects bad slopes', () => {
    assert.throws(() => parseSlope('1MiB/fortnight', 'x'), RangeError)
    assert.throws(() => parseSlope('1MiB', 'x'), RangeError)
    assert.throws(() => parseSlope('/min', 'x'), RangeError)
    assert.throws(() => parseSlope('10%/min', 'x'), RangeError)
    assert.throws(() => parseSlope(-1, 'x'), RangeError)
    assert.throws(() => parseSlope(NaN, 'x'), RangeError)
    assert.throws(() => parseSlope([], 'x'), { name: 'TypeError', message: /got array/ })
  })
})

describe('normalizeOptions defaults', () => {
  const expected = {
    intervalMs: 1000,
    historySize: 3600,
    children: 'tree',
    thresholds: [],
    leak: { windowMs: 600000, minSlope: null, warmupMs: null, metric: 'rss' },
    smapsEveryN: 0,
    heap: false,
    cgroup: true,
    limit: null,
    procRoot: '/proc',
    cgroupRoot: null,
    heapSnapshot: null,
  }

  it('for undefined, null and {}', () => {
    assert.deepEqual(normalizeOptions(undefined), expected)
    assert.deepEqual(normalizeOptions(), expected)
    assert.deepEqual(normalizeOptions(null), expected)
    assert.deepEqual(normalizeOptions({}), expected)
  })

  it('treats keys set to undefined as omitted', () => {
    assert.deepEqual(
      normalizeOptions({ intervalMs: undefined, leak: undefined, smaps: undefined }),
      expected,
    )
  })

  it('leak true and false', () => {
    assert.deepEqual(normalizeOptions({ leak: true }).leak, expected.leak)
    assert.equal(normalizeOptions({ leak: false }).leak, null)
    assert.equal(normalizeOptions({ leak: null }).leak, null)
  })

  it('leak fields', () => {
    const { leak } = normalizeOptions({
      smaps: true,
      leak: { windowMs: 60000, minSlope: '1MiB/min', warmupMs: 30000, metric: 'pss' },
    })
    assert.deepEqual(leak, { windowMs: 60000, minSlope: MiB / 60, warmupMs: 30000, metric: 'pss' })
  })

  it("sentry.options has the fields index.d.ts's SentryOptions declares, no more", () => {
    const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')
    const body = /export interface SentryOptions \{\n([\s\S]*?)\n\}/.exec(dts)?.[1]
    assert.ok(body, 'no SentryOptions in index.d.ts')
    // The fields at one indent (2 spaces: the interface's own; 4: inside `name: {`), optional
    // ones with their `?` dropped.
    const fields = (text, indent) =>
      [...text.matchAll(new RegExp(`^ {${indent}}(\\w+)\\??:`, 'gm'))].map((m) => m[1]).sort()
    const block = (name) => {
      const m = new RegExp(`^ {2}${name}: \\{\\n([\\s\\S]*?)\\n {2}\\}`, 'm').exec(body)
      assert.ok(m, `no ${name} block in SentryOptions`)
      return m[1]
    }
    const keys = (o) => Object.keys(o).sort()
    const taken = normalizeOptions({
      heapSnapshot: { dir: '/tmp' },
      thresholds: [{ above: 1 }],
      leak: { report: '/tmp', diagnose: {} },
    })
    assert.deepEqual(keys(taken), fields(body, 2))
    assert.deepEqual(keys(taken.leak), fields(block('leak'), 4))
    assert.deepEqual(keys(taken.thresholds[0]), fields(block('thresholds'), 4))
  })

  it('leak minSlope and warmupMs null are the defaults, as index.d.ts says', () => {
    assert.deepEqual(
      normalizeOptions({ leak: { minSlope: null, warmupMs: null } }).leak,
      expected.leak,
    )
  })

  it('leak windowMs of exactly 4 × intervalMs is accepted', () => {
    assert.equal(
      normalizeOptions({ intervalMs: 250, leak: { windowMs: 1000 } }).leak.windowMs,
      1000,
    )
  })

  it('default leak window grows with long intervals', () => {
    assert.equal(normalizeOptions({ intervalMs: 3600000 }).leak.windowMs, 4 * 3600000)
    assert.equal(normalizeOptions({ intervalMs: 3600000, leak: {} }).leak.windowMs, 4 * 3600000)
  })

  it('smaps true and { everyN }', () => {
    assert.equal(normalizeOptions({ smaps: true }).smapsEveryN, 1)
    assert.equal(normalizeOptions({ smaps: false }).smapsEveryN, 0)
    assert.equal(normalizeOptions({ smaps: { everyN: 5 } }).smapsEveryN, 5)
    assert.equal(normalizeOptions({ smaps: {} }).smapsEveryN, 1)
  })

  it('other top-level values', () => {
    const n = normalizeOptions({
      intervalMs: 10,
      historySize: 1,
      children: 'direct',
      heap: true,
      limit: '2GiB',
      procRoot: '/tmp/fakeproc',
      cgroupRoot: '/tmp/fakecg',
    })
    assert.equal(n.intervalMs, 10)
    assert.equal(n.historySize, 1)
    assert.equal(n.children, 'direct')
    assert.equal(n.heap, true)
    assert.equal(n.limit, 2 * 1024 ** 3)
    assert.equal(n.procRoot, '/tmp/fakeproc')
    assert.equal(n.cgroupRoot, '/tmp/fakecg')
    assert.equal(normalizeOptions({ limit: 'auto' }).limit, null)
    assert.equal(normalizeOptions({ limit: 1e9 }).limit, 1e9)
    assert.equal(normalizeOptions({ cgroupRoot: null }).cgroupRoot, null)
    assert.equal(
      normalizeOptions({ intervalMs: 3600000, historySize: 1000000 }).intervalMs,
      3600000,
    )
  })
})

describe('normalizeOptions thresholds', () => {
  it('byte threshold with default name and hysteresis (1% of above)', () => {
    const [t] = normalizeOptions({ thresholds: [{ metric: 'rss', above: '600MiB' }] }).thresholds
    assert.deepEqual(t, {
      name: 'rss>600MiB',
      metric: 'rss',
      above: 629145600,
      abovePercent: null,
      hysteresis: Math.round(629145600 / 100),
      hysteresisPercent: null,
    })
  })

  it('default metric is rss and default name uses the original above', () => {
    const [a, b] = normalizeOptions({
      thresholds: [{ above: 5e8 }, { above: ' 1.5GB ' }],
    }).thresholds
    assert.equal(a.metric, 'rss')
    assert.equal(a.name, 'rss>500000000')
    assert.equal(b.name, 'rss>1.5GB')
  })

  it('default hysteresis is at least 1 MiB and at most half of above, so a tiny one re-arms', () => {
    const [small, tiny, one] = normalizeOptions({
      thresholds: [{ above: '10MiB' }, { above: '512KiB' }, { above: 1 }],
    }).thresholds
    assert.equal(small.hysteresis, MiB)
    assert.equal(tiny.hysteresis, 256 * 1024)
    assert.equal(one.hysteresis, 0)
  })

  it('a percentage as the hysteresis of a byte threshold says why, 0% included', () => {
    for (const hysteresis of ['0%', '5%', '150%']) {
      assert.throws(
        () => normalizeOptions({ thresholds: [{ above: '100MiB', hysteresis }] }),
        (err) =>
          err instanceof RangeError &&
          err.message.includes('thresholds[0].hysteresis') &&
          err.message.includes('a size in bytes') &&
          err.message.includes(`got '${hysteresis}'`),
      )
    }
    assert.throws(
      () => normalizeOptions({ thresholds: [{ above: '100MiB', hysteresis: 'lots' }] }),
      (err) => err instanceof RangeError && !err.message.includes('90%'),
    )
  })

  it('explicit byte hysteresis', () => {
    const [t] = normalizeOptions({
      thresholds: [{ name: 'warn', metric: 'rss', above: '600MiB', hysteresis: '16MiB' }],
    }).thresholds
    assert.equal(t.name, 'warn')
    assert.equal(t.hysteresis, 16 * MiB)
    assert.equal(t.hysteresisPercent, null)
    const [z] = normalizeOptions({ thresholds: [{ above: 100, hysteresis: 0 }] }).thresholds
    assert.equal(z.hysteresis, 0)
  })

  it('percent thresholds', () => {
    const [t, u, v] = normalizeOptions({
      thresholds: [
        { name: 'limit', metric: 'workingSet', above: '90%' },
        { metric: 'treeRss', above: '80%', hysteresis: '2.5%' },
        { above: '0.5%' },
      ],
    }).thresholds
    assert.deepEqual(t, {
      name: 'limit',
      metric: 'workingSet',
      above: null,
      abovePercent: 90,
      hysteresis: 0,
      hysteresisPercent: 1,
    })
    assert.equal(u.name, 'treeRss>80%')
    assert.equal(u.hysteresisPercent, 2.5)
    assert.equal(v.hysteresisPercent, 0.25)
    const [w] = normalizeOptions({ thresholds: [{ above: '50%', hysteresis: '0%' }] }).thresholds
    assert.equal(w.hysteresisPercent, 0)
  })

  it('metrics gated by smaps, heap and children are accepted once enabled', () => {
    const n = normalizeOptions({
      smaps: { everyN: 10 },
      heap: true,
      children: 'tree',
      thresholds: [
        { metric: 'pss', above: '1GiB' },
        { metric: 'treePss', above: '2GiB' },
        { metric: 'heapUsed', above: '500MB' },
        { metric: 'child.rss', above: '90%' },
      ],
      leak: { metric: 'treeRss' },
    })
    assert.deepEqual(
      n.thresholds.map((t) => t.metric),
      ['pss', 'treePss', 'heapUsed', 'child.rss'],
    )
    assert.equal(n.leak.metric, 'treeRss')
  })

  it('every byte metric is accepted with everything enabled', () => {
    const thresholds = BYTE_METRICS.map((metric) => ({ metric, above: '1GiB' }))
    const n = normalizeOptions({ smaps: true, heap: true, children: 'direct', thresholds })
    assert.equal(n.thresholds.length, BYTE_METRICS.length)
    assert.ok(Object.isFrozen(BYTE_METRICS))
  })
})

describe('normalizeSnapshotOptions', () => {
  const defaults = { smapsEveryN: 0, children: 'none', procRoot: '/proc', cgroupRoot: null }

  it('defaults', () => {
    assert.deepEqual(normalizeSnapshotOptions(undefined), defaults)
    assert.deepEqual(normalizeSnapshotOptions(null), defaults)
    assert.deepEqual(normalizeSnapshotOptions({}), defaults)
  })

  it('values', () => {
    assert.deepEqual(
      normalizeSnapshotOptions({
        smaps: true,
        children: 'tree',
        procRoot: '/p',
        cgroupRoot: '/c',
      }),
      { smapsEveryN: 1, children: 'tree', procRoot: '/p', cgroupRoot: '/c' },
    )
  })

  it('rejects sampler-only and bad options', () => {
    assert.throws(() => normalizeSnapshotOptions({ intervalMs: 1000 }), {
      name: 'TypeError',
      message: /unknown option 'intervalMs'/,
    })
    assert.throws(() => normalizeSnapshotOptions({ smaps: { everyN: 2 } }), {
      name: 'TypeError',
      message: /smaps must be a boolean, got object/,
    })
    assert.throws(() => normalizeSnapshotOptions({ children: 'all' }), RangeError)
    assert.throws(() => normalizeSnapshotOptions({ procRoot: 'rel' }), RangeError)
    assert.throws(() => normalizeSnapshotOptions(true), {
      name: 'TypeError',
      message: 'memsentry: options must be an object, got boolean true',
    })
  })
})

describe('cgroup', () => {
  it('is on by default; off, the cgroup metrics are rejected naming the option', () => {
    assert.equal(normalizeOptions({}).cgroup, true)
    assert.equal(normalizeOptions({ cgroup: false }).cgroup, false)
    assert.throws(() => normalizeOptions({ cgroup: 'no' }), TypeError)
    assert.throws(
      () =>
        normalizeOptions({ cgroup: false, thresholds: [{ metric: 'workingSet', above: '1GiB' }] }),
      (e) =>
        e instanceof RangeError && /workingSet/.test(e.message) && /cgroup: true/.test(e.message),
    )
  })
})

describe('heapSnapshot', () => {
  it('off by default, a dir resolved to an absolute path, maxCount 1 by default', () => {
    assert.equal(normalizeOptions({}).heapSnapshot, null)
    assert.equal(normalizeOptions({ heapSnapshot: false }).heapSnapshot, null)
    assert.deepEqual(
      normalizeOptions({ heapSnapshot: { dir: '/tmp/snaps', maxCount: 3 } }).heapSnapshot,
      {
        dir: '/tmp/snaps',
        maxCount: 3,
      },
    )
    assert.equal(
      normalizeOptions({ heapSnapshot: { dir: 'snaps' } }).heapSnapshot.dir,
      `${process.cwd()}/snaps`,
    )
  })

  it('bad values name the option', () => {
    assert.throws(() => normalizeOptions({ heapSnapshot: 'x' }), /heapSnapshot must be an object/)
    assert.throws(() => normalizeOptions({ heapSnapshot: {} }), TypeError)
    assert.throws(
      () => normalizeOptions({ heapSnapshot: { dir: '/tmp', maxCount: 0 } }),
      (e) =>
        e instanceof RangeError &&
        /heapSnapshot\.maxCount/.test(e.message) &&
        /got 0/.test(e.message),
    )
    assert.throws(
      () => normalizeOptions({ heapSnapshot: { dir: '/tmp', maxcount: 2 } }),
      /did you mean 'heapSnapshot\.maxCount'/,
    )
  })
})
