// examples/grafana-dashboard.json, checked two ways:
// 1. every metric and label its queries (panels, annotations, variables, legends) name is one
//    memsentry/prometheus really exports: names read from a real exporter's scrape, queries parsed
//    with Prometheus's own PromQL grammar;
// 2. a real Prometheus scrapes a real memsentry process (a leaking Koa app in a memory cgroup with
//    a limit, with a child and a threshold it crosses) and every query returns data through
//    /api/v1/query, the way Grafana would ask it.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

import { exportedMetrics, TARGET_LABELS } from './helpers/exported.mjs'
import { dashboardQueries, legendLabels, namesIn, substituteVariables } from './helpers/promql.mjs'
import { requirePrometheus, startPrometheus } from './helpers/prometheus-server.mjs'

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

/** This process's memory cgroup: { version, dir } (v1: the memory hierarchy). */
function ownMemoryCgroup() {
  const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')
  const v1 = lines.map((l) => l.split(':')).find(([, ctrl]) => ctrl.split(',').includes('memory'))
  if (v1) {
    const dir = path.join('/sys/fs/cgroup/memory', v1[2])
    return { version: 1, dir: fs.existsSync(dir) ? dir : '/sys/fs/cgroup/memory' }
  }
  const v2 = lines.find((l) => l.startsWith('0::'))
  return { version: 2, dir: path.join('/sys/fs/cgroup', v2.slice(3)) }
}

/**
 * A new memory cgroup under this process's own, with a limit: the pod's "container". Needs root
 * and a writable cgroup fs, as on the project's machines; anything else fails with the reason.
 */
function makeContainerCgroup(limitBytes) {
  const own = ownMemoryCgroup()
  const dir = path.join(own.dir, `memsentry-fleet-${process.pid}`)
  try {
    fs.mkdirSync(dir)
    const limitFile = own.version === 1 ? 'memory.limit_in_bytes' : 'memory.max'
    fs.writeFileSync(path.join(dir, limitFile), String(limitBytes))
  } catch (err) {
    throw new Error(
      `cannot make a memory cgroup with a limit for the pod (cgroup v${own.version}, ${dir}): ` +
        `${err.message}. This test needs root and a writable cgroup fs (the project's machines have both).`,
    )
  }
  return {
    ...own,
    dir,
    remove: async () => {
      const procs = path.join(dir, 'cgroup.procs')
      for (let i = 0; i < 50 && fs.existsSync(dir); i++) {
        for (const pid of fs.readFileSync(procs, 'utf8').split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL') // only processes this test started live there
          } catch {}
        }
        try {
          fs.rmdirSync(dir)
        } catch {
          await sleep(100)
        }
      }
    },
  }
}

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
    // Joins the cgroup before node starts, so memsentry finds it at construction.
    state.pod = spawn(
      'sh',
      [
        '-c',
        'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
        'sh',
        state.cgroup.dir,
        process.execPath,
        path.join(ROOT, '__test__/fixtures/fleet/pod.mjs'),
        fixture,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    state.pod.stderr.on('data', (c) => (state.podLog = (state.podLog + c).slice(-4000)))
    const [line] = await Promise.race([
      once(state.pod.stdout, 'data'),
      once(state.pod, 'exit').then(() => {
        throw new Error(`the pod exited before listening:\n${state.podLog}`)
      }),
    ])
    const { port } = JSON.parse(String(line))
    state.prom = await startPrometheus([
      { name: 'memsentry', targets: [`127.0.0.1:${port}`] },
      {
        name: 'memsentry-cgroup-fixture',
        targets: [`127.0.0.1:${port}`],
        path: '/metrics-fixture',
      },
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
    const fromFixture = queries.filter((q) =>
      answered.get(q.where).every((r) => r.metric.job === 'memsentry-cgroup-fixture'),
    )
    t.diagnostic(
      `${queries.length} queries answered after ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `only from the cgroup fixture: ${fromFixture.map((q) => q.where).join(', ') || 'none'}`,
    )
    // The figures worth a second look: the pod's own limit, a positive time to it.
    const limit = await state.prom.query('memsentry_cgroup_limit_bytes{job="memsentry"}')
    assert.equal(Number(limit[0]?.value[1]), LIMIT, 'the pod sees its cgroup limit')
  })
})
