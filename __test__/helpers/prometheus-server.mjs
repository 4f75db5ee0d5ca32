// A real Prometheus server (Debian package `prometheus`) on a loopback port, for end-to-end tests:
// scrape configs in, /api/v1/query out.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export const PROMETHEUS = '/usr/bin/prometheus'

/** Throws (never skips) when the binary is missing: CI installs it. */
export function requirePrometheus() {
  if (!existsSync(PROMETHEUS)) {
    throw new Error(
      `${PROMETHEUS} is missing: this test runs a real Prometheus server. ` +
        'Install it with: apt-get update && apt-get install -y prometheus',
    )
  }
}

/** A loopback port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * Starts Prometheus scraping `jobs` ([{ name, targets: ['127.0.0.1:port'], path? }]) every
 * second, and waits until it is ready. Instead of jobs, `options.config` may give a whole
 * configuration file's text, with `options.files` ({ name: text }) written beside it (rule files).
 * Returns { url, query(expr), api(path), targets(), log(), stop() }.
 */
export async function startPrometheus(
  jobs,
  { scrapeInterval = '1s', config: text, files = {} } = {},
) {
  requirePrometheus()
  const dir = await mkdtemp(join(tmpdir(), 'memsentry-prometheus-'))
  const config = join(dir, 'prometheus.yml')
  const lines = [
    'global:',
    `  scrape_interval: ${scrapeInterval}`,
    `  scrape_timeout: ${scrapeInterval}`,
    `  evaluation_interval: ${scrapeInterval}`,
    'scrape_configs:',
  ]
  for (const job of jobs ?? []) {
    lines.push(`  - job_name: ${JSON.stringify(job.name)}`)
    if (job.path) lines.push(`    metrics_path: ${JSON.stringify(job.path)}`)
    lines.push('    static_configs:', `      - targets: ${JSON.stringify(job.targets)}`)
  }
  await writeFile(config, text ?? lines.join('\n') + '\n')
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content)

  let log = ''
  let prom
  let url
  const cleanup = async () => {
    if (prom && prom.exitCode === null && prom.signalCode === null) {
      const exited = once(prom, 'exit')
      prom.kill('SIGTERM')
      const grace = new AbortController()
      const stopped = await Promise.race([
        exited.then(() => true),
        sleep(5000, false, { signal: grace.signal }).catch(() => false),
      ])
      grace.abort() // or the pending timer holds the process for 5 s
      if (!stopped) {
        prom.kill('SIGKILL')
        await exited
      }
    }
    await rm(dir, { recursive: true, force: true })
  }

  // The port is chosen by listening on port 0 and closing; should another process take it in
  // between, Prometheus exits at once and another is tried.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    log = ''
    prom = spawn(
      PROMETHEUS,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const keep = (chunk) => {
      log = (log + chunk).slice(-8000)
    }
    prom.stdout.on('data', keep)
    prom.stderr.on('data', keep)
    url = `http://127.0.0.1:${port}`
    const exited = once(prom, 'exit').then(() => 'exited')
    const ready = (async () => {
      const deadline = Date.now() + 30_000
      while (Date.now() < deadline && prom.exitCode === null) {
        try {
          if ((await fetch(`${url}/-/ready`)).ok) return 'ready'
        } catch {}
        await sleep(100)
      }
      return 'timeout'
    })()
    const outcome = await Promise.race([ready, exited])
    if (outcome === 'ready') break
    if (outcome === 'exited' && attempt < 3) continue
    await cleanup()
    throw new Error(`prometheus did not become ready (${outcome}):\n${log}`)
  }

  return {
    url,
    /** The result vector of an instant query; throws when Prometheus rejects the query. */
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)
      const body = await res.json()
      if (body.status !== 'success') {
        throw new Error(`Prometheus rejected ${expr}: ${body.errorType}: ${body.error}`)
      }
      return body.data.result
    },
    /** The `data` of a GET of /api/v1/<path>. */
    async api(path) {
      const body = await (await fetch(`${url}/api/v1/${path}`)).json()
      if (body.status !== 'success') throw new Error(`/api/v1/${path}: ${body.error}`)
      return body.data
    },
    /** One line per active target: job, health, last error. */
    async targets() {
      const body = await (await fetch(`${url}/api/v1/targets`)).json()
      return body.data.activeTargets.map(
        (t) => `${t.labels.job} ${t.scrapeUrl} ${t.health} ${t.lastError}`,
      )
    },
    log: () => log,
    stop: cleanup,
  }
}
