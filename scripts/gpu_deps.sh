#!/usr/bin/env bash
# Prepares .gpu-deps/ (git-ignored) for scripts/gpu_check.sh: the C++ dependencies that a GPU machine
# with PyTorch but without Debian's -dev packages lacks, copied from this machine's Debian packages
# (after scripts/setup.sh): headers of nlohmann-json, CLI11, spdlog, fmt, GoogleTest and zlib, the
# spdlog/fmt/gtest/zlib libraries and their CMake package files (relocatable). About 5 MB, so it can
# travel with the working tree. LibTorch, CUDA and NCCL come from the GPU machine's own PyTorch;
# OpenCV and Gloo stay behind (that build decodes no image folders and uses NCCL).
set -euo pipefail
cd "$(dirname "$0")/.."
D=.gpu-deps
ML=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
rm -rf "$D"
mkdir -p "$D/include" "$D/lib/$ML/cmake" "$D/share/cmake"
for h in nlohmann CLI spdlog fmt gtest gmock zlib.h zconf.h; do
  [ -e "/usr/include/$h" ] || { echo "gpu_deps: /usr/include/$h missing: run scripts/setup.sh" >&2; exit 1; }
  cp -a "/usr/include/$h" "$D/include/"
done
for lib in libspdlog.so libfmt.so libgtest.a libgtest_main.a libgmock.a libgmock_main.a libz.so; do
  # the library, its versioned names and what they point to
  for f in /usr/lib/"$ML"/"$lib"*; do cp -a "$f" "$D/lib/$ML/"; done
  real=$(readlink -f "/usr/lib/$ML/$lib"); cp -a "$real" "$D/lib/$ML/" 2>/dev/null || true
done
# libz.so is a link to /lib/...: make it a plain copy of the library
[ -L "$D/lib/$ML/libz.so" ] && cp --remove-destination "$(readlink -f /usr/lib/$ML/libz.so)" "$D/lib/$ML/libz.so"
for pkg in spdlog fmt GTest; do cp -a "/usr/lib/$ML/cmake/$pkg" "$D/lib/$ML/cmake/"; done
cp -a /usr/share/cmake/nlohmann_json "$D/share/cmake/"
echo "gpu_deps: $(du -sh "$D" | cut -f1) in $D"
