#!/usr/bin/env bash
# Configures and builds the toolkit (Release, Ninja when present, ccache when present).
# Usage: scripts/build.sh [build-dir] [extra cmake args...]
#   env SKD_JOBS: parallel jobs (default: cores); SKD_TARGETS: build only these targets (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
shift || true
GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
else
  cmake -S . -B "$BUILD_DIR" "$@" >/dev/null
fi
TARGETS=()
# shellcheck disable=SC2206  # a space-separated list of target names
if [ -n "${SKD_TARGETS:-}" ]; then TARGETS=(--target $SKD_TARGETS); fi
cmake --build "$BUILD_DIR" -j "${SKD_JOBS:-$(nproc)}" "${TARGETS[@]}"
