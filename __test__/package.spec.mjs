// The package as users get it: a clear error off 64-bit Linux, and a tarball that installs and
// loads in a fresh project, from require and from import.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { describe, repoRoot, runNode } from './helpers/child.mjs'

const execFileAsync = promisify(execFile)

// A stand-in for another platform: the loader checks process.platform / process.arch first.
// The message names what is shipped, so it has to stay true to prebuilds/.
const shipped = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl']
const unsupported = [
  ['platform', 'darwin', ['darwin', ...shipped]],
  ['platform', 'win32', ['win32', ...shipped]],
  ['arch', 'ia32', ["arch 'ia32'", ...shipped]],
  ['arch', 'arm', ["arch 'arm'", ...shipped]],
]

for (const [property, value, mentions] of unsupported) {
  test(`require('memsentry') with process.${property} = '${value}' fails with a clear error`, async () => {
    const script =
      `Object.defineProperty(process, ${JSON.stringify(property)}, { value: ${JSON.stringify(value)} }); ` +
      `require(${JSON.stringify(repoRoot)})`
    const result = await runNode(['-e', script], { timeoutMs: 20_000 })
    assert.notEqual(result.code, 0, describe(result))
    assert.equal(result.signal, null, describe(result))
    assert.ok(result.stderr.includes('memsentry reads Linux procfs'), describe(result))
    for (const word of mentions) assert.ok(result.stderr.includes(word), describe(result))
    assert.ok(result.stderr.includes('ERR_MEMSENTRY_UNSUPPORTED_PLATFORM'), describe(result))
  })
}

test('Node 20, past its end of life, gets a clear error', async () => {
  const script =
    `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.20.2' } }); ` +
    `require(${JSON.stringify(repoRoot)})`
  const result = await runNode(['-e', script], { timeoutMs: 20_000 })
  assert.notEqual(result.code, 0, describe(result))
  assert.equal(result.signal, null, describe(result))
  assert.ok(result.stderr.includes('memsentry needs Node 22 or newer'), describe(result))
  assert.ok(result.stderr.includes('this is Node 20.20.2'), describe(result))
  assert.ok(result.stderr.includes('ERR_MEMSENTRY_UNSUPPORTED_NODE'), describe(result))
})

test('a glibc older than 2.28 gets a clear error, not only the dlopen failure', async () => {
  // As on such a system: the report header names the old glibc, and loading the addon fails.
  const script =
    `const real = process.report.getReport.bind(process.report); ` +
    `process.report.getReport = () => { const r = real(); r.header.glibcVersionRuntime = '2.17'; return r }; ` +
    `require('node:module')._extensions['.node'] = () => { throw new Error("version 'GLIBC_2.28' not found") }; ` +
    `require(${JSON.stringify(repoRoot)})`
  const result = await runNode(['-e', script], { timeoutMs: 20_000 })
  assert.notEqual(result.code, 0, describe(result))
  assert.ok(result.stderr.includes('glibc 2.17'), describe(result))
  assert.ok(result.stderr.includes('glibc 2.28 or newer'), describe(result))
  assert.ok(result.stderr.includes('ERR_MEMSENTRY_UNSUPPORTED_PLATFORM'), describe(result))
})

