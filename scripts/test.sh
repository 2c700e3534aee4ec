#!/usr/bin/env bash
# The test command: install dependencies, configure, build (Release) and run the whole suite with ctest
# on both LibTorch builds:
#   1. build/        Debian's LibTorch 1.13 (CPU), the fresh-machine path of the README;
#   2. build-torch2/ LibTorch 2.x, CUDA and NCCL from the pinned PyTorch wheel (scripts/setup_venv.sh,
#                    cached), the GPU user's path: CUDA and NCCL code compiled and linked, the suite run
#                    on this machine's CPU.
# Usage: scripts/test.sh [ctest args...]
#   env SKD_BUILD_DIR (default build), SKD_TORCH2_BUILD_DIR (default build-torch2),
#       SKD_TORCH2=0 to skip the second build
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
t_setup=$(date +%s)
BUILD_DIR="${SKD_BUILD_DIR:-build}"
bash scripts/build.sh "$BUILD_DIR"
# The project's Python environment (torch 2.x, timm, onnxruntime): the wheel build below and the ONNX
# parity tests of both builds use it. Cached: a few GB once, seconds afterwards.
bash scripts/setup_venv.sh >/dev/null
# The test fixtures the repository does not carry (timm's DeiT-Ti, PIL's eval crops), generated into
# tests/fixtures from pinned packages; cached like the environment.
bash tests/fixtures/make_fixtures.sh
t_build=$(date +%s)
# OpenMP threads that spin while another test holds the core make CPU tests crawl; tests run two at
# a time, each with two threads, so let waiting threads sleep.
export OMP_WAIT_POLICY=PASSIVE
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
t_test=$(date +%s)
echo "test.sh: [LibTorch 1.13] setup $((t_setup - start)) s, build + Python environment + fixtures $((t_build - t_setup)) s, tests $((t_test - t_build)) s"
if [ "${SKD_TORCH2:-1}" = 0 ]; then exit 0; fi

TORCH2_DIR="${SKD_TORCH2_BUILD_DIR:-build-torch2}"
t_venv=$(date +%s)
bash scripts/build_torch2.sh "$TORCH2_DIR"
t_build2=$(date +%s)
ctest --test-dir "$TORCH2_DIR" --output-on-failure -j "$(nproc)" "$@"
t_test2=$(date +%s)
echo "test.sh: [LibTorch 2.x wheel] build $((t_build2 - t_venv)) s, tests $((t_test2 - t_build2)) s"
