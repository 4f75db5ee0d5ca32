// examples/kubernetes/ and examples/prometheus/prometheus.yml, checked three ways:
// 1. every manifest parses and validates against the JSON schema of its kind: the Kubernetes API
//    schemas of the `kubernetes-models` package (generated from Kubernetes' OpenAPI spec) and the
//    prometheus-operator CRD schemas of `@kubernetes-models/prometheus-operator`;
// 2. what the schemas cannot see: ports, paths and selectors agree across the objects, the memory
//    limit is set, NODE_OPTIONS preloads memsentry/register, each MEMSENTRY_* variable is one
//    register.js reads, and the PrometheusRule holds exactly examples/prometheus/memsentry-rules.yml;
// 3. the Deployment's own command and environment run app/server.js for real, and a real
//    Prometheus with the annotation-based scrape config of examples/prometheus/prometheus.yml
//    finds it through the prometheus.io/* annotations, scrapes its memsentry metrics and loads the
//    alert rules.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseAllDocuments, parse, stringify } from 'yaml'

import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { Service } from 'kubernetes-models/v1/Service'
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor'
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'

import { freePort, requirePrometheus, startPrometheus } from './helpers/prometheus-server.mjs'
import { waitFor } from './helpers/wait.mjs'
import { makeContainerCgroup, spawnInCgroup } from './helpers/cgroup.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const K8S = path.join(ROOT, 'examples/kubernetes')
const MODELS = { Deployment, Service, ServiceMonitor, PodMonitor, PrometheusRule }

