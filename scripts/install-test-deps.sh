#!/usr/bin/env bash
# npm test's pretest: the specs compare with pidstat (sysstat), scrape with a real Prometheus
# and render the report in Chromium, all from Debian. Installs the missing ones as root with apt;
# otherwise stops at once with the one command to run.
set -euo pipefail

need=()
command -v pidstat >/dev/null || need+=(sysstat)
command -v prometheus >/dev/null || need+=(prometheus)
[ -x "${MEMSENTRY_CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends ${need[*]}"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "memsentry's tests need ${need[*]}. Run as root, then npm test again:" >&2
  echo "  $cmd" >&2
  exit 1
fi
echo "pretest: $cmd"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${need[@]}" >/dev/null
