// Fault injection with the real kernel: a /proc mounted hidepid=2, and a file the sampler may
// not read (EACCES). Both need root to set up (mount, setpriv to drop to nobody); CI runs as root.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('..', import.meta.url))
const isRoot = process.getuid() === 0
const skip = isRoot ? false : 'needs root (mount, setpriv); CI runs as root'

// nobody cannot read a checkout in a private folder (a home directory is 0700), so the child
// runs a copy of the package and its fixture, laid out as in the checkout, in a folder it can read.
function stagePackage(dir) {
  const files = ['index.js', 'binding.js', 'lib', 'prebuilds', 'package.json', 'fixtures/faults']
  for (const f of fs.readdirSync(repo)) if (/^memsentry\..*\.node$/.test(f)) files.push(f)
  for (const f of files) {
    const from = path.join(repo, f.startsWith('fixtures') ? '__test__' : '', f)
    const to = path.join(dir, f.startsWith('fixtures') ? '__test__' : '', f)
    if (fs.existsSync(from)) fs.cpSync(from, to, { recursive: true })
  }
  execFileSync('chmod', ['-R', 'a+rX', dir])
  return path.join(dir, '__test__', 'fixtures', 'faults', 'sample-as-user.js')
}

let script
function runAsNobody(procRoot) {
  const r = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script, procRoot],
    { encoding: 'utf8', timeout: 30_000 },
  )
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal}\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

let tmp
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'memsentry-faults-'))
  fs.chmodSync(tmp, 0o755)
  script = stagePackage(path.join(tmp, 'package'))
})
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})

test(
  'a /proc mounted hidepid=2: own figures and own children read, others invisible, no error',
  { skip },
  (t) => {
    const mnt = path.join(tmp, 'proc-hidepid')
    fs.mkdirSync(mnt)
    execFileSync('mount', ['-t', 'proc', '-o', 'hidepid=2', 'proc', mnt])
    t.after(() => spawnSync('umount', [mnt]))

    const seen = runAsNobody(mnt)
    assert.equal(seen.uid, 65534)
    assert.equal(seen.pid1Visible, false, 'hidepid=2 hides root-owned pid 1 from nobody')
    assert.ok(seen.rss > 0 && seen.rssAnon > 0 && seen.threads > 0, JSON.stringify(seen))
    assert.ok(
      seen.children.includes(seen.childPid),
      `its own child is seen: ${JSON.stringify(seen)}`,
    )
    assert.deepEqual(seen.errors, [], 'processes hidden by hidepid are not errors')
    assert.ok(seen.ticks >= 5, `sampling went on: ${seen.ticks} ticks`)
  },
)

test(
  'an unreadable status (EACCES): its fields are null, one error, sampling goes on',
  { skip },
  () => {
    const root = path.join(tmp, 'proc-eacces')
    const self = path.join(root, 'self')
    fs.mkdirSync(self, { recursive: true })
    fs.chmodSync(root, 0o755)
    fs.chmodSync(self, 0o755)
    // procfs files report size 0, so copyFileSync would copy nothing: read and write them.
    const copy = (from, to) => fs.writeFileSync(to, fs.readFileSync(from))
    copy('/proc/meminfo', path.join(root, 'meminfo'))
    for (const f of ['stat', 'statm', 'status']) copy(`/proc/self/${f}`, path.join(self, f))
    for (const f of ['meminfo', 'self/stat', 'self/statm']) fs.chmodSync(path.join(root, f), 0o644)
    fs.chmodSync(path.join(self, 'status'), 0o000)

    const seen = runAsNobody(root)
    const statusErrors = seen.errors.filter((e) => e.path.endsWith('/self/status'))
    assert.deepEqual(
      statusErrors.map((e) => e.code),
      ['EACCES'],
      `one EACCES for ${seen.ticks} ticks: ${JSON.stringify(seen.errors)}`,
    )
    assert.equal(seen.rssAnon, null, 'the status fields are null')
    assert.ok(seen.rss > 0, `rss still comes from statm: ${JSON.stringify(seen)}`)
    assert.ok(seen.threads > 0, 'stat still read')
    assert.ok(seen.ticks >= 5, `sampling went on: ${seen.ticks} ticks`)
  },
)
