#!/usr/bin/env bash
# The test command: install dependencies, configure, build, run the whole suite with ctest.
# Usage: scripts/test.sh [ctest args...]      (env SKD_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
t_setup=$(date +%s)
BUILD_DIR="${SKD_BUILD_DIR:-build}"
bash scripts/build.sh "$BUILD_DIR"
t_build=$(date +%s)
# OpenMP threads that spin while another test holds the core make CPU tests crawl; tests run two at
# a time, each with two threads, so let waiting threads sleep.
export OMP_WAIT_POLICY=PASSIVE
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
t_test=$(date +%s)
echo "test.sh: setup $((t_setup - start)) s, build $((t_build - t_setup)) s, tests $((t_test - t_build)) s"
