#!/usr/bin/env bash
# Shared by scripts/sanitize.sh and scripts/fuzz.sh (sourced, not run): one clang build folder
# instrumented with AddressSanitizer + UndefinedBehaviorSanitizer and libFuzzer coverage, used both
# for the unit tests under sanitizers and for the fuzz targets, so the library is compiled once.
# Env: SKD_SAN_BUILD_DIR (default build-san), SKD_JOBS (parallel jobs, default nproc).

SAN_BUILD_DIR="${SKD_SAN_BUILD_DIR:-build-san}"
SAN_JOBS="${SKD_JOBS:-$(nproc)}"

san_configure() {
  local gen=()
  if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
  # -O1 and line tables only: the heavy lifting is in the uninstrumented LibTorch, so more
  # optimisation buys little run time and costs compile time; line tables give symbolized reports.
  cmake -S . -B "$SAN_BUILD_DIR" "${gen[@]}" \
    -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
    -DSKD_SANITIZE=address,undefined \
    -DSKD_BUILD_FUZZ=ON \
    -DSKD_BUILD_APPS=OFF \
    -DSKD_BUILD_TESTS=ON >/dev/null
}

# Runtime options: stop at the first report, check leaks, use-after-return and init order. No
# suppressions: LibTorch, OpenCV and OpenBLAS are not instrumented and reported nothing here; add a
# narrow, commented suppression file only for a report inside them, never for the toolkit's code.
san_export_env() {
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
}
