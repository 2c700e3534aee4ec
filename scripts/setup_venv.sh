#!/usr/bin/env bash
# Creates (once) the Python environment of the LibTorch 2.x build: a virtual environment with the
# pinned torch 2.x CUDA wheel (its LibTorch, CMake files, NCCL and torchrun), timm and onnxruntime,
# from scripts/requirements-torch2.txt. Cached outside the checkout so that reruns and fresh clones
# on the same machine reuse it; a changed requirements file makes a new one.
# With --runtimes: the deployment runtimes' environment instead (scripts/requirements-runtimes.txt:
# onnxruntime with its quantization tools, onnx, OpenVINO, numpy; no torch, ~300 MB), the Python that
# skd-eval --runtime and skd-export --int8 drive.
# Usage: scripts/setup_venv.sh [--runtimes]            prints the environment's folder on its last line
#        scripts/setup_venv.sh [--runtimes] --cached   the same if it already exists, else exit 1
#   env SKD_VENV (SKD_RUNTIMES_VENV with --runtimes): the folder (default
#   ~/.cache/skd/venv-<hash of the requirements>, venv-rt-<hash> with --runtimes)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --runtimes ]; then
  shift
  REQ=scripts/requirements-runtimes.txt
  hash=$(sha256sum "$REQ" | cut -c1-12)
  VENV="${SKD_RUNTIMES_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/skd/venv-rt-$hash}"
  WHAT="the runtimes: onnxruntime, onnx, OpenVINO (~300 MB)"
  REPORT='import onnxruntime, openvino; print("onnxruntime", onnxruntime.__version__, "openvino", openvino.__version__)'
else
  REQ=scripts/requirements-torch2.txt
  hash=$(sha256sum "$REQ" | cut -c1-12)
  VENV="${SKD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/skd/venv-$hash}"
  WHAT="a few GB: the CUDA wheel and its libraries"
  REPORT='import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
fi
if [ -f "$VENV/.skd-complete" ]; then
  echo "setup_venv: cached environment $VENV" >&2
  echo "$VENV"
  exit 0
fi
if [ "${1:-}" = --cached ]; then
  echo "setup_venv: no environment at $VENV (bash scripts/setup_venv.sh $([ "$REQ" = scripts/requirements-runtimes.txt ] && echo "--runtimes ")creates it: $WHAT)" >&2
  exit 1
fi
# Any python3 >= 3.10 with venv works; Debian's needs python3-venv, so prefer the one on PATH.
PY=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import venv, ensurepip' 2>/dev/null; then PY=$cand; break; fi
done
if [ -z "$PY" ]; then
  SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  PY=/usr/bin/python3
fi
echo "setup_venv: creating $VENV with $($PY --version) ($WHAT)" >&2
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
start=$(date +%s)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir -r "$REQ" >&2
touch "$VENV/.skd-complete"
echo "setup_venv: installed in $(( $(date +%s) - start )) s: $("$VENV/bin/python" -c "$REPORT")" >&2
echo "$VENV"
