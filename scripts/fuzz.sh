#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, in the same clang ASan+UBSan folder as sanitize.sh)
# and runs each for a bounded time from a seed corpus made by tests/fuzz/make_corpus.py. Prints the
# executions per target and exits non-zero on any finding: a crash, a sanitizer report, an
# unexpected exception type, a slow input (-timeout), or memory above the limits (-rss_limit_mb,
# -malloc_limit_mb). Findings are saved under $SKD_SAN_BUILD_DIR/fuzz/findings/<target>/.
# Usage: scripts/fuzz.sh [seconds per target] [target...]
#   (env SKD_FUZZ_SECONDS, default 30; SKD_SAN_BUILD_DIR, default build-san; SKD_JOBS)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/clang_san_build.sh
source scripts/clang_san_build.sh
ALL_TARGETS=(safetensors pth pickle idx manifest mask_table image json config latency_table)
seconds="${1:-${SKD_FUZZ_SECONDS:-30}}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${ALL_TARGETS[@]}"); fi

start=$(date +%s)
san_configure
cmake --build "$SAN_BUILD_DIR" -j "$SAN_JOBS" --target "${targets[@]/%/_fuzz}"
work="$SAN_BUILD_DIR/fuzz"
rm -rf "$work/seeds"
"${PYTHON:-/usr/bin/python3}" tests/fuzz/make_corpus.py "$work/seeds"
t_build=$(date +%s)

san_export_env
failed=()
for t in "${targets[@]}"; do
  # The corpus grows across runs in the build folder; the seeds are remade every time.
  mkdir -p "$work/corpus/$t" "$work/findings/$t"
  log="$work/$t.log"
  rc=0
  "$SAN_BUILD_DIR/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$work/findings/$t/" \
    "$work/corpus/$t" "$work/seeds/$t" >"$log" 2>&1 || rc=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  echo "fuzz: $t: ${execs:-?} executions in ${seconds} s (exit $rc)"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    tail -n 60 "$log"
  fi
done
t_fuzz=$(date +%s)
echo "fuzz.sh: build + corpus $((t_build - start)) s, fuzzing $((t_fuzz - t_build)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]} (inputs under $work/findings/)" >&2
  exit 1
fi
