// Types of memsentry/register, the preload (`node -r memsentry/register app.js`).
import type { MemorySentry } from '../index.js'

/** The process's sentry; null where it could not start (or in a worker thread). */
export declare const sentry: MemorySentry | null
/** Lines memsentry could not write to stderr (full or closed) since the process started. */
export declare function droppedLines(): number
declare const register: { sentry: MemorySentry | null; droppedLines(): number }
export default register
