#!/usr/bin/env bash
# The LibTorch 2.x build (the GPU user's path): LibTorch, CUDA and NCCL from the pinned PyTorch wheel
# in the cached environment of scripts/setup_venv.sh. CUDA code is compiled and linked against the
# CUDA toolkit (nvcc must be on PATH or in /usr/local/cuda); no GPU is needed to build, and the
# binaries run on the CPU where there is none. The e2e tests of this build launch with the wheel's
# torchrun.
# Usage: scripts/build_torch2.sh [build-dir] [extra cmake args...]      (default build-torch2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build-torch2}"
shift || true
VENV=$(bash scripts/setup_venv.sh)
TORCH_DIR=$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
# The wheel's CMake files look for the CUDA toolkit (nvcc) whenever LibTorch has CUDA. No .cu file is
# compiled here; one architecture keeps CMake's CUDA checks short.
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
# libtorch and libc10 pinned to the wheel's files: the wheel's TorchConfig.cmake looks them up with
# find_library, which searches the system folders first and would pick Debian's LibTorch 1.13
# (libtorch-dev) where it is installed; a binary that then needs libc10.so.1.13 next to the wheel's
# libtorch_cpu.so aborts at start (seen with a test executable that uses no c10 symbol itself).
bash scripts/build.sh "$BUILD_DIR" \
  -DCMAKE_PREFIX_PATH="$TORCH_DIR/share/cmake" \
  -DTORCH_LIBRARY="$TORCH_DIR/lib/libtorch.so" \
  -Dc10_LIBRARY="$TORCH_DIR/lib/libc10.so" \
  -DSKD_WITH_NCCL=ON \
  -DSKD_TORCHRUN="$VENV/bin/torchrun" \
  -DSKD_PYTHON="$VENV/bin/python" \
  "$@"
