// @airbnb/node-memwatch, which eval/memwatch-rule.mjs reads memwatch-next's rule from, built on
// first use for the Node that runs the eval. It is a node-gyp addon, so it is no dev dependency:
// `npm install` in a checkout must not need Python, a C++ toolchain and Node's headers. Built once
// per Node ABI into a cache folder, against the running Node's own headers where its folder has
// them (the official builds do), so no download from nodejs.org is needed; when it cannot be built
// or loaded, the probe applies the same rule to perf_hooks' GC entries, and says so.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const PACKAGE = '@airbnb/node-memwatch'
const VERSION = '3.0.0'

/** The folder of a loadable build: { dir } for the probe, or { why } it cannot be had. */
export function memwatchAddon({ log = () => {} } = {}) {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  const prefix = path.join(cache, 'memsentry', `memwatch-${VERSION}-abi${process.versions.modules}`)
  const dir = path.join(prefix, 'node_modules', PACKAGE)
  if (!loads(dir)) {
    log(`building ${PACKAGE}@${VERSION} for Node ${process.version} into ${prefix}`)
    mkdirSync(prefix, { recursive: true })
    const nodeRoot = path.resolve(path.dirname(process.execPath), '..')
    const headers = existsSync(path.join(nodeRoot, 'include', 'node', 'node.h'))
    const built = spawnSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
      ].concat(`${PACKAGE}@${VERSION}`),
      {
        encoding: 'utf8',
        env: { ...process.env, ...(headers ? { npm_config_nodedir: nodeRoot } : {}) },
        timeout: 300_000,
      },
    )
    if (built.status !== 0) {
      const tail = `${built.stderr ?? ''}${built.error?.message ?? ''}`.trim().split('\n').slice(-3)
      return { why: `npm install ${PACKAGE} failed: ${tail.join(' | ')}` }
    }
    if (!loads(dir)) return { why: `${PACKAGE} built in ${prefix} does not load in this Node` }
  }
  return { dir }
}

/** Whether `dir` holds a build this Node loads (tried in a child: a bad addon may crash it). */
function loads(dir) {
  if (!existsSync(path.join(dir, 'package.json'))) return false
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(dir)})`], {
    stdio: 'ignore',
    timeout: 30_000,
  })
  return r.status === 0
}
