// What memsentry/prometheus really exports: a real MemorySentry with every option group on
// (smaps, heap, children, a threshold, leak detection), collected into a prom-client registry,
// scraped once; names read from the exposition text. The source of truth the dashboard and
// rule checks compare against, instead of a hand-written list.
import { createRequire } from 'node:module'
import client from 'prom-client'
import { MemorySentry } from '../../index.js'
import { waitFor } from './wait.mjs'

const require = createRequire(import.meta.url)
const { collect } = require('../../integrations/prometheus.js')

/** Parses Prometheus text exposition: { families: Map(name -> type), labels: Map(name -> Set) }. */
export function parseExposition(text) {
  const families = new Map()
  const labels = new Map()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) {
      families.set(type[1], type[2])
      labels.set(type[1], labels.get(type[1]) ?? new Set())
      continue
    }
    if (line === '' || line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+/.exec(line)
    if (!sample) throw new Error(`not an exposition line: ${line}`)
    const set = labels.get(sample[1]) ?? new Set()
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) set.add(m[1])
    labels.set(sample[1], set)
  }
  return { families, labels }
}

/**
 * The metric families memsentry/prometheus registers with every option group on (a family whose
 * figure is absent on this machine, such as cgroup v2's memory.high on a v1 host, still has its
 * # TYPE line), and the labels its samples carry.
 *
 * @returns {Promise<{ metrics: Map<string, string>, labels: Map<string, Set<string>>, text: string }>}
 */
export async function exportedMetrics() {
  const sentry = new MemorySentry({
    intervalMs: 50,
    smaps: true,
    heap: true,
    children: 'tree',
    thresholds: [{ name: 'probe', metric: 'rss', above: '1TiB' }],
    leak: { windowMs: 600_000 },
  })
  sentry.on('error', () => {}) // a figure this machine lacks is not what is checked here
  try {
    const registry = new client.Registry()
    collect(sentry, { registry })
    await waitFor(() => sentry.latest, { timeoutMs: 10_000, message: 'no first sample' })
    const text = await registry.metrics()
    const { families, labels } = parseExposition(text)
    return { metrics: families, labels, text }
  } finally {
    await sentry.close()
  }
}

/** Labels every scraped series gets from Prometheus itself. */
export const TARGET_LABELS = new Set(['job', 'instance'])
