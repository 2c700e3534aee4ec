#!/usr/bin/env bash
# The demo's last step: exports the sub-network at n/12 of the MACs of a super-network to ONNX
# (skd-export --macs-ratio) and, where onnxruntime is installed, checks it against the C++ forward
# (--verify: parity line with the max |logit diff|). Where the runtimes environment exists
# (scripts/setup_venv.sh --runtimes --cached; $SKD_RUNTIMES_VENV) it also writes the int8 graph of the
# same sub-network (skd-export --int8, calibrated on 512 training images of $DATA) and prints the
# fp32 and int8 top-1 on the test images, both measured in onnxruntime.
# The Python: the runtimes environment, else the project's environment if it was already created
# (scripts/setup_venv.sh --cached; $SKD_VENV), else python3 if it has onnxruntime; without any the
# model is exported unchecked and the way to install onnxruntime is printed (the demo never downloads
# an environment by itself).
# Usage: scripts/demo_export.sh SUPERNET OUT.onnx [n, default 4] [--threads N]
#        env SKD_BIN: the apps folder (default build/apps); DATA: the int8 step's data (fashion-mnist)
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${SKD_BIN:-$SRC/build/apps}"
SUPERNET="${1:?usage: demo_export.sh SUPERNET OUT.onnx [n]}"
OUT="${2:?usage: demo_export.sh SUPERNET OUT.onnx [n]}"
N="${3:-4}"
shift $(($# < 3 ? $# : 3))
ratio=$(python3 -c "print($N / 12)")
PY=""
RUNTIMES=""
if VENV=$(bash "$SRC/scripts/setup_venv.sh" --runtimes --cached 2>/dev/null); then
  PY="$VENV/bin/python"
  RUNTIMES=1
elif VENV=$(bash "$SRC/scripts/setup_venv.sh" --cached 2>/dev/null); then
  PY="$VENV/bin/python"
elif python3 -c 'import onnxruntime' 2>/dev/null; then
  PY=python3
fi
echo "== ONNX: skd-export of the $N/12 sub-network${PY:+, checked in onnxruntime}"
if [ -n "$PY" ]; then
  "$BIN/skd-export" --supernet "$SUPERNET" --macs-ratio "$ratio" --out "$OUT" --verify --python "$PY" "$@"
else
  "$BIN/skd-export" --supernet "$SUPERNET" --macs-ratio "$ratio" --out "$OUT" "$@"
  echo "onnxruntime parity check skipped: no onnxruntime here. To check: bash scripts/setup_venv.sh --runtimes (creates the" \
    "runtimes' Python environment, ~300 MB; or scripts/setup_venv.sh), then $BIN/skd-export --supernet $SUPERNET --macs-ratio $ratio" \
    "--out $OUT --verify --python <the folder it printed>/bin/python (or pip install onnxruntime)"
fi
if [ -n "$RUNTIMES" ]; then
  DATA="${DATA:-fashion-mnist}"
  INT8="${OUT%.onnx}.int8.onnx"
  echo "== int8: skd-export --int8 of the same sub-network, calibrated on 512 training images"
  "$BIN/skd-export" --supernet "$SUPERNET" --macs-ratio "$ratio" --out "$INT8" --int8 --calibration "$DATA" \
    --verify --python "$PY" "$@"
  top1() { "$BIN/skd-eval" --model "$1" --data "$DATA" --python "$PY" --log-level warn "${@:2}" | sed -n 's/^top-1 \([0-9.]*%\).*/\1/p'; }
  echo "$N/12 sub-network on the test images, in onnxruntime: fp32 top-1 $(top1 "$OUT" "$@"), int8 top-1 $(top1 "$INT8" "$@")"
else
  echo "int8 step skipped: no runtimes environment (bash scripts/setup_venv.sh --runtimes makes it, ~300 MB)"
fi
