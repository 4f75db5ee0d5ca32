// The ESM form of the preload entry: `import register, { sentry } from 'memsentry/register'`.
import register, { sentry, droppedLines } from 'memsentry/register'

const same: boolean = register.sentry === sentry
const dropped: number = droppedLines()
void [same, dropped]
