'use strict'

// memsentry/report: one self-contained HTML file with a sentry's history drawn as a chart.
//
//   const { MemorySentry } = require('memsentry')
//   const { attach, writeReport } = require('memsentry/report')
//   const sentry = new MemorySentry({ intervalMs: 1000 })
//   attach(sentry)                                   // start recording events now (optional)
//   // ... later, e.g. on SIGUSR2 or from an admin route:
//   writeReport(sentry, '/tmp/memory.html')          // mode 0600; open it in any browser
//
// The page belongs to the core (lib/report.js): the sentry writes it itself for
// `sentry.writeReport(file)` and for the `leak: { report: dir }` option. This entry point is its
// public face, and what memsentry/dashboard builds the live view from.
//
// Events: a sample history is kept by the sentry itself, but events are not. `attach(sentry)`
// subscribes to its 'threshold', 'leak', 'leak-end', 'leak-diagnosis', 'child' and 'oom' events
// and keeps the last 1000 in memory (per sentry, dropped with it). `writeReport` attaches on first
// use, so events emitted before the first `attach` or `writeReport` call are not in any report:
// call `attach` right after creating the sentry to have them all.
//
// Command lines: arguments can hold secrets (`--token=...`), so children's command lines and this
// process's arguments are left out of every report unless `includeCmdline: true`.

const { attach, eventCount } = require('../lib/recorder')
const { writeReport, collectData, buildData, renderHtml } = require('../lib/report')

module.exports = {
  attach,
  writeReport,
  // The page's data for a live sentry, for synthetic figures, and as HTML (memsentry/dashboard):
  collectData,
  buildData,
  renderHtml,
  eventCount,
}
