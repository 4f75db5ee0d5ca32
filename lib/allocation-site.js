'use strict'

// How an allocation site of a leak diagnosis reads, for every place that prints one (the report,
// the Koa logger, the format helpers, the demo). Pure: shared by lib/ and integrations/.

const path = require('node:path')

/**
 * An allocation site of a leak diagnosis as people read it: `getData (examples/demo.js:54)`, the
 * file relative to `cwd` when it is under it, the line where the function starts.
 */
function formatSite(site, { cwd = process.cwd() } = {}) {
  const name = site.functionName || '(anonymous)'
  if (!site.url) return name
  let file = site.url
  if (file.startsWith('file://')) {
    try {
      file = decodeURIComponent(new URL(file).pathname)
    } catch {
      // keep the url as it is
    }
  }
  const rel = path.relative(cwd, file)
  if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) file = rel
  return `${name} (${file}:${site.line})`
}

module.exports = { formatSite }
