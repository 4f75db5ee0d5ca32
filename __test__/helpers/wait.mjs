// Polling with deadlines instead of fixed sleeps.
import { setTimeout as sleep } from 'node:timers/promises'

export { sleep }

/**
 * Calls `check` every `intervalMs` until it returns a truthy value, which is returned. Throws
 * after `timeoutMs` with `message` (a string or a function of the last value).
 */
export async function waitFor(check, { timeoutMs = 10_000, intervalMs = 10, message } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    last = await check()
    if (last) return last
    if (Date.now() > deadline) {
      const text = typeof message === 'function' ? message(last) : message
      throw new Error(`timed out after ${timeoutMs} ms: ${text ?? check.toString()}`)
    }
    await sleep(intervalMs)
  }
}

/** Lets queued threadsafe-function calls and immediates run. */
export async function drainEvents(rounds = 5) {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}
