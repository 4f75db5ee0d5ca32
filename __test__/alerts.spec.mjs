// The alert rules in examples/prometheus/: `promtool check rules`, `promtool test rules` (the
// synthetic leaking, healthy, near-limit, OOM and stale-sampler pods of memsentry-rules.test.yml),
// and every metric a rule names is one memsentry really exports.
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parse } from 'yaml'

import { exportedMetrics } from './helpers/exported.mjs'
import { namesIn } from './helpers/promql.mjs'

const PROMTOOL = '/usr/bin/promtool'
const DIR = fileURLToPath(new URL('../examples/prometheus/', import.meta.url))
const RULES = 'memsentry-rules.yml'
const TESTS = 'memsentry-rules.test.yml'

/** Runs promtool in examples/prometheus; resolves to its output, rejects with it on failure. */
async function promtool(...args) {
  try {
    const { stdout, stderr } = await promisify(execFile)(PROMTOOL, args, {
      cwd: DIR,
      timeout: 60_000,
    })
    return stdout + stderr
  } catch (err) {
    throw new Error(
      `promtool ${args.join(' ')} failed (exit ${err.code}):\n${err.stdout}${err.stderr}`,
    )
  }
}

describe('alert rules (examples/prometheus)', () => {
  before(() => {
    if (!existsSync(PROMTOOL)) {
      // Not a skip: CI installs it, and a silently skipped check is a missing one.
      throw new Error(
        `${PROMTOOL} is missing: these tests run Prometheus's own rule checker. ` +
          'Install it with: apt-get update && apt-get install -y prometheus',
      )
    }
  })

  it('pass promtool check rules', async () => {
    const out = await promtool('check', 'rules', RULES)
    assert.match(out, /SUCCESS: 5 rules found/, out)
  })

  it('pass their unit tests (promtool test rules)', async () => {
    const out = await promtool('test', 'rules', TESTS)
    assert.match(out, /SUCCESS/, out)
  })

  it('name only metrics memsentry exports', async () => {
    const { metrics } = await exportedMetrics()
    const rules = parse(readFileSync(DIR + RULES, 'utf8')).groups.flatMap((g) => g.rules)
    assert.ok(rules.length > 0)
    for (const rule of rules) {
      const named = namesIn(rule.expr).metrics
      assert.ok(named.size > 0, `${rule.alert}: names no metric`)
      for (const name of named) {
        assert.ok(metrics.has(name), `${rule.alert} names ${name}, which memsentry does not export`)
      }
      // Usable as they are: a severity and the three annotations the README promises.
      assert.match(rule.labels?.severity ?? '', /^(warning|critical)$/, rule.alert)
      assert.ok(rule.for, `${rule.alert}: no for: duration`)
      for (const key of ['summary', 'description', 'runbook']) {
        assert.ok(rule.annotations?.[key], `${rule.alert}: no ${key} annotation`)
      }
    }
  })

  it('unit tests cover every alert, firing and not firing', () => {
    const rules = parse(readFileSync(DIR + RULES, 'utf8')).groups.flatMap((g) => g.rules)
    const tests = parse(readFileSync(DIR + TESTS, 'utf8')).tests
    const checks = tests.flatMap((t) => t.alert_rule_test ?? [])
    for (const { alert } of rules) {
      const mine = checks.filter((c) => c.alertname === alert)
      assert.ok(
        mine.some((c) => c.exp_alerts?.length > 0),
        `${alert}: no unit test where it fires`,
      )
      assert.ok(
        mine.some((c) => c.exp_alerts?.length === 0),
        `${alert}: no unit test of the minute before it fires`,
      )
    }
  })
})
