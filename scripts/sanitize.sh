#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer): a clang
# build of the libraries and the skd_test_* executables in build-san (LibTorch itself is not
# instrumented), then ctest without the e2e tests. Any sanitizer report fails its test.
# Usage: scripts/sanitize.sh [ctest args...]   (env SKD_SAN_BUILD_DIR, default build-san; SKD_JOBS)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/clang_san_build.sh
source scripts/clang_san_build.sh
start=$(date +%s)
san_configure
mapfile -t targets < <(cmake --build "$SAN_BUILD_DIR" --target help | grep -o 'skd_test_[a-z_]*' | sort -u)
if [ ${#targets[@]} -eq 0 ]; then
  echo "sanitize.sh: no skd_test_* targets in $SAN_BUILD_DIR" >&2
  exit 1
fi
cmake --build "$SAN_BUILD_DIR" -j "$SAN_JOBS" --target "${targets[@]}"
t_build=$(date +%s)
san_export_env
bash tests/fixtures/make_fixtures.sh
export OMP_WAIT_POLICY=PASSIVE
ctest --test-dir "$SAN_BUILD_DIR" -LE e2e --output-on-failure -j "$(nproc)" "$@"
t_test=$(date +%s)
echo "sanitize.sh: build $((t_build - start)) s, unit tests under ASan+UBSan $((t_test - t_build)) s"
