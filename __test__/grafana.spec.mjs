// examples/grafana-dashboard.json, checked two ways:
// 1. every metric and label its queries (panels, annotations, variables, legends) name is one
//    memsentry/prometheus really exports: names read from a real exporter's scrape, queries parsed
//    with Prometheus's own PromQL grammar;
// 2. a real Prometheus scrapes a real memsentry process (a leaking Koa app in a memory cgroup with
//    a limit, with a child and a threshold it crosses) and every query returns data through
//    /api/v1/query, the way Grafana would ask it.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

import { exportedMetrics, TARGET_LABELS } from './helpers/exported.mjs'
import { dashboardQueries, legendLabels, namesIn, substituteVariables } from './helpers/promql.mjs'
import { requirePrometheus, startPrometheus } from './helpers/prometheus-server.mjs'
import { makeContainerCgroup, spawnInCgroup } from './helpers/cgroup.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DASHBOARD = path.join(ROOT, 'examples/grafana-dashboard.json')
const dashboard = () => JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'))

/** The problems of a dashboard's queries against the exported names; [] when none. */
function problemsOf(board, exported) {
  const problems = []
  const queries = dashboardQueries(board)
  if (queries.length === 0) problems.push('the dashboard has no PromQL query')
  for (const q of queries) {
    let names
    try {
      names = namesIn(substituteVariables(q.expr))
    } catch (err) {
      problems.push(`${q.where}: ${err.message}`)
      continue
    }
    if (names.metrics.size === 0) problems.push(`${q.where}: names no metric: ${q.expr}`)
    const known = new Set(TARGET_LABELS)
    for (const metric of names.metrics) {
      if (!exported.metrics.has(metric)) {
        problems.push(`${q.where}: ${metric} is not exported by memsentry`)
        continue
      }
      for (const label of exported.labels.get(metric) ?? []) known.add(label)
    }
    const used = [...names.labels, ...legendLabels(q.legend), ...(q.label ? [q.label] : [])]
    for (const label of used) {
      if (!known.has(label)) {
        problems.push(
          `${q.where}: label ${label} is on none of ${[...names.metrics].join(', ')} (nor a target label)`,
        )
      }
    }
  }
  return problems
}

describe('the Grafana dashboard names only what memsentry exports', () => {
  let exported
  before(async () => {
    exported = await exportedMetrics()
  })

  it('every metric and label of every query, legend and variable exists', () => {
    assert.deepEqual(problemsOf(dashboard(), exported), [])
  })

  it('the check catches a misspelt metric, a misspelt label and an unknown legend label', () => {
    const board = dashboard()
    const target = board.panels.find((p) => p.targets?.length).targets[0]
    target.expr = 'memsentry_rss_byte{jbo=~"$job"}'
    target.legendFormat = '{{pod_name}}'
    const problems = problemsOf(board, exported).join('\n')
    assert.match(problems, /memsentry_rss_byte is not exported/)
    target.expr = 'memsentry_rss_bytes{jbo=~"$job"}'
    assert.match(problemsOf(board, exported).join('\n'), /label jbo is on none/)
    assert.match(problemsOf(board, exported).join('\n'), /label pod_name is on none/)
  })
})

// ---- a real Prometheus, a real memsentry process ------------------------------------------------

const LIMIT = 1024 * 1024 * 1024

describe('every dashboard query returns data from a real Prometheus scraping real memsentry', () => {
  const state = { cgroup: null, pod: null, prom: null, podLog: '' }

  before(async () => {
    requirePrometheus()
    state.cgroup = makeContainerCgroup(LIMIT)
    // The figures this machine's cgroup version cannot have come from a fixture of the other one.
    const fixture =
      state.cgroup.version === 1
        ? path.join(ROOT, 'tests/fixtures/cgroup/v2-nested')
        : path.join(ROOT, 'tests/fixtures/cgroup/v1-limit')
    state.pod = spawnInCgroup(
      state.cgroup,
      process.execPath,
      [path.join(ROOT, '__test__/fixtures/fleet/pod.mjs'), fixture],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    state.pod.stderr.on('data', (c) => (state.podLog = (state.podLog + c).slice(-4000)))
    const [line] = await Promise.race([
      once(state.pod.stdout, 'data'),
      once(state.pod, 'exit').then(() => {
        throw new Error(`the pod exited before listening:\n${state.podLog}`)
      }),
    ])
    const { port, fixturePort } = JSON.parse(String(line))
    state.instance = `127.0.0.1:${port}`
    state.prom = await startPrometheus([
      { name: 'memsentry', targets: [state.instance] },
      { name: 'memsentry-cgroup-fixture', targets: [`127.0.0.1:${fixturePort}`] },
    ])
  })

  after(async () => {
    await state.prom?.stop()
    if (state.pod && state.pod.exitCode === null && state.pod.signalCode === null) {
      const exited = once(state.pod, 'exit')
      state.pod.kill('SIGTERM')
      await Promise.race([exited, sleep(5000)])
    }
    await state.cgroup?.remove()
  })

  it('within 75 s of scraping, each query has at least one series', async (t) => {
    const started = Date.now()
    const queries = dashboardQueries(dashboard()).map((q) => ({
      ...q,
      promql: substituteVariables(q.expr),
    }))
    const answered = new Map()
    const deadline = started + 75_000
    while (answered.size < queries.length && Date.now() < deadline) {
      for (const q of queries) {
        if (answered.has(q.where)) continue
        const result = await state.prom.query(q.promql)
        // A variable query must also yield the label it lists.
        const usable = q.label ? result.filter((r) => r.metric[q.label] !== undefined) : result
        if (usable.length > 0) answered.set(q.where, usable)
      }
      if (answered.size < queries.length) await sleep(1000)
    }
    const missing = queries.filter((q) => !answered.has(q.where))
    if (missing.length > 0) {
      assert.fail(
        `no data after ${Math.round((Date.now() - started) / 1000)} s for:\n` +
          missing.map((q) => `  ${q.where}: ${q.promql}`).join('\n') +
          `\ntargets: ${(await state.prom.targets()).join('; ')}\npod stderr: ${state.podLog}`,
      )
    }
    // The fixture may stand in only for what this machine's cgroup version cannot have: every
    // other query must also have the real pod's data (asked again now that all have answered).
    const versionOnly =
      state.cgroup.version === 1 ? ['memsentry_cgroup_high_bytes'] : ['memsentry_cgroup_under_oom']
    const fromFixture = []
    for (const q of queries) {
      const result = await state.prom.query(q.promql)
      const real = result.filter((r) => r.metric.instance === state.instance)
      if (real.length > 0) continue
      fromFixture.push(q.where)
      const named = [...namesIn(q.promql).metrics]
      assert.ok(
        named.every((m) => versionOnly.includes(m)),
        `${q.where}: no data from the real pod, only from the cgroup fixture: ${q.promql}`,
      )
    }
    t.diagnostic(
      `${queries.length} queries answered after ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `from the cgroup v${3 - state.cgroup.version} fixture only: ${fromFixture.join(', ') || 'none'}`,
    )
    // The figures worth a second look: the pod's own limit, a positive time to it.
    const limit = await state.prom.query('memsentry_cgroup_limit_bytes{job="memsentry"}')
    assert.equal(Number(limit[0]?.value[1]), LIMIT, 'the pod sees its cgroup limit')
  })
})
