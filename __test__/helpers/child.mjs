// Spawning Node child processes that load memsentry, and reading what they report.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const childrenDir = fileURLToPath(new URL('../fixtures/children/', import.meta.url))

/** The path of a child script in __test__/fixtures/children. */
export function childScript(name) {
  return path.join(childrenDir, name)
}

/**
 * Spawns `node ...args` and returns { child, done, lines }: `done` resolves with
 * { code, signal, stdout, stderr, elapsedMs, timedOut } (elapsed from spawn), `lines` is the
 * live array of stdout lines parsed as JSON (lines that are not JSON are kept as strings).
 * The child is killed with SIGKILL after `timeoutMs`.
 */
export function startNode(args, { timeoutMs = 30_000, env, cwd = repoRoot } = {}) {
  const started = performance.now()
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines = []
  let stdout = ''
  let stderr = ''
  let pending = ''
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', (chunk) => {
    stdout += chunk
    pending += chunk
    let nl
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      if (line.trim() === '') continue
      try {
        lines.push(JSON.parse(line))
      } catch {
        lines.push(line)
      }
    }
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)
  const done = new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, elapsedMs: performance.now() - started, timedOut })
    })
  })
  return { child, done, lines }
}

/** Runs `node ...args` to the end; see startNode. */
export function runNode(args, options) {
  return startNode(args, options).done
}

/** A short description of a finished child for assertion messages. */
export function describe(result) {
  const { code, signal, elapsedMs, timedOut, stdout, stderr } = result
  return (
    `code=${code} signal=${signal} elapsed=${Math.round(elapsedMs)}ms timedOut=${timedOut}\n` +
    `--- stdout ---\n${stdout.slice(-4000)}\n--- stderr ---\n${stderr.slice(-4000)}`
  )
}
