#!/usr/bin/env bash
# Builds the binaries the package ships into prebuilds/: linux x64 and arm64, each for glibc
# (floor 2.28) and for musl, on an x86-64 Debian 12 machine from registry packages only (rustup
# cannot add targets here). Installs what it needs when missing: as root with apt it installs,
# otherwise it stops and prints the command to run.
#   scripts/build-prebuilds.sh                 all four
#   scripts/build-prebuilds.sh x64-gnu x64-musl   some
#   scripts/build-prebuilds.sh --check            fails unless all four are there (npm's prepack)
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(x64-gnu arm64-gnu x64-musl arm64-musl)
if [ "${1:-}" = --check ]; then
  for t in "${ALL[@]}"; do
    [ -f "prebuilds/memsentry.linux-$t.node" ] && continue
    echo "prebuilds/memsentry.linux-$t.node is missing: run npm run build:prebuilds before packing" >&2
    exit 1
  done
  exit 0
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

# Known-good versions: zig's glibc stubs give the 2.28 floor; Debian's rustc-web (1.96) has an
# arm64 std and the std sources that -Zbuild-std compiles for musl.
PIP_PACKAGES=(ziglang==0.17.1 cargo-zigbuild==0.24.1)
APT_PACKAGES=(rustc-web cargo-web rust-web-src libstd-rust-web-dev:arm64 python3-venv)
# Where pip installs them when the system Python is Debian's, which PEP 668 keeps pip out of.
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/memsentry-build/venv"
# cargo-zigbuild runs zig through `python3 -m ziglang`, and the targets below put /usr/bin first
# in PATH: it is told which Python has ziglang.
use_venv() { export PATH="$VENV/bin:$PATH" CARGO_ZIGBUILD_PYTHON_PATH="$VENV/bin/python3"; }
[ -x "$VENV/bin/cargo-zigbuild" ] && use_venv

missing_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing_apt+=("$p")
done
if [ ${#missing_apt[@]} -gt 0 ]; then
  cmd="dpkg --add-architecture arm64 && apt-get update && apt-get install -y --no-install-recommends ${missing_apt[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "build-prebuilds: missing Debian packages; run as root: $cmd" >&2
    exit 1
  fi
  echo "== $cmd"
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends "${missing_apt[@]}" >/dev/null
fi
if ! command -v cargo-zigbuild >/dev/null || ! python3 -c 'import ziglang' 2>/dev/null; then
  echo "== pip install ${PIP_PACKAGES[*]}"
  if ! python3 -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}" 2>/dev/null; then
    echo "== (an externally managed Python) a virtual environment at $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}"
    use_venv
  fi
fi

mkdir -p prebuilds
for t in "${targets[@]}"; do
  start=$SECONDS
  case $t in
    # The machine's own toolchain (rustup) for the host arch; zig links against glibc 2.28 stubs.
    x64-gnu) triple=x86_64-unknown-linux-gnu; env=(); args=(--target "$triple.2.28") ;;
    # Debian's rustc, which has an arm64 std; zig is the cross linker, with the same floor.
    arm64-gnu)
      triple=aarch64-unknown-linux-gnu
      env=(PATH="/usr/bin:$PATH")
      args=(--target "$triple.2.28")
      ;;
    # No musl std is packaged: build it from Debian's sources (RUSTC_BOOTSTRAP unlocks -Z on a
    # stable compiler). -crt-static, else musl targets link statically and drop the cdylib.
    x64-musl | arm64-musl)
      [ "$t" = x64-musl ] && triple=x86_64-unknown-linux-musl || triple=aarch64-unknown-linux-musl
      env=(PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C target-feature=-crt-static")
      args=(--target "$triple" -Zbuild-std=std,panic_abort)
      ;;
    *) echo "build-prebuilds: unknown target '$t' (x64-gnu arm64-gnu x64-musl arm64-musl)" >&2; exit 2 ;;
  esac
  echo "== $t: cargo zigbuild --release --lib ${args[*]}"
  env "${env[@]}" cargo zigbuild --quiet --release --lib "${args[@]}"
  cp "target/$triple/release/libmemsentry.so" "prebuilds/memsentry.linux-$t.node"
  echo "== $t: prebuilds/memsentry.linux-$t.node in $((SECONDS - start)) s"
done
