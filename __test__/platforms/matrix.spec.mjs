// The platform matrix (npm run test:platforms): the four shipped binaries are what they claim,
// and the packed tarball installs offline into a fresh Koa app and works under each runtime that
// scripts/fetch-runtimes.sh provides: Node 22, 24, 26 on x64 glibc; Node 24 on arm64 glibc, x64
// musl and arm64 musl (arm64 under qemu). Without prebuilds or runtimes the tests skip, unless
// MEMSENTRY_PLATFORMS=required (CI), where a missing piece fails.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { repoRoot } from '../helpers/child.mjs'

const required = process.env.MEMSENTRY_PLATFORMS === 'required'
const TARGETS = ['x64-gnu', 'arm64-gnu', 'x64-musl', 'arm64-musl']
const GLIBC_FLOOR = '2.28'
const KOA = 'koa@3'
const prebuilt = (t) => path.join(repoRoot, 'prebuilds', `memsentry.linux-${t}.node`)
const haveAll = TARGETS.every((t) => fs.existsSync(prebuilt(t)))
const skipBuilds = haveAll || required ? false : 'no prebuilds/: run npm run build:prebuilds'

// Set by npm run test:platforms to the folder scripts/fetch-runtimes.sh fills.
const runtimesBin = process.env.MEMSENTRY_RUNTIMES_BIN
const RUNTIMES = [
  'node-x64-gnu-22',
  'node-x64-gnu-24',
  'node-x64-gnu-26',
  'node-arm64-gnu-24',
  'node-x64-musl-24',
  'node-arm64-musl-24',
]

const versionKey = (v) => v.split('.').map(Number)
const newer = (a, b) => {
  const [x, y] = [versionKey(a), versionKey(b)]
  return x[0] !== y[0] ? x[0] > y[0] : x[1] > y[1]
}

for (const t of TARGETS) {
  test(
    `prebuilds/memsentry.linux-${t}.node: right machine, right libc, exports the module`,
    { skip: skipBuilds },
    () => {
      const file = prebuilt(t)
      const header = execFileSync('readelf', ['-h', file], { encoding: 'utf8' })
      assert.match(header, t.startsWith('x64') ? /X86-64/ : /AArch64/)
      // Host objdump reads either machine's dynamic symbols.
      const symbols = execFileSync('objdump', ['-T', file], { encoding: 'utf8' })
      assert.match(symbols, /\bnapi_register_module_v1\b/)
      const glibc = [...new Set(symbols.match(/GLIBC_[0-9.]+/g) ?? [])].map((s) => s.slice(6))
      const needed = execFileSync('readelf', ['-d', file], { encoding: 'utf8' })
      if (t.endsWith('gnu')) {
        const floor = glibc.reduce((a, b) => (newer(b, a) ? b : a), '0.0')
        assert.ok(!newer(floor, GLIBC_FLOOR), `${t} needs GLIBC_${floor}, above ${GLIBC_FLOOR}`)
        assert.match(needed, /libc\.so\.6/)
      } else {
        assert.deepEqual(glibc, [], `${t} has no glibc symbol versions`)
        assert.match(needed, /\[libc\.so\]/)
      }
      if (t.startsWith('arm64')) {
        // arm64 kernels run with 4, 16 or 64 KiB pages (RHEL's and Ampere's 64 KiB, Asahi's
        // 16 KiB): each segment must map at a 64 KiB boundary, or dlopen fails there. The qemu
        // runs below have 4 KiB pages and would not tell.
        const loads = execFileSync('readelf', ['-lW', file], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => /^\s*LOAD\s/.test(l))
          .map((l) => l.trim().split(/\s+/))
        assert.ok(loads.length > 0, `${t}: no LOAD segment`)
        for (const [, offset, vaddr, , , , ...rest] of loads) {
          const align = Number(rest.at(-1))
          assert.ok(align >= 0x10000, `${t}: a LOAD segment aligned to ${rest.at(-1)}`)
          assert.equal((Number(vaddr) - Number(offset)) % 0x10000, 0, `${t}: ${vaddr} at ${offset}`)
        }
      }
    },
  )
}

let packDir
let tarball
before(() => {
  if (!haveAll) return
  packDir = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-matrix-'))
  // --ignore-scripts: 'prepare' would rebuild the checkout's own addon, which is not shipped.
  const packed = execFileSync(
    'npm',
    ['pack', '--pack-destination', packDir, '--ignore-scripts', '--json'],
    { cwd: repoRoot, encoding: 'utf8' },
  )
  const [info] = JSON.parse(packed)
  tarball = path.join(packDir, info.filename)
  const files = info.files.map((f) => f.path)
  for (const t of TARGETS)
    assert.ok(files.includes(`prebuilds/memsentry.linux-${t}.node`), files.join(', '))
  assert.ok(
    !files.some((f) => /^memsentry\..*\.node$/.test(f)),
    `no checkout build: ${files.join(', ')}`,
  )
  // One install that may use the registry fills npm's cache with Koa's and uplot's metadata, so
  // that each platform's own install below runs with --offline.
  const warm = path.join(packDir, 'warm')
  fs.mkdirSync(warm)
  fs.writeFileSync(path.join(warm, 'package.json'), '{ "name": "warm", "private": true }\n')
  execFileSync(
    'npm',
    ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball, KOA],
    {
      cwd: warm,
      stdio: 'ignore',
    },
  )
})
after(() => {
  if (packDir) fs.rmSync(packDir, { recursive: true, force: true })
})

