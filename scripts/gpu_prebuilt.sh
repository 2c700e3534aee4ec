#!/usr/bin/env bash
# Builds, on this CPU machine, exactly the binaries scripts/gpu_check.sh runs on a GPU machine, against
# the same PyTorch wheel the GPU machine has (torch 2.11, scripts/setup_venv.sh), and packs them with
# the libraries they need that a GPU machine's PyTorch does not bring into one folder to carry:
#   .gpu-prebuilt/bin/   skd_test_cuda, skd-bench-step (stripped)
#   .gpu-prebuilt/lib/   their shared libraries other than LibTorch, CUDA/NCCL (the wheel's) and the C
#                        and C++ runtimes (the GPU machine's own)
#   .gpu-prebuilt/BUILT_FROM   commit, date, torch
# and refreshes .gpu-deps (scripts/gpu_deps.sh), which gpu_check.sh builds with when the prebuilt
# binaries do not load there. Build configuration: no OpenCV (no image folders there), NCCL on, the
# benchmarks on, no apps. Both folders are git-ignored; the device tool carries them (≤ 64 MiB with
# the working tree).
# Usage: scripts/gpu_prebuilt.sh [dest]      env SKD_GPU_PREBUILT_BUILD (default build-gpu-prebuilt)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.gpu-prebuilt}"
BUILD="${SKD_GPU_PREBUILT_BUILD:-build-gpu-prebuilt}"
VENV=$(bash scripts/setup_venv.sh)
TORCH_DIR=$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
bash scripts/gpu_deps.sh >&2
start=$(date +%s)
SKD_TARGETS="skd_test_cuda skd-bench-step" bash scripts/build.sh "$BUILD" \
  -DCMAKE_PREFIX_PATH="$TORCH_DIR/share/cmake" \
  -DTORCH_LIBRARY="$TORCH_DIR/lib/libtorch.so" \
  -Dc10_LIBRARY="$TORCH_DIR/lib/libc10.so" \
  -DSKD_WITH_NCCL=ON -DSKD_WITH_OPENCV=OFF -DSKD_BUILD_BENCH=ON -DSKD_BUILD_APPS=OFF >&2
tmp="$DEST.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/lib"
cp "$BUILD/tests/skd_test_cuda" "$BUILD/tools/bench/skd-bench-step" "$tmp/bin/"
strip --strip-unneeded "$tmp"/bin/*
# What the GPU machine has: its PyTorch (torch/lib, the nvidia-* wheels beside it) and its system's C
# and C++ runtimes (a newer libstdc++ there serves binaries built with an older one; not the reverse).
for b in "$tmp"/bin/*; do
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  case "$path" in "$VENV"/*|"$TORCH_DIR"/*) continue ;; esac
  case "$name" in
    linux-vdso*|ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libutil.so*|libstdc++.so*|libgcc_s.so*) continue ;;
  esac
  cp -L "$path" "$tmp/lib/$name"
done
{ echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(c++ --version | head -1)"
  echo "against torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') (NCCL on, OpenCV off)"
} >"$tmp/BUILT_FROM"
rm -rf "$DEST"
mv "$tmp" "$DEST"
size=$(du -sm "$DEST" | cut -f1)
echo "gpu_prebuilt: $DEST ($size MiB: $(ls "$DEST/bin" | tr '\n' ' ')+ $(ls "$DEST/lib" | wc -l) libraries) in $(( $(date +%s) - start )) s" >&2
if [ "$size" -gt 48 ]; then
  echo "gpu_prebuilt: $DEST is $size MiB: with the working tree and .gpu-deps it would not fit the device tool's 64 MiB" >&2
  exit 1
fi
