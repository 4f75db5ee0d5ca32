'use strict'

// Loads the native addon for this platform, or fails with an error a person can act on.
// memsentry reads Linux procfs and ships four binaries in prebuilds/: linux x64 and arm64, each
// for glibc (2.28 and newer) and for musl (Alpine).

const fs = require('node:fs')
const path = require('node:path')

const SHIPPED = 'linux-x64-gnu, linux-arm64-gnu, linux-x64-musl, linux-arm64-musl'
const GLIBC_FLOOR = [2, 28]
// Node 22, 24 and 26 are built for and tested; Node 20 is past its end of life (April 2026).
const NODE_FLOOR = 22
// What Node's permission model (--permission) must allow for memsentry to run.
const PERMISSION_FLAGS = '--allow-fs-read=/proc --allow-addons'

function unsupported(what) {
  const err = new Error(
    `memsentry reads Linux procfs and ships native addons for ${SHIPPED} ` +
      `(glibc ${GLIBC_FLOOR.join('.')} or newer, or musl); this is ${what}. ` +
      `Run it on 64-bit Linux, or load it conditionally (e.g. only when process.platform === 'linux').`,
  )
  err.code = 'ERR_MEMSENTRY_UNSUPPORTED_PLATFORM'
  return err
}

// The C library this process runs on, from what is mapped into it: musl's loader is
// ld-musl-<arch>.so.1 (Alpine) or <arch>-linux-musl/libc.so (Debian's musl package). This is the
// library the addon will be linked against, unlike /usr/bin/ldd, which tells what the system
// has. Reading /proc/self/maps costs about 0.2 ms; process.report.getReport(), which also knows,
// 7 to 40 ms.
function libc() {
  let maps
  try {
    maps = fs.readFileSync('/proc/self/maps', 'utf8')
  } catch (cause) {
    // No /proc mounted, or Node's permission model (--permission) without read access to it:
    // memsentry could not sample either.
    const err = new Error(
      `memsentry reads Linux procfs, and /proc/self/maps cannot be read here (${cause.code ?? cause.message}). ` +
        `Mount /proc, or with --permission allow reading it and native addons (${PERMISSION_FLAGS}).`,
    )
    err.code = 'ERR_MEMSENTRY_NO_PROCFS'
    err.cause = cause
    throw err
  }
  return /\/ld-musl-[^/\n]*$|-linux-musl\/[^/\n]*$/m.test(maps) ? 'musl' : 'gnu'
}

// Asked only once a load has failed: the glibc version, when it is below the floor (null when
// it is not, or cannot be told: the load's own error is reported then).
function glibcTooOld() {
  let version
  const excluded = process.report.excludeNetwork
  try {
    process.report.excludeNetwork = true // the network section costs a lookup per interface
    version = process.report.getReport().header.glibcVersionRuntime
  } catch {
    return null
  } finally {
    process.report.excludeNetwork = excluded
  }
  if (!version) return null
  const [major, minor] = version.split('.').map(Number)
  const old = major < GLIBC_FLOOR[0] || (major === GLIBC_FLOOR[0] && minor < GLIBC_FLOOR[1])
  return old ? version : null
}

function loadNative() {
  const major = Number(process.versions.node.split('.')[0])
  if (!(major >= NODE_FLOOR)) {
    const err = new Error(
      `memsentry needs Node ${NODE_FLOOR} or newer (22, 24 and 26 are tested); this is Node ` +
        `${process.versions.node}. Upgrade Node, or load memsentry only where it is supported.`,
    )
    err.code = 'ERR_MEMSENTRY_UNSUPPORTED_NODE'
    throw err
  }
  const { platform, arch } = process
  if (platform !== 'linux') throw unsupported(`platform '${platform}' (${arch})`)
  if (arch !== 'x64' && arch !== 'arm64') throw unsupported(`linux on arch '${arch}'`)
  const c = libc()
  const file = `memsentry.linux-${arch}-${c}.node`
  // A checkout's own build (npm install, npm run build) first, then the shipped prebuilds, then
  // napi-rs's generated loader, which finds a per-platform package (memsentry-linux-x64-gnu...)
  // when the package is published the napi-rs way.
  const candidates = [
    path.join(__dirname, '..', file),
    path.join(__dirname, '..', 'prebuilds', file),
  ]
  const found = candidates.find((f) => fs.existsSync(f))
  try {
    return require(found ?? '../binding.js')
  } catch (cause) {
    if (cause?.code === 'ERR_DLOPEN_DISABLED') {
      const err = new Error(
        process.permission
          ? `memsentry is a native addon, and Node's permission model forbids loading one here: ` +
              `run with ${PERMISSION_FLAGS}.`
          : `memsentry is a native addon, and this Node runs with --no-addons: run without it.`,
      )
      err.code = 'ERR_MEMSENTRY_NO_ADDONS'
      err.cause = cause
      throw err
    }
    const old = glibcTooOld()
    const err = old
      ? unsupported(`linux-${arch} with glibc ${old}`)
      : new Error(
          found
            ? `memsentry: cannot load its native addon ${found}: ${cause.message}. ` +
                `Reinstall the package; from a git checkout, run npm install to build it.`
            : `memsentry: no native addon ${file} (looked in ${candidates.join(', ')} and for ` +
                `the package memsentry-linux-${arch}-${c}). ` +
                `Reinstall the package from the registry or a packed tarball; in a git checkout, ` +
                `run npm install to build it (npm packs a git dependency without its build).`,
        )
    err.cause = cause
    throw err
  }
}

// Throws at require time: `require('memsentry')` fails at once on an unsupported platform.
module.exports = loadNative()
