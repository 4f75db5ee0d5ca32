'use strict'

// What a sentry does when a leak is confirmed, as its options ask: a V8 heap snapshot
// (`heapSnapshot`) and an HTML report (`leak.report`). Both caps live here and count for the
// whole process, across sentries: each snapshot is the size of the heap, and a leak that comes
// back must not fill the disk with reports.

const fs = require('node:fs')
const path = require('node:path')
const v8 = require('node:v8')
const { attach, eventTime, onDiagnosis, recordNow } = require('./recorder')
const { checkReportOptions, collectData, renderHtml, writePrivate } = require('./report')
const { typeError } = require('./validation')

/** Leak reports written in the life of the process, across sentries. */
const MAX_LEAK_REPORTS = 5

let heapSnapshotsWritten = 0
let leakReportsWritten = 0

/**
 * For the sentry's `heapSnapshot: { dir, maxCount }` option, called with each 'leak' event: writes
 * one V8 heap snapshot (mode 0600) and sets its path on `event.heapSnapshot`, at most `maxCount`
 * in the life of the process. It blocks the event loop while V8 walks the heap: seconds on a
 * large heap. Skipped, with an 'error' event, when the disk has less free space than twice the
 * heap.
 */
function writeHeapSnapshot(sentry, { dir, maxCount }, event) {
  if (heapSnapshotsWritten >= maxCount) return
  const fail = (code, message) => {
    if (sentry.listenerCount('error') === 0) return
    const err = new Error(`memsentry: heap snapshot skipped: ${message}`)
    err.code = code
    sentry.emit('error', err)
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    const { bavail, bsize } = fs.statfsSync(dir)
    const need = 2 * v8.getHeapStatistics().total_heap_size
    if (bavail * bsize < need) {
      return fail(
        'ENOSPC',
        `${dir} has ${bavail * bsize} bytes free, under twice the heap (${need})`,
      )
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    const file = path.join(dir, `memsentry-${process.pid}-${stamp}.heapsnapshot`)
    // V8 opens the file by its path, following any symlink planted there. So it writes into a
    // directory that only this process can enter (mkdtemp makes it 0700), and the file is
    // then renamed into place: rename replaces a planted link instead of writing through it.
    const privateDir = fs.mkdtempSync(path.join(dir, '.memsentry-'))
    try {
      const tmp = path.join(privateDir, path.basename(file))
      heapSnapshotsWritten++
      v8.writeHeapSnapshot(tmp)
      const st = fs.lstatSync(tmp)
      if (!st.isFile() || st.nlink !== 1) throw new Error(`${tmp} is not the file V8 wrote`)
      fs.chmodSync(tmp, 0o600)
      fs.renameSync(tmp, file)
    } finally {
      fs.rmSync(privateDir, { recursive: true, force: true })
    }
    event.heapSnapshot = file
  } catch (err) {
    fail(err.code ?? 'EIO', err.message)
  }
}

/**
 * For the sentry's `leak: { report: dir }` option, called with each 'leak' event: returns the
 * path `<dir>/memsentry-leak-<pid>-<time>.html` at once, sets it on `event.report`, and writes the
 * report in a setImmediate callback (off the sampler callback's path). At most MAX_LEAK_REPORTS
 * (5) in the life of the process; past that it returns null and writes nothing. A failure is
 * reported as an 'error' event on the sentry (only when someone listens), with the system error's
 * code (EACCES, ENOSPC, EEXIST...) and `path`; the process goes on.
 */
function writeLeakReport(sentry, dir, event, options) {
  const { includeCmdline = false } = checkReportOptions(options, 'writeLeakReport')
  if (typeof dir !== 'string' || dir === '') {
    throw typeError('dir', 'a non-empty string', dir, 'memsentry/report')
  }
  if (leakReportsWritten >= MAX_LEAK_REPORTS) return null
  leakReportsWritten++
  attach(sentry)
  const time = eventTime(event)
  const stamp = new Date(time).toISOString().replace(/[:.]/g, '-')
  const file = path.join(path.resolve(dir), `memsentry-leak-${process.pid}-${stamp}.html`)
  if (event != null && typeof event === 'object') event.report = file
  const render = (exclusive) => {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
      const trigger = { type: 'leak', time, report: file }
      const title = `memsentry: leak in pid ${process.pid}`
      const html = renderHtml(collectData(sentry, { includeCmdline, title, trigger }))
      writePrivate(file, html, { exclusive })
      return true
    } catch (err) {
      if (typeof sentry.listenerCount === 'function' && sentry.listenerCount('error') > 0) {
        const e = new Error(`memsentry: leak report not written: ${err.message}`)
        e.code = err.code ?? 'EIO'
        e.path = file
        sentry.emit('error', e)
      }
      return false
    }
  }
  setImmediate(() => {
    // The event may not have reached the recorder yet (this runs before or inside its emit).
    if (event != null && typeof event === 'object') recordNow(sentry, 'leak', event)
    // The episode's diagnosis, when it comes (a profiler run later), rewrites this file once.
    if (render(true)) onDiagnosis(sentry, () => render(false))
  })
  return file
}

module.exports = { writeHeapSnapshot, writeLeakReport, MAX_LEAK_REPORTS }