/** Every object of every YAML file in examples/kubernetes: [{ file, object }]. */
function manifests() {
  const out = []
  for (const file of fs.readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f))) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(K8S, file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file} does not parse`)
      assert.deepEqual(doc.warnings, [], `${file} has YAML warnings`)
      const object = doc.toJS()
      if (object != null) out.push({ file, object })
    }
  }
  return out
}

function only(kind) {
  const found = manifests().filter((m) => m.object.kind === kind)
  assert.equal(found.length, 1, `exactly one ${kind} in examples/kubernetes`)
  return found[0].object
}

/** A Kubernetes quantity (Mi, Gi, M, plain bytes) in bytes. */
function bytes(quantity) {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity))
  assert.ok(m, `not a memory quantity: ${quantity}`)
  const unit = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  }
  return Number(m[1]) * (m[2] ? unit[m[2]] : 1)
}

const matches = (selector, labels) =>
  Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels?.[k] === v)

/** The MEMSENTRY_* variables integrations/register.js reads, from its VARS table. */
function registerVariables() {
  const source = fs.readFileSync(path.join(ROOT, 'integrations/register.js'), 'utf8')
  const table = /const VARS = \{([^}]*)\}/.exec(source)
  assert.ok(table, 'register.js has a VARS table')
  return new Set([...table[1].matchAll(/'(MEMSENTRY_[A-Z_]+)'/g)].map((m) => m[1]))
}

describe('Kubernetes manifests (examples/kubernetes)', () => {
  it('parse and validate against the schema of their kind', () => {
    const all = manifests()
    assert.deepEqual(all.map((m) => m.object.kind).sort(), [
      'Deployment',
      'PodMonitor',
      'PrometheusRule',
      'Service',
      'ServiceMonitor',
    ])
    for (const { file, object } of all) {
      const Model = MODELS[object.kind]
      assert.ok(Model, `${file}: no schema for kind ${object.kind}`)
      assert.equal(object.apiVersion, Model.apiVersion, `${file}: apiVersion`)
      assert.doesNotThrow(() => new Model(object).validate(), `${file} (${object.kind})`)
    }
  })

  it('the schema validation rejects a broken manifest', () => {
    const deployment = structuredClone(only('Deployment'))
    deployment.spec.template.spec.containers[0].ports[0].containerPort = '3000'
    assert.throws(() => new Deployment(deployment).validate(), /containerPort must be integer/)
    const monitor = structuredClone(only('ServiceMonitor'))
    monitor.spec.endpoints[0].interval = 'every 15s'
    assert.throws(() => new ServiceMonitor(monitor).validate(), /interval must match pattern/)
  })

  it('ports, paths, labels and selectors agree across the objects', () => {
    const deployment = only('Deployment')
    const pod = deployment.spec.template
    const [container] = pod.spec.containers
    const http = container.ports.find((p) => p.name === 'http')
    assert.ok(http, 'the container has a port named http')
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]))
    assert.equal(Number(env.PORT), http.containerPort, 'the app listens on the container port')
    assert.ok(matches(deployment.spec.selector, pod.metadata.labels), 'Deployment selector')

    const annotations = pod.metadata.annotations
    assert.equal(annotations['prometheus.io/scrape'], 'true')
    assert.equal(Number(annotations['prometheus.io/port']), http.containerPort)
    assert.equal(annotations['prometheus.io/path'], '/metrics')

    const service = only('Service')
    assert.ok(
      matches({ matchLabels: service.spec.selector }, pod.metadata.labels),
      'Service selector',
    )
    const servicePort = service.spec.ports.find((p) => p.targetPort === 'http')
    assert.ok(servicePort, "the Service targets the container's http port")

    const serviceMonitor = only('ServiceMonitor')
    assert.ok(
      matches(serviceMonitor.spec.selector, service.metadata.labels),
      'ServiceMonitor selector',
    )
    for (const e of serviceMonitor.spec.endpoints) {
      assert.equal(e.port, servicePort.name, 'ServiceMonitor names the Service port')
      assert.equal(e.path, '/metrics')
    }
    const podMonitor = only('PodMonitor')
    assert.ok(matches(podMonitor.spec.selector, pod.metadata.labels), 'PodMonitor selector')
    for (const e of podMonitor.spec.podMetricsEndpoints) {
      assert.equal(e.port, http.name, 'PodMonitor names the container port')
      assert.equal(e.path, '/metrics')
    }
    // The probes hit a route the app serves (checked for real below).
    assert.equal(container.readinessProbe.httpGet.port, 'http')
  })

  it('a memory limit is set, and memsentry/register is preloaded with variables it knows', () => {
    const [container] = only('Deployment').spec.template.spec.containers
    const { limits, requests } = container.resources
    assert.ok(limits?.memory, 'resources.limits.memory is set')
    assert.ok(bytes(requests.memory) <= bytes(limits.memory), 'memory request within the limit')
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]))
    assert.match(env.NODE_OPTIONS, /(^|\s)-r memsentry\/register(\s|$)/)
    const known = registerVariables()
    assert.ok(known.size >= 5, `register.js variables: ${[...known]}`)
    const ours = Object.keys(env).filter((n) => n.startsWith('MEMSENTRY_'))
    assert.ok(ours.length > 0)
    for (const name of ours) assert.ok(known.has(name), `${name} is not read by memsentry/register`)
  })

  it('the PrometheusRule holds exactly examples/prometheus/memsentry-rules.yml', () => {
    const rules = parse(
      fs.readFileSync(path.join(ROOT, 'examples/prometheus/memsentry-rules.yml'), 'utf8'),
    )
    assert.deepEqual(only('PrometheusRule').spec.groups, rules.groups)
  })
})

describe('OpenTelemetry collector example (examples/opentelemetry/collector.yaml)', () => {
  // No collector binary to run it with (README.md says why): only its wiring is checked.
  it('receives OTLP and exports to Prometheus in a metrics pipeline whose parts all exist', () => {
    const file = path.join(ROOT, 'examples/opentelemetry/collector.yaml')
    const config = parse(fs.readFileSync(file, 'utf8'))
    const { receivers, processors, exporters } = config.service.pipelines.metrics
    assert.deepEqual(receivers, ['otlp'])
    assert.deepEqual(exporters, ['prometheus'])
    for (const r of receivers) assert.ok(r in config.receivers, r)
    for (const p of processors) assert.ok(p in config.processors, p)
    for (const e of exporters) assert.ok(e in config.exporters, e)
    assert.match(config.receivers.otlp.protocols.http.endpoint, /:4318$/)
    assert.match(config.exporters.prometheus.endpoint, /:\d+$/)
  })
})

// ---- the Deployment's command and environment, run for real, scraped through the annotations ---

describe("the Deployment's pod, run for real and found through its prometheus.io annotations", () => {
  const state = { app: null, prom: null, out: '', err: '' }

  before(async () => {
    requirePrometheus()
    const [container] = only('Deployment').spec.template.spec.containers
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]))
    // As in the container, with two changes for a test: a free port, and a sample per 200 ms
    // instead of 5 s so the first scrape has one.
    const port = await freePort()
    const [command, ...args] = container.command
    assert.equal(command, 'node')
    assert.deepEqual(args, ['server.js'])
    // `-r memsentry/register` resolves from the working directory: the package root here, as
    // /app (with node_modules/memsentry) is in the image.
    // In a memory cgroup with the Deployment's limit, as the container would be.
    state.cgroup = makeContainerCgroup(bytes(container.resources.limits.memory))
    state.app = spawnInCgroup(state.cgroup, process.execPath, [path.join(K8S, 'app', ...args)], {
      cwd: ROOT,
      env: { ...process.env, ...env, PORT: String(port), MEMSENTRY_INTERVAL_MS: '200' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    state.app.stdout.on('data', (c) => (state.out += c))
    state.app.stderr.on('data', (c) => (state.err += c))
    await waitFor(() => state.out.includes('"listening"') || state.app.exitCode !== null, {
      timeoutMs: 20_000,
      message: () => `the app did not start:\n${state.out}\n${state.err}`,
    })
    assert.equal(state.app.exitCode, null, `the app exited:\n${state.err}`)
    state.port = port

    // examples/prometheus/prometheus.yml, with its kubernetes_sd_configs (not compiled into
    // Debian's Prometheus, and there is no cluster here) replaced by one static target that
    // carries the meta labels Kubernetes service discovery would give this pod. Its address has
    // the wrong port on purpose: the prometheus.io/port annotation must fix it.
    const pod = only('Deployment').spec.template
    const config = parse(
      fs.readFileSync(path.join(ROOT, 'examples/prometheus/prometheus.yml'), 'utf8'),
    )
    config.global = { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' }
    const job = config.scrape_configs.find((j) => j.job_name === 'kubernetes-pods')
    assert.deepEqual(job.kubernetes_sd_configs, [{ role: 'pod' }])
    delete job.kubernetes_sd_configs
    const meta = {
      __meta_kubernetes_namespace: 'shop',
      __meta_kubernetes_pod_name: 'orders-7d9f8-abcde',
      __meta_kubernetes_pod_container_name: container.name,
    }
    for (const [k, v] of Object.entries(pod.metadata.annotations)) {
      meta[`__meta_kubernetes_pod_annotation_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v
    }
    meta.__meta_kubernetes_pod_annotation_prometheus_io_port = String(port) // the test's port
    job.static_configs = [{ targets: ['127.0.0.1:1'], labels: meta }]
    const rules = fs.readFileSync(path.join(ROOT, 'examples/prometheus/memsentry-rules.yml'))
    state.prom = await startPrometheus(null, {
      config: stringify(config),
      files: { 'memsentry-rules.yml': rules },
    })
  })

  after(async () => {
    await state.prom?.stop()
    if (state.app && state.app.exitCode === null && state.app.signalCode === null) {
      const exited = once(state.app, 'exit')
      state.app.kill('SIGTERM')
      await Promise.race([exited, sleep(5000)])
      if (state.app.exitCode === null) state.app.kill('SIGKILL')
    }
    await state.cgroup?.remove()
  })

  it('serves /healthz and its routes, with memsentry started from the environment', async () => {
    const base = `http://127.0.0.1:${state.port}`
    assert.equal(await (await fetch(`${base}/healthz`)).text(), 'ok')
    assert.equal((await (await fetch(`${base}/orders/42`)).json()).id, '42')
    // MEMSENTRY_LOG=json: every memsentry line on stderr is JSON, and none is a warning (a bad
    // or unknown variable) or a failure to start.
    await waitFor(() => state.err.includes('\n'), { timeoutMs: 10_000, message: 'no stderr line' })
    // Complete lines only: the last one may still be arriving.
    const lines = state.err.slice(0, state.err.lastIndexOf('\n')).split('\n').filter(Boolean)
    for (const line of lines) {
      const record = JSON.parse(line)
      assert.notEqual(record.event, 'warning', line)
    }
    const text = await (await fetch(`${base}/metrics`)).text()
    assert.match(text, /^memsentry_rss_bytes \d+/m)
    assert.match(text, /^memsentry_leak_slope_bytes_per_second 0$/m)
    assert.match(text, /^memsentry_threshold_active\{name="rss-warn"\} 0$/m)
    const [container] = only('Deployment').spec.template.spec.containers
    const limit = bytes(container.resources.limits.memory)
    assert.match(text, new RegExp(`^memsentry_cgroup_limit_bytes ${limit}$`, 'm'))
  })

  it('Prometheus scrapes it at the annotated port and path, with namespace and pod labels', async () => {
    const found = await waitFor(
      async () => {
        const r = await state.prom.query('memsentry_rss_bytes{job="kubernetes-pods"}')
        return r.length > 0 && r
      },
      {
        timeoutMs: 30_000,
        intervalMs: 250,
        message: async () => `no scrape; targets: ${(await state.prom.targets()).join('; ')}`,
      },
    )
    assert.equal(found.length, 1)
    assert.equal(found[0].metric.namespace, 'shop')
    assert.equal(found[0].metric.pod, 'orders-7d9f8-abcde')
    assert.equal(found[0].metric.container, 'orders')
    assert.equal(found[0].metric.instance, `127.0.0.1:${state.port}`)
  })

  it('loads the five alert rules, healthy, with none firing for this pod', async () => {
    const groups = await waitFor(
      async () => {
        const { groups } = await state.prom.api('rules')
        const rules = groups.flatMap((g) => g.rules)
        return (
          rules.length > 0 && rules.every((r) => !r.lastEvaluation.startsWith('0001-')) && groups
        )
      },
      { timeoutMs: 20_000, intervalMs: 250, message: 'rules not evaluated' },
    )
    const rules = groups.flatMap((g) => g.rules)
    assert.equal(rules.length, 5)
    for (const r of rules) {
      assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`)
      assert.equal(r.state, 'inactive', `${r.name} is ${r.state}`)
    }
  })
})
