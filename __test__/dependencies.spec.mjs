// Which way the arrows run, read from the sources: the wrapper (lib/) never requires an
// integration, and integrations reach the core through the public entry point, not lib/ internals.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

function sources(dir) {
  const out = []
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...sources(rel))
    else if (/\.(c|m)?js$/.test(entry.name)) out.push(rel)
  }
  return out
}

// Every relative specifier of require(), import() and `import ... from`, resolved to a path
// relative to the repository.
function relativeDeps(file) {
  const text = fs.readFileSync(path.join(root, file), 'utf8')
  const specs = []
  const re = /(?:require\s*\(\s*|import\s*\(\s*|\bfrom\s+)(['"`])(\.{1,2}\/[^'"`]*)\1/g
  for (const m of text.matchAll(re)) {
    specs.push(path.relative(root, path.resolve(path.dirname(path.join(root, file)), m[2])))
  }
  return specs
}

test('the scan finds the requires it is meant to judge', () => {
  // If the pattern stopped matching, the tests below would pass on anything.
  assert.ok(relativeDeps('lib/sentry.js').includes('lib/options'))
  assert.ok(relativeDeps('integrations/koa.js').includes('index.js'))
  assert.ok(relativeDeps('integrations/register.mjs').length > 0)
})

test('no file in lib/ requires one in integrations/', () => {
  const files = sources('lib')
  assert.ok(files.length >= 5, `${files}`)
  const wrong = files.flatMap((f) =>
    relativeDeps(f)
      .filter((d) => d === 'integrations' || d.startsWith(`integrations${path.sep}`))
      .map((d) => `${f} -> ${d}`),
  )
  assert.deepEqual(wrong, [])
})

// memsentry/report is the public face of the core's report page (which the sentry writes itself
// for writeReport() and leak.report): the one entry point made of lib/ modules. Every entry
// point checks its options with the core's module, reads sizes with its parser and figures by
// the metric table (pure functions and facts, no state).
const SHARED = ['lib/validation', 'lib/sizes', 'lib/metrics', 'lib/allocation-site']
const PUBLIC_FACES = new Map([['integrations/report.js', ['lib/report', 'lib/recorder']]])

test('integrations reach the core only through the public entry point', () => {
  const wrong = []
  for (const f of sources('integrations')) {
    const allowed = [...SHARED, ...(PUBLIC_FACES.get(f) ?? [])]
    for (const d of relativeDeps(f)) {
      const inside = d.startsWith(`integrations${path.sep}`)
      const entry = ['index', 'index.js', 'index.mjs', 'package.json'].includes(d)
      if (!inside && !entry && !allowed.includes(d)) wrong.push(`${f} -> ${d}`)
    }
  }
  assert.deepEqual(wrong, [])
})
