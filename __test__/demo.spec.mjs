// `npm run demo` (examples/demo.js) as a person runs it: a child process that must end by itself.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const demo = fileURLToPath(new URL('../examples/demo.js', import.meta.url))

/** Runs the demo; resolves { code, signal, stdout, stderr, ms }, killing it after timeoutMs. */
function runDemo(timeoutMs) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    // From the package root, as `npm run demo` runs it: paths print relative to it.
    const child = spawn(process.execPath, [demo], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

test(
  'npm run demo: pidstat lines, batch reports, the leak warning naming the route and the code; exit 0',
  { timeout: 120_000 },
  async () => {
    const run = await runDemo(115_000)
    const output = `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`
    assert.equal(run.signal, null, `killed after ${run.ms} ms\n${output}`)
    assert.equal(run.code, 0, output)
    assert.ok(run.ms < 90_000, `ran ${run.ms} ms\n${output}`)

    const lines = run.stdout.split('\n')
    assert.ok(
      lines.includes(
        'Time        UID       PID  minflt/s  majflt/s     VSZ     RSS   %MEM  Command',
      ),
      output,
    )
    const pidstat = lines.filter((l) =>
      /^\d\d:\d\d:\d\d +\d+ +\d+ +\d+\.\d\d +\d+\.\d\d +\d+ +\d+ +\d+\.\d\d  \S/.test(l),
    )
    assert.ok(pidstat.length >= 5, `${pidstat.length} pidstat lines\n${output}`)

    const batches = lines.filter((l) => /^memsentry: \d+ req in \d+ ms \(/.test(l))
    assert.ok(batches.length >= 1, output)
    assert.match(batches[0], / rss \d+\.\d MiB /, output)
    assert.match(batches[0], /routes .*GET \/orders\/:id=\d+/, output)

    // The leak warning: slope, suspect and the route the growth follows, on the warning or, if
    // the batches until then did not tell yet, on the first line after it that does; and no
    // line names any other route.
    const leak = lines.find((l) => l.startsWith('memsentry: LEAK '))
    assert.ok(leak, `no leak warning\n${output}`)
    assert.match(leak, /growing [\d.]+ [KMG]iB\/min/, output)
    assert.match(leak, /suspect (heap|native|unknown)/, output)
    const follows = /growth follows GET \/orders\/:id \(~[\d.]+ KiB per request\)$/
    const named = lines.slice(lines.indexOf(leak)).find((l) => follows.test(l))
    assert.ok(named, `the route is not named on or after the warning\n${output}`)
    assert.ok(named === leak || named.startsWith('memsentry: growth follows '), output)
    for (const l of lines.filter((l) => l.includes('growth follows '))) {
      assert.match(l, follows, output)
    }
    assert.match(run.stdout, /leak warned [\d.]+ s after start/, output)

    // Then the code: getData allocates the document each order keeps (V8 names functions, at
    // the line where they start).
    const getData =
      readFileSync(demo, 'utf8')
        .split('\n')
        .findIndex((l) => l.startsWith('async function getData(')) + 1
    const sites = lines.find((l) => l.startsWith('memsentry: leak allocated in '))
    assert.ok(sites, `no leak diagnosis\n${output}`)
    assert.ok(lines.indexOf(sites) > lines.indexOf(leak), output)
    assert.match(
      sites,
      new RegExp(`^memsentry: leak allocated in getData \\(examples/demo\\.js:${getData}\\) \\d+%`),
      output,
    )
  },
)
