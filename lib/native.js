'use strict'

// Loads the native addon, or fails with an error a person can act on. memsentry reads Linux
// procfs, and the package ships one binary: linux-x64 with glibc.

function unsupported(what) {
  const err = new Error(
    `memsentry reads Linux procfs and ships a native addon for linux-x64 (glibc); ` +
      `this is ${what}. Run it on Linux x86-64, or load it conditionally ` +
      `(e.g. only when process.platform === 'linux').`,
  )
  err.code = 'ERR_MEMSENTRY_UNSUPPORTED_PLATFORM'
  return err
}

function loadNative() {
  const { platform, arch } = process
  if (platform !== 'linux') throw unsupported(`platform '${platform}' (${arch})`)
  if (arch !== 'x64') throw unsupported(`linux on arch '${arch}'`)
  try {
    return require('../binding.js')
  } catch (cause) {
    const musl = !process.report?.getReport?.()?.header?.glibcVersionRuntime
    const err = musl
      ? unsupported('linux-x64 with musl libc (no glibc)')
      : new Error(
          `memsentry: cannot load its native addon (memsentry.linux-x64-gnu.node): ${cause.message}. ` +
            `Reinstall the package; from a git checkout, run npm install to build it.`,
        )
    err.cause = cause
    throw err
  }
}

// Throws at require time: `require('memsentry')` fails at once on an unsupported platform.
module.exports = loadNative()
