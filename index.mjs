// ESM entry: the same objects as the CommonJS entry.
import cjs from './index.js'

export const { MemorySentry, snapshot, rss } = cjs
export default cjs