test("Node's permission model: a clear error naming the flags memsentry needs, and it runs with them", async () => {
  const script = `require(${JSON.stringify(repoRoot)})`
  const cases = [
    [[`--allow-fs-read=${repoRoot}`], 'ERR_MEMSENTRY_NO_PROCFS'],
    [[`--allow-fs-read=${repoRoot}`, '--allow-fs-read=/proc'], 'ERR_MEMSENTRY_NO_ADDONS'],
  ]
  for (const [flags, code] of cases) {
    const result = await runNode(['--permission', ...flags, '-e', script], { timeoutMs: 20_000 })
    assert.notEqual(result.code, 0, describe(result))
    assert.equal(result.signal, null, describe(result))
    assert.ok(result.stderr.includes(code), describe(result))
    assert.ok(result.stderr.includes('--allow-fs-read=/proc --allow-addons'), describe(result))
  }
  const noAddons = await runNode(['--no-addons', '-e', script], { timeoutMs: 20_000 })
  assert.ok(noAddons.stderr.includes('ERR_MEMSENTRY_NO_ADDONS'), describe(noAddons))
  assert.ok(noAddons.stderr.includes('runs with --no-addons'), describe(noAddons))
  // The first sample comes from the sampler thread: polled for, however loaded the machine.
  const run =
    `const { MemorySentry } = require(${JSON.stringify(repoRoot)}); ` +
    `const s = new MemorySentry({ intervalMs: 50 }); ` +
    `const t = setInterval(() => { if (s.latest) { clearInterval(t); console.log(s.latest.rss > 0); s.close() } }, 20)`
  const allowed = await runNode(
    [
      '--permission',
      `--allow-fs-read=${repoRoot}`,
      '--allow-fs-read=/proc',
      '--allow-addons',
      '-e',
      run,
    ],
    { timeoutMs: 20_000 },
  )
  assert.equal(allowed.code, 0, describe(allowed))
  assert.equal(allowed.stdout.trim(), 'true', describe(allowed))
})

