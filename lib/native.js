'use strict'

// Loads the native addon for this platform, or fails with an error a person can act on.
// memsentry reads Linux procfs and ships four binaries in prebuilds/: linux x64 and arm64, each
// for glibc (2.28 and newer) and for musl (Alpine).

const fs = require('node:fs')
const path = require('node:path')

const SHIPPED = 'linux-x64-gnu, linux-arm64-gnu, linux-x64-musl, linux-arm64-musl'
const GLIBC_FLOOR = [2, 28]

function unsupported(what) {
  const err = new Error(
    `memsentry reads Linux procfs and ships native addons for ${SHIPPED} ` +
      `(glibc ${GLIBC_FLOOR.join('.')} or newer, or musl); this is ${what}. ` +
      `Run it on 64-bit Linux, or load it conditionally (e.g. only when process.platform === 'linux').`,
  )
  err.code = 'ERR_MEMSENTRY_UNSUPPORTED_PLATFORM'
  return err
}

// The C library this process runs on, asked of Node itself: its report header carries
// glibcVersionRuntime (gnu_get_libc_version()) only when the process runs on glibc. This is
// what the addon will be linked against, unlike /usr/bin/ldd, which tells what the system has.
function libc() {
  const excluded = process.report.excludeNetwork
  process.report.excludeNetwork = true // the network section costs a lookup per interface
  try {
    const glibc = process.report.getReport().header.glibcVersionRuntime
    return glibc ? { name: 'gnu', version: glibc } : { name: 'musl' }
  } finally {
    process.report.excludeNetwork = excluded
  }
}

function olderThanFloor(version) {
  const [major, minor] = version.split('.').map(Number)
  return major < GLIBC_FLOOR[0] || (major === GLIBC_FLOOR[0] && minor < GLIBC_FLOOR[1])
}

function loadNative() {
  const { platform, arch } = process
  if (platform !== 'linux') throw unsupported(`platform '${platform}' (${arch})`)
  if (arch !== 'x64' && arch !== 'arm64') throw unsupported(`linux on arch '${arch}'`)
  const c = libc()
  if (c.name === 'gnu' && olderThanFloor(c.version)) {
    throw unsupported(`linux-${arch} with glibc ${c.version}`)
  }
  const file = `memsentry.linux-${arch}-${c.name}.node`
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
    const err = new Error(
      `memsentry: cannot load its native addon ${found ?? file}: ${cause.message}. ` +
        `Reinstall the package; from a git checkout, run npm install to build it.`,
    )
    err.cause = cause
    throw err
  }
}

// Throws at require time: `require('memsentry')` fails at once on an unsupported platform.
module.exports = loadNative()
