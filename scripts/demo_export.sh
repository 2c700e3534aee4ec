#!/usr/bin/env bash
# The demo's last step: exports the sub-network at n/12 of the MACs of a super-network to ONNX
# (skd-export --macs-ratio) and, where onnxruntime is installed, checks it against the C++ forward
# (--verify: parity line with the max |logit diff|). The Python: the project's environment if it was
# already created (scripts/setup_venv.sh --cached; $SKD_VENV), else python3 if it has onnxruntime;
# without either the model is exported unchecked and the way to install onnxruntime is printed
# (the demo never downloads the few GB of that environment by itself).
# Usage: scripts/demo_export.sh SUPERNET OUT.onnx [n, default 4] [--threads N]
#        env SKD_BIN: the apps folder (default build/apps)
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${SKD_BIN:-$SRC/build/apps}"
SUPERNET="${1:?usage: demo_export.sh SUPERNET OUT.onnx [n]}"
OUT="${2:?usage: demo_export.sh SUPERNET OUT.onnx [n]}"
N="${3:-4}"
shift $(($# < 3 ? $# : 3))
ratio=$(python3 -c "print($N / 12)")
PY=""
if VENV=$(bash "$SRC/scripts/setup_venv.sh" --cached 2>/dev/null); then
  PY="$VENV/bin/python"
elif python3 -c 'import onnxruntime' 2>/dev/null; then
  PY=python3
fi
echo "== ONNX: skd-export of the $N/12 sub-network${PY:+, checked in onnxruntime}"
if [ -n "$PY" ]; then
  "$BIN/skd-export" --supernet "$SUPERNET" --macs-ratio "$ratio" --out "$OUT" --verify --python "$PY" "$@"
else
  "$BIN/skd-export" --supernet "$SUPERNET" --macs-ratio "$ratio" --out "$OUT" "$@"
  echo "onnxruntime parity check skipped: no onnxruntime here. To check: bash scripts/setup_venv.sh (creates the" \
    "project's Python environment, a few GB), then $BIN/skd-export --supernet $SUPERNET --macs-ratio $ratio" \
    "--out $OUT --verify --python <the folder it printed>/bin/python (or pip install onnxruntime)"
fi