// npm's own CLI, run by the runtime under test: the install happens on that platform.
const npmCli = path.join(
  path.dirname(
    fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim()),
  ),
  'npm-cli.js',
)

function run(command, args, { cwd, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let lineAt = null
    child.stdout.on('data', (c) => {
      stdout += c
      if (lineAt === null && stdout.includes('\n')) lineAt = performance.now()
    })
    child.stderr.on('data', (c) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const ended = performance.now()
      resolve({
        code,
        signal,
        stdout,
        stderr,
        ms: ended - started,
        exitMs: lineAt && ended - lineAt,
      })
    })
  })
}
const show = (r) => `exit ${r.code} ${r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`

for (const name of RUNTIMES) {
  const launcher = runtimesBin && path.join(runtimesBin, name)
  const [, arch, libc] = name.split('-')
  const emulated = arch === 'arm64'
  const missing = !haveAll
    ? 'no prebuilds/: run npm run build:prebuilds'
    : !launcher || !fs.existsSync(launcher)
      ? `no runtime ${name}: run npm run test:platforms`
      : false
  const skip = required ? false : missing
  test(
    `${name}: npm install of the tarball offline into a Koa app; the smoke run`,
    { skip, timeout: 600_000 },
    async (t) => {
      const app = fs.mkdtempSync(path.join(os.tmpdir(), `memsentry-${name}-`))
      t.after(() => fs.rmSync(app, { recursive: true, force: true }))
      fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "app", "private": true }\n')
      const install = await run(
        launcher,
        [
          npmCli,
          'install',
          '--offline',
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          tarball,
          KOA,
        ],
        { cwd: app, timeoutMs: 400_000 },
      )
      assert.equal(install.code, 0, show(install))
      fs.copyFileSync(
        new URL('../fixtures/platforms/smoke.js', import.meta.url),
        path.join(app, 'smoke.js'),
      )

      const r = await run(launcher, ['smoke.js'], { cwd: app, timeoutMs: 180_000 })
      t.diagnostic(
        `install ${(install.ms / 1000).toFixed(1)} s, smoke ${(r.ms / 1000).toFixed(1)} s`,
      )
      assert.equal(r.code, 0, show(r))
      const out = JSON.parse(r.stdout.trim().split('\n').pop())

      assert.equal(
        out.addon,
        path.join(
          fs.realpathSync(app),
          'node_modules',
          'memsentry',
          'prebuilds',
          `memsentry.linux-${arch}-${libc}.node`,
        ),
      )
      assert.match(out.panic, /deliberate panic/)
      // snapshot() lies between two reads of /proc/self/status around it (a little slack for
      // pages touched in between), and names this process.
      assert.equal(out.snapshot.pid, out.proc.pid)
      const slack = 4 * 1024 * 1024
      for (const key of ['rss', 'rssAnon', 'vsz']) {
        const lo = Math.min(out.proc.before[key], out.proc.after[key]) - slack
        const hi = Math.max(out.proc.before[key], out.proc.after[key]) + slack
        assert.ok(
          out.snapshot[key] >= lo && out.snapshot[key] <= hi,
          `${key} ${out.snapshot[key]} in ${lo}..${hi}`,
        )
      }
      // hwm and rss come from two files read a moment apart: the same slack.
      const { hwm, rss } = out.snapshot
      assert.ok(hwm >= rss - slack && hwm <= out.proc.after.hwm + slack, JSON.stringify(out))
      assert.equal(out.threshold.direction, 'up')
      assert.ok(out.threshold.value > out.threshold.above, JSON.stringify(out.threshold))
      assert.deepEqual(
        out.child.events.map((e) => e.type),
        ['spawn', 'exit'],
        JSON.stringify(out.child),
      )
      assert.equal(out.child.events[0].comm, 'sleep')
      assert.equal(out.http.length, 2)
      assert.ok(out.http.every((v) => v > 0))
      assert.deepEqual(out.koaReports, [2], 'memsentry/koa logged one batch of two requests')
      assert.ok(out.ticks >= 3)
      assert.deepEqual(out.closed, { closed: true, ticksAfter: 0 })
      assert.equal(typeof out.workerExit, 'number')
      // A sentry left running does not hold the process: it exits as soon as main() is done.
      assert.ok(
        r.exitMs < (emulated ? 5000 : 1000),
        `exited ${r.exitMs.toFixed(0)} ms after its last line`,
      )
    },
  )
}
