// ESM imports of the package: the preload entry (`import register, { sentry } from
// 'memsentry/register'`) and the main entry's default export.
import register, { sentry, droppedLines } from 'memsentry/register'

const same: boolean = register.sentry === sentry
const dropped: number = droppedLines()
void [same, dropped]

// The main entry's ESM form has a default export too (index.mjs): the CommonJS exports object.
import memsentry, { MemorySentry, rss } from 'memsentry'

const sameClass: boolean = memsentry.MemorySentry === MemorySentry
const bytes: number = memsentry.rss() + rss()
void [sameClass, bytes]
