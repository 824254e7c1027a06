#!/usr/bin/env bash
# Fuzzes the parsers of untrusted bytes with libFuzzer (cargo-fuzz): every
# target in fuzz/fuzz_targets, or those named, for SECONDS each (600 by
# default), JOBS at a time. Seeds come from fuzz/seeds/<target> (the golden
# files) and fuzz/regressions/<target>; the growing corpus lives outside the
# tree. Prints executions per target and writes them to $FUZZ_WORK/report.md.
# A crash stops that target and leaves its input in $FUZZ_WORK/artifacts.
#
#   scripts/fuzz.sh [-t SECONDS] [-j JOBS] [target ...]
#
# The test command does not run this (it replays every target briefly,
# tests/fuzz_replay.rs); the long runs are reported in docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECONDS_EACH=600
JOBS=1
while getopts "t:j:" opt; do
  case $opt in
    t) SECONDS_EACH=$OPTARG ;;
    j) JOBS=$OPTARG ;;
    *) echo "usage: $0 [-t seconds] [-j jobs] [target ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

. scripts/lib/deps.sh
ensure_libclang
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

FUZZ_WORK="${FUZZ_WORK:-/var/cache/tollgate/fuzz}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$FUZZ_WORK/target}"
mkdir -p "$FUZZ_WORK/corpus" "$FUZZ_WORK/artifacts" "$FUZZ_WORK/logs"

# RocksDB's C++ takes most of a cold build: link the archive the main build
# already compiled, when there is one (the fuzzed code is Rust; RocksDB is
# only the store under governance).
MAIN_TARGET="${CARGO_MAIN_TARGET_DIR:-/var/cache/tollgate/target}"
lib=$(ls -t "$MAIN_TARGET"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
if [ -n "$lib" ]; then
  export ROCKSDB_LIB_DIR="$(dirname "$lib")" ROCKSDB_STATIC=1
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=($(cd fuzz/fuzz_targets && ls *.rs | sed 's/\.rs$//'))
fi

# No sanitizer: the targets are safe Rust, and coverage is what finds bugs
# here; debug assertions (overflow checks) stay on.
(cd fuzz && cargo fuzz build --sanitizer none --debug-assertions)
bin_dir="$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release"

run_one() {
  local t=$1 corpus="$FUZZ_WORK/corpus/$1" log="$FUZZ_WORK/logs/$1.log"
  mkdir -p "$corpus" "$FUZZ_WORK/artifacts/$t"
  local extra=()
  [ -d "$ROOT/fuzz/regressions/$t" ] && extra+=("$ROOT/fuzz/regressions/$t")
  # The binaries built above, run directly: editing the tree while the
  # fuzzers run does not rebuild them under the remaining targets.
  if "$bin_dir/$t" "$corpus" "$ROOT/fuzz/seeds/$t" "${extra[@]}" \
      -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$FUZZ_WORK/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    echo "ok"
  else
    echo "FAILED"
  fi
}

status=0
report="$FUZZ_WORK/report.md"
{
  echo "| target | seconds | executions | exec/s | corpus | result |"
  echo "|---|---|---|---|---|---|"
} >"$report"
i=0
for t in "${targets[@]}"; do
  ( r=$(run_one "$t"); echo "$t $r" >"$FUZZ_WORK/logs/$t.result" ) &
  i=$((i + 1))
  if [ $((i % JOBS)) -eq 0 ]; then wait; fi
done
wait
for t in "${targets[@]}"; do
  log="$FUZZ_WORK/logs/$t.log"
  result=$(cut -d' ' -f2 <"$FUZZ_WORK/logs/$t.result")
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}' | tail -1 || true)
  corpus=$(ls "$FUZZ_WORK/corpus/$t" | wc -l)
  rate=$([ -n "${runs:-}" ] && [ -n "${secs:-}" ] && [ "$secs" -gt 0 ] && echo $((runs / secs)) || echo "-")
  echo "| $t | ${secs:--} | ${runs:--} | $rate | $corpus | $result |" >>"$report"
  [ "$result" = ok ] || status=1
done
cat "$report"
exit $status
