#!/usr/bin/env bash
# Fuzzes every target (or the ones named) for N seconds each, one after the other:
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]      # SECONDS defaults to 20
#
# First the deterministic never-panic tests (seeds, prefixes, random bytes, mutants, and every
# input in fuzz/regressions/), then the fuzzer proper:
#
# - libFuzzer through cargo-fuzz (installed with `cargo install` when missing), coverage-guided,
#   on a nightly toolchain when rustup has one, else on the default (stable) toolchain with
#   RUSTC_BOOTSTRAP=1, which is all cargo-fuzz needs without a sanitizer;
# - if cargo-fuzz cannot be installed or cannot build, the proptest fallback
#   (fuzz/harness/tests/proptest_fuzz.rs): random and mutated inputs, not coverage-guided.
#
# It says which one ran. Exits non-zero on a crash (or a failed build or test): libFuzzer leaves
# the input in fuzz/artifacts/<target>/, proptest a minimal one in fuzz/target/proptest/.
#
# Environment: MEMSENTRY_FUZZ_METHOD=auto|libfuzzer|proptest (default auto: libfuzzer, falling
# back to proptest), MEMSENTRY_FUZZ_SANITIZER=none|address (default none: the code is safe Rust;
# address needs nightly), MEMSENTRY_FUZZ_TOOLCHAIN=auto|default (default: never nightly),
# MEMSENTRY_FUZZ_JOBS (cargo build jobs, default 1: a shared 2-core box).
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-20}
shift || true
case "$secs" in '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;; esac
all=(statm stat status smaps_rollup meminfo kb_fields cgroup_discover cgroup_read children process_reader)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
method=${MEMSENTRY_FUZZ_METHOD:-auto}
sanitizer=${MEMSENTRY_FUZZ_SANITIZER:-none}
export CARGO_BUILD_JOBS=${MEMSENTRY_FUZZ_JOBS:-1}

# The harness writes its fixture trees under $TMPDIR: a private one, removed at the end, on
# tmpfs when there is one (the tree-backed targets run 10x faster there than on a disk's /tmp).
tmp_base=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ -w /dev/shm ] && tmp_base=/dev/shm
scratch=$(mktemp -d "$tmp_base/memsentry-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch

max_len() {
  case "$1" in
    children) echo 16384 ;;
    cgroup_discover | cgroup_read) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

echo "== never-panic tests (seeds, prefixes, random bytes, mutants, fuzz/regressions)"
cargo test --release -p memsentry-fuzz-harness --test never_panic

# ---------------------------------------------------------------------------------------------
# libFuzzer

toolchain=()
bootstrap=()
pick_toolchain() {
  local want=${MEMSENTRY_FUZZ_TOOLCHAIN:-auto}
  if [ "$want" != default ] && command -v rustup >/dev/null && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
    echo "toolchain: nightly ($(rustup run nightly rustc --version 2>/dev/null))"
  else
    [ "$sanitizer" = none ] || { echo "run.sh: -s $sanitizer needs a nightly toolchain, and there is none" >&2; return 1; }
    bootstrap=(env RUSTC_BOOTSTRAP=1)
    echo "toolchain: no nightly; the default one ($(rustc --version)) with RUSTC_BOOTSTRAP=1"
  fi
}

ensure_cargo_fuzz() {
  if cargo fuzz --version >/dev/null 2>&1; then
    return 0
  fi
  echo "== cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
}

run_libfuzzer() {
  ensure_cargo_fuzz || { echo "cargo-fuzz could not be installed" >&2; return 3; }
  pick_toolchain || return 3
  local only=()  # cargo fuzz build takes one target, or none for all of them
  [ ${#targets[@]} -eq 1 ] && only=("${targets[0]}")
  echo "== cargo fuzz build -s $sanitizer ($(cargo fuzz --version))"
  "${bootstrap[@]}" cargo "${toolchain[@]}" fuzz build -s "$sanitizer" "${only[@]}" ||
    { echo "cargo fuzz build failed" >&2; return 3; }
  local failed=() t log dir
  mkdir -p target/fuzz-logs
  for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="target/fuzz-logs/$t.log"
    dir=("corpus/$t")
    [ -d "seeds/$t" ] && dir+=("seeds/$t")
    echo "== $t: libFuzzer for ${secs}s (log: fuzz/$log)"
    if "${bootstrap[@]}" cargo "${toolchain[@]}" fuzz run -s "$sanitizer" "$t" "${dir[@]}" -- \
      -max_total_time="$secs" -max_len="$(max_len "$t")" -dict=dict/procfs.dict \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
      printf '%s: %s execs in %ss, corpus %s, 0 crashes\n' "$t" \
        "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)" "$secs" \
        "$(ls "corpus/$t" | wc -l)"
    else
      echo "$t: CRASH (or fuzzer error); from fuzz/$log:"
      grep -m1 -A3 'panicked at\|ERROR: libFuzzer\|^error' "$log" || tail -20 "$log"
      sed -n '/^Failing input:/,/^Minimize/p' "$log"
      failed+=("$t")
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "libFuzzer: crashes in ${failed[*]}"
    return 1
  fi
  echo "libFuzzer: ${#targets[@]} targets x ${secs}s, no crash"
}

# ---------------------------------------------------------------------------------------------
# proptest fallback

run_proptest() {
  echo "== proptest fallback: ${secs}s per target"
  MEMSENTRY_FUZZ_SECONDS=$secs MEMSENTRY_FUZZ_TARGETS=$(IFS=,; echo "${targets[*]}") \
    cargo test --release -p memsentry-fuzz-harness --test proptest_fuzz -- --nocapture
}

case "$method" in
  libfuzzer) run_libfuzzer ;;
  proptest) run_proptest ;;
  auto)
    set +e
    run_libfuzzer
    rc=$?
    set -e
    if [ $rc -eq 3 ]; then
      echo "run.sh: libFuzzer is not available here; FALLING BACK to the proptest harness (not coverage-guided)"
      run_proptest
    else
      exit $rc
    fi
    ;;
  *) echo "run.sh: MEMSENTRY_FUZZ_METHOD must be auto, libfuzzer or proptest" >&2; exit 2 ;;
esac
