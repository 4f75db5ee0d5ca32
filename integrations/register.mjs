// memsentry/register for `node --import memsentry/register app.mjs`: the same preload as the
// CommonJS entry (one sentry per process, whichever entry loads first).
import register from './register.js'

export const { sentry, droppedLines } = register
export default register
