#!/usr/bin/env bash
# Configures and builds the toolkit (Release, Ninja when present, ccache when present).
# Usage: scripts/build.sh [build-dir] [extra cmake args...]   (env SKD_JOBS: parallel jobs)
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
cmake --build "$BUILD_DIR" -j "${SKD_JOBS:-$(nproc)}"
