// The verdicts of `npm run eval:leak`, which `npm run eval:sweep` scores every recording by:
// a wrong deadline here would mislead every tuning of the leak detector.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import options from '../lib/options.js'
import {
  SCENARIOS,
  SETTINGS,
  deadlines,
  heapRateScenarios,
  judge,
  judgeUnderLimit,
  recordedScenario,
  sentryOptions,
} from '../eval/leak.mjs'

const scenario = (name) => {
  const s = SCENARIOS.find((x) => x.name === name)
  assert.ok(s, `no scenario ${name}`)
  return s
}
const at = (s, suspect = 'heap') => ({ latencyMs: s * 1000, suspect })

describe('eval deadlines', () => {
  test('a leak by 1.0 x window + 30 s, a slow one by 2 x window, a minute at the least', () => {
    assert.deepEqual(deadlines(scenario('fast-heap'), 60_000), { start: 90, end: null })
    assert.deepEqual(deadlines(scenario('fast-heap'), 300_000), { start: 330, end: null })
    assert.deepEqual(deadlines(scenario('slow-heap'), 60_000), { start: 120, end: null })
    // The detector analyses a minute at shorter windows: they are held to a minute's deadline.
    assert.deepEqual(deadlines(scenario('fast-heap'), 30_000), { start: 90, end: null })
  })

  test("'def' sets nothing, and is judged by the library's own defaults", () => {
    assert.deepEqual(sentryOptions(SETTINGS.def), {})
    assert.deepEqual(sentryOptions(SETTINGS.def, { metric: 'treeRss' }), {
      leak: { metric: 'treeRss' },
    })
    const defaults = options.normalizeOptions({})
    assert.equal(SETTINGS.def.intervalMs, defaults.intervalMs)
    assert.equal(SETTINGS.def.windowMs, defaults.leak.windowMs)
    assert.deepEqual(deadlines(scenario('slow-heap'), SETTINGS.def.windowMs), {
      start: 1200,
      end: null,
    })
  })

  test('too slow for a window, or stopping before a long one: not due', () => {
    assert.equal(deadlines(scenario('slower-heap'), 60_000).start, null)
    assert.deepEqual(deadlines(scenario('slower-heap'), 300_000), { start: 600, end: null })
    assert.deepEqual(deadlines(scenario('leak-stops'), 300_000), { start: 330, end: 810 })
    assert.equal(deadlines(scenario('leak-stops'), 360_000).start, null)
  })
})

describe('eval heap rates', () => {
  test('the slow leak at other rates, judged as it is, bad input named', () => {
    const [two] = heapRateScenarios('2000')
    assert.equal(two.name, 'heap-2000B')
    assert.equal(two.server.bytesPerRequest, 2000)
    assert.equal(two.server.retain, 'heap')
    assert.match(two.what, /~6\.9 MiB\/min/)
    assert.deepEqual(deadlines(two, 60_000), deadlines(scenario('slow-heap'), 60_000))
    assert.equal(scenario('slow-heap').server.bytesPerRequest, 1000)
    assert.throws(() => heapRateScenarios('2000,2k'), {
      name: 'RangeError',
      message: /--heap-rates .* not 2k/,
    })
  })
})

describe('recorded scenarios', () => {
  test("a recording's header names its scenario, a repeat's too, a heap rate and a soak", () => {
    assert.equal(recordedScenario('lru-slow#3'), scenario('lru-slow'))
    assert.equal(recordedScenario('fast-heap'), scenario('fast-heap'))
    const rate = recordedScenario('heap-5000B#2')
    assert.equal(rate.name, 'heap-5000B')
    assert.equal(rate.server.bytesPerRequest, 5000)
    assert.deepEqual(deadlines(rate, 60_000), { start: 120, end: null })
    assert.deepEqual(recordedScenario('soak-lru'), { name: 'soak-lru', expect: 'none' })
    assert.equal(recordedScenario('heap-0B'), null)
    assert.equal(recordedScenario('nothing-known'), null)
  })
})

