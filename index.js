'use strict'

const native = require('./lib/native')
const { MemorySentry } = require('./lib/sentry')
const { normalizeSnapshotOptions, forNative } = require('./lib/options')

/** A one-shot fresh Sample without a sentry. */
function snapshot(options) {
  return native.snapshot(forNative(normalizeSnapshotOptions(options)))
}

/** Resident bytes of this process: the cheapest read there is (one pread of statm). */
const rss = native.rss

module.exports = { MemorySentry, snapshot, rss }
