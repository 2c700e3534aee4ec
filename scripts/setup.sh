#!/usr/bin/env bash
# Installs every dependency of the SKD toolkit from Debian (12/bookworm) packages. Idempotent:
# when everything is already installed it does nothing (no apt-get update).
# Usage: scripts/setup.sh [--demo]
#   --demo  only what scripts/demo.sh builds and runs (the library, the apps, the data, the plot):
#           not the Python torch, clang and PIL that only the tests, sanitizers and fuzzing use
#           (the largest downloads of the full set)
set -euo pipefail

DEMO_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3
  libtorch-dev libopenblas0-pthread libgloo-dev
  libopencv-dev libjpeg-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev zlib1g-dev
  libgtest-dev
  # skd-export: the ONNX graph writer and checker (ONNX 1.12) and its protobuf
  libonnx-dev libprotobuf-dev
  dataset-fashion-mnist
  # the accuracy-vs-MACs plots of the demo and tools/experiments/piad_results.sh
  gnuplot-nox
)
TEST_PACKAGES=(
  # torchrun (the multi-process e2e test launches skd-train with it) and the Python loop of the
  # training benchmark; with torchvision, what tests/fixtures/make_fixtures.sh runs timm on
  python3-torch python3-torchvision
  # scripts/sanitize.sh and scripts/fuzz.sh: clang with the ASan/UBSan/libFuzzer runtimes, and PIL
  # for the image seeds of the fuzz corpus
  clang libclang-rt-14-dev python3-pil
)

case "${1:-}" in
  "") PACKAGES=("${DEMO_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  --demo) PACKAGES=("${DEMO_PACKAGES[@]}") ;;
  *) echo "usage: scripts/setup.sh [--demo]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