describe('eval verdicts', () => {
  test('healthy runs: any leak is a false alarm', () => {
    assert.equal(judge(scenario('lru-slow'), 60_000, [], []), 'ok')
    assert.equal(judge(scenario('lru-slow'), 60_000, [at(101.3)], [at(209.3)]), 'FALSE ALARM')
  })

  test('leaks: late, missed and a wrong suspect are told apart', () => {
    const fast = scenario('fast-heap')
    assert.equal(judge(fast, 60_000, [at(79.7)], []), 'ok')
    assert.equal(judge(fast, 60_000, [at(90)], []), 'ok')
    assert.equal(judge(fast, 60_000, [at(90.1)], []), 'LATE')
    assert.equal(judge(fast, 60_000, [], []), 'MISSED')
    assert.equal(judge(fast, 60_000, [at(79.7, 'native')], []), 'WRONG SUSPECT')
    assert.equal(judge(scenario('child-leak'), 60_000, [at(79.7, 'child')], []), 'ok')
  })

  test('a leak that goes on must not be called off while the load runs', () => {
    const slow = scenario('slow-heap')
    const loadS = slow.phases.reduce((sum, [, s]) => sum + s, 0)
    assert.equal(judge(slow, 60_000, [at(117)], [at(247)]), 'ENDED WHILE LEAKING')
    assert.equal(judge(slow, 60_000, [at(117)], [at(loadS + 20)]), 'ok')
  })

  test('a leak too slow to be due fails only with a wrong suspect', () => {
    const slower = scenario('slower-heap')
    assert.equal(judge(slower, 60_000, [], []), 'ok (not due)')
    assert.equal(judge(slower, 60_000, [at(400)], []), 'ok (not due)')
    assert.equal(judge(slower, 60_000, [at(400, 'native')], []), 'WRONG SUSPECT')
  })

  test('a leak that stops must end in time and not fire again', () => {
    const stops = scenario('leak-stops')
    assert.equal(judge(stops, 60_000, [at(79.9)], [at(417.9)]), 'ok')
    assert.equal(judge(stops, 60_000, [at(79.9)], [at(450.1)]), 'NOT ENDED')
    assert.equal(judge(stops, 60_000, [at(79.9)], []), 'NOT ENDED')
    // An end before the start does not call it off.
    assert.equal(judge(stops, 60_000, [at(79.9)], [at(50)]), 'NOT ENDED')
    assert.equal(judge(stops, 60_000, [at(79.9), at(500)], [at(417.9)]), 'FIRED AGAIN')
  })
})

describe('eval verdicts under a memory limit (--memory-limit)', () => {
  const died = (s, signal = 'SIGABRT') => ({ code: null, signal, latencyMs: s * 1000 })
  const verdict = (name, windowS, leaks, ends, d) =>
    judgeUnderLimit(scenario(name), windowS * 1000, leaks, ends, d)

  test('a healthy process that ends on its own fails, whatever it reported', () => {
    assert.equal(verdict('cache-plateau', 60, [], [], died(200)), 'DIED (SIGABRT at 200 s)')
    assert.equal(verdict('cache-plateau', 60, [], [], null), 'ok')
    assert.equal(verdict('cache-plateau', 60, [at(100)], [], null), 'FALSE ALARM')
  })

  test('a leak must be reported before the process ends, unless it ended before the leak was due', () => {
    // Reported before: judged as usual.
    assert.equal(verdict('fast-heap', 60, [at(80)], [], died(337)), 'ok')
    assert.equal(verdict('fast-heap', 60, [at(80, 'native')], [], died(337)), 'WRONG SUSPECT')
    // Not reported by then, though due at 90 s.
    assert.equal(
      verdict('fast-heap', 60, [], [], died(200, 'SIGKILL')),
      'DIED FIRST (SIGKILL at 200 s)',
    )
    assert.equal(
      verdict('fast-heap', 60, [at(210)], [], died(200)),
      'DIED FIRST (SIGABRT at 200 s)',
    )
    // A 300 s window's leak is due at 330 s: a process gone at 250 s owed nothing there.
    assert.equal(
      verdict('fast-heap', 300, [], [], died(250)),
      'ok (not due: ended, SIGABRT at 250 s)',
    )
  })

  test('a leak that stops, in a process that ended before it stopped, is judged as one that goes on', () => {
    assert.equal(verdict('leak-stops', 60, [at(80)], [], died(300)), 'ok')
    // Once it had stopped, its end is owed as before.
    assert.equal(verdict('leak-stops', 60, [at(80)], [], died(500)), 'NOT ENDED')
    assert.equal(verdict('leak-stops', 60, [at(80)], [at(420)], died(500)), 'ok')
  })
})
