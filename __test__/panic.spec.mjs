import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

test('a Rust panic in an entry point reaches JS as an exception and the process goes on', () => {
  const binding = require('../binding.js')
  assert.throws(() => binding.panicForTests(), /deliberate panic for the test suite/)
  // The addon still works after it.
  const { rss } = require('../index.js')
  assert.ok(rss() > 0)
  assert.throws(() => binding.panicForTests(), /deliberate panic/)
})