test("a package without its build says where it looked, not napi-rs's optional-dependency hint", async () => {
  // What npm installs from a git dependency: the sources, packed by `files`, without the build.
  const dir = mkdtempSync(path.join(tmpdir(), 'memsentry-nobuild-'))
  try {
    for (const f of ['index.js', 'binding.js', 'package.json', 'lib']) {
      cpSync(path.join(repoRoot, f), path.join(dir, f), { recursive: true })
    }
    const result = await runNode(['-e', `require(${JSON.stringify(dir)})`], { timeoutMs: 20_000 })
    assert.notEqual(result.code, 0, describe(result))
    assert.ok(result.stderr.includes('no native addon memsentry.linux-'), describe(result))
    assert.ok(result.stderr.includes(path.join(dir, 'prebuilds')), describe(result))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("import 'memsentry' on darwin fails with the same clear error", async () => {
  const script =
    `Object.defineProperty(process, 'platform', { value: 'darwin' }); ` +
    `await import(${JSON.stringify(path.join(repoRoot, 'index.mjs'))})`
  const result = await runNode(['--input-type=module', '-e', script], { timeoutMs: 20_000 })
  assert.notEqual(result.code, 0, describe(result))
  assert.ok(result.stderr.includes('memsentry reads Linux procfs'), describe(result))
  assert.ok(result.stderr.includes('darwin'), describe(result))
})

async function run(command, args, cwd, timeout) {
  try {
    return await execFileAsync(command, args, {
      cwd,
      timeout,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, npm_config_update_notifier: 'false' },
    })
  } catch (err) {
    err.message += `\n--- stdout ---\n${err.stdout}\n--- stderr ---\n${err.stderr}`
    throw err
  }
}

test(
  'npm pack, then install with koa in a fresh project: require and import work',
  { timeout: 120_000 },
  async (t) => {
    const packDir = mkdtempSync(path.join(tmpdir(), 'memsentry-pack-'))
    const appDir = mkdtempSync(path.join(tmpdir(), 'memsentry-app-'))
    t.after(() => {
      rmSync(packDir, { recursive: true, force: true })
      rmSync(appDir, { recursive: true, force: true })
    })

    // The tarball ships prebuilds/ (npm run build:prebuilds). A checkout without them packs a
    // staged copy that carries its own build as the x64 glibc prebuild.
    let source = repoRoot
    if (!existsSync(path.join(repoRoot, 'prebuilds', 'memsentry.linux-x64-gnu.node'))) {
      source = path.join(packDir, 'stage')
      const skip = new Set(['node_modules', 'target', '.git', 'fuzz', 'prebuilds'])
      cpSync(repoRoot, source, { recursive: true, filter: (f) => !skip.has(path.basename(f)) })
      mkdirSync(path.join(source, 'prebuilds'))
      copyFileSync(
        path.join(repoRoot, 'memsentry.linux-x64-gnu.node'),
        path.join(source, 'prebuilds', 'memsentry.linux-x64-gnu.node'),
      )
    }
    // --ignore-scripts: 'prepare' would rebuild the addon.
    const packed = await run(
      'npm',
      ['pack', source, '--pack-destination', packDir, '--ignore-scripts', '--json'],
      repoRoot,
      60_000,
    )
    const [info] = JSON.parse(packed.stdout)
    const files = info.files.map((f) => f.path)
    for (const needed of [
      'package.json',
      'index.js',
      'index.mjs',
      'binding.js',
      'lib/native.js',
      'lib/sentry.js',
      'lib/options.js',
      'prebuilds/memsentry.linux-x64-gnu.node',
    ]) {
      assert.ok(files.includes(needed), `the tarball has ${needed}: ${files.join(', ')}`)
    }
    assert.ok(!files.some((f) => f.startsWith('target/') || f.startsWith('src/')), files.join(', '))
    const tarball = path.join(packDir, info.filename)
    assert.ok(existsSync(tarball), tarball)

    await run('npm', ['init', '-y'], appDir, 30_000)
    await run('npm', ['install', tarball, 'koa@2', '--no-audit', '--no-fund'], appDir, 100_000)
    assert.ok(
      existsSync(
        path.join(appDir, 'node_modules', 'memsentry', 'prebuilds', 'memsentry.linux-x64-gnu.node'),
      ),
      'the addon binary is installed',
    )

    const cjs = await runNode(
      [
        '-e',
        `const { MemorySentry, snapshot, rss } = require('memsentry')
      const Koa = require('koa')
      const { memoryLogger } = require('memsentry/koa')
      const app = new Koa()
      const sentry = new MemorySentry({ intervalMs: 10 })
      const reports = []
      app.use(memoryLogger({ sentry, every: 1, log: (r) => reports.push(r) }))
      app.use((ctx) => { ctx.body = { rss: rss() } })
      const server = app.listen(0, async () => {
        const res = await fetch('http://127.0.0.1:' + server.address().port + '/')
        const body = await res.json()
        const deadline = Date.now() + 5000
        while (sentry.latest === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
        console.log(JSON.stringify({ rss: rss(), http: body.rss, latest: sentry.latest && sentry.latest.rss, pss: snapshot({ smaps: true }).pss, reports: reports.map((r) => r.requests) }))
        await sentry.close()
        server.close()
      })`,
      ],
      { cwd: appDir, timeoutMs: 30_000 },
    )
    assert.equal(cjs.code, 0, describe(cjs))
    const fromRequire = JSON.parse(cjs.stdout.trim())
    assert.ok(fromRequire.rss > 0, describe(cjs))
    assert.ok(fromRequire.http > 0, describe(cjs))
    assert.ok(fromRequire.latest > 0, describe(cjs))
    assert.ok(fromRequire.pss > 0, describe(cjs))
    assert.deepEqual(
      fromRequire.reports,
      [1],
      `memsentry/koa resolved and logged: ${describe(cjs)}`,
    )

    const esm = await runNode(
      [
        '--input-type=module',
        '-e',
        `import { rss, MemorySentry, snapshot } from 'memsentry'
      import memsentry from 'memsentry'
      const s = new MemorySentry({ intervalMs: 10 })
      await s.close()
      console.log(JSON.stringify({ rss: rss(), same: memsentry.rss === rss, snap: snapshot().rss, closed: s.closed }))`,
      ],
      { cwd: appDir, timeoutMs: 30_000 },
    )
    assert.equal(esm.code, 0, describe(esm))
    const fromImport = JSON.parse(esm.stdout.trim())
    assert.ok(fromImport.rss > 0, describe(esm))
    assert.ok(fromImport.snap > 0, describe(esm))
    assert.equal(fromImport.same, true)
    assert.equal(fromImport.closed, true)

    // Loaded from the installed copy, not from the checkout.
    const where = await runNode(['-p', "require.resolve('memsentry')"], { cwd: appDir })
    assert.equal(where.stdout.trim(), path.join(appDir, 'node_modules', 'memsentry', 'index.js'))
  },
)
