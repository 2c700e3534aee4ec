#!/usr/bin/env bash
# ONNX deployment benchmark: for sub-networks at n/12 of a super-network's MACs, the forward latency
# of the exported ONNX graph in onnxruntime (CPU) next to skd-eval --latency of the same artifact,
# same threads, same batch sizes, same warmup/repeat/median rule (tools/bench/onnx_latency.py).
#   1. skd-extract --macs-ratio n/12 (the super-network's mask table)
#   2. skd-eval --latency B --threads T on the artifact
#   3. skd-export --verify (parity with the C++ forward, 1e-4) and onnx_latency.py on the .onnx
# Usage: tools/bench/onnx_latency.sh --supernet FILE [--mask-table FILE] [--budgets "2 4 12"]
#          [--batches 1,8] [--threads N] [--repeats 50] [--out results.json]
#   --supernet: e.g. the demo's runs/demo/piad/model.safetensors; with --mask-table any model plus an
#   official mask_table.json (as skd-extract --model M --mask-table T)
#   env SKD_BIN (default build/apps), SKD_PYTHON (default: the project's environment, setup_venv.sh --cached)
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
BIN="${SKD_BIN:-$SRC/build/apps}"
SUPERNET=""
TABLE=()
BUDGETS="2 4 12"
BATCHES=1,8
THREADS=$(nproc)
REPEATS=50
OUT=""
MASK_TABLE=""
skd_args --supernet SUPERNET --mask-table MASK_TABLE --budgets BUDGETS --batches BATCHES --threads THREADS \
  --repeats REPEATS --out OUT -- "$@"
[ -z "$MASK_TABLE" ] || TABLE=(--mask-table "$MASK_TABLE")
[ -n "$SUPERNET" ] || { echo "onnx_latency.sh: --supernet is required" >&2; exit 2; }
PY="${SKD_PYTHON:-}"
if [ -z "$PY" ]; then
  VENV=$(bash "$SRC/scripts/setup_venv.sh" --cached) || { echo "no onnxruntime: bash scripts/setup_venv.sh" >&2; exit 1; }
  PY="$VENV/bin/python"
fi
W="${BENCH_DIR:-/tmp/skd_onnx_bench}"
mkdir -p "$W"
export OMP_WAIT_POLICY=PASSIVE
T=(--threads "$THREADS")
echo "| budget | op code | MACs (paper) | params | batch | skd-eval ms, median (p10) | onnxruntime ms, median (p10) | ORT / LibTorch (medians) | parity |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
rm -f "$W/rows.jsonl"
for n in $BUDGETS; do
  ratio=$(python3 -c "print($n / 12)")
  "$BIN/skd-extract" --model "$SUPERNET" "${TABLE[@]}" --macs-ratio "$ratio" --out "$W/sub$n.safetensors" "${T[@]}" >"$W/extract$n.txt"
  code=$(sed -n 's/^op code \([0-9]*\) of.*/\1/p' "$W/extract$n.txt")
  "$BIN/skd-eval" --model "$W/sub$n.safetensors" --latency "$BATCHES" --latency-repeats "$REPEATS" --json "$W/eval$n.json" \
    "${T[@]}" --log-level warn >/dev/null
  "$BIN/skd-export" --model "$W/sub$n.safetensors" --out "$W/sub$n.onnx" --verify --python "$PY" "${T[@]}" >"$W/export$n.txt"
  parity=$(sed -n 's/^parity: max |logit diff| \([^ ]*\) .*/\1/p' "$W/export$n.txt")
  "$PY" "$SRC/tools/bench/onnx_latency.py" "$W/sub$n.onnx" --batches "$BATCHES" --threads "$THREADS" \
    --repeats "$REPEATS" >"$W/ort$n.jsonl"
  python3 - "$n" "$code" "$parity" "$W/eval$n.json" "$W/ort$n.jsonl" "$W/rows.jsonl" <<'PY'
import json, sys
n, code, parity, ev, ort, rows = sys.argv[1:]
e = json.load(open(ev))
o = {r["batch"]: r for r in map(json.loads, open(ort))}
with open(rows, "a") as out:
    for lat in e["latency"]:
        b = lat["batch_size"]
        r = {"budget": f"{n}:12", "op_code": int(code), "macs_paper": e["macs_paper"], "params": e["params"],
             "batch": b, "libtorch_ms": lat["median_ms"], "onnxruntime_ms": o[b]["median_ms"],
             "libtorch_p10_ms": lat["p10_ms"], "onnxruntime_p10_ms": o[b]["p10_ms"],
             "parity_max_abs_diff": float(parity), "threads": e["threads"], "onnxruntime": o[b]["onnxruntime"]}
        out.write(json.dumps(r) + "\n")
        print(f"| {r['budget']} | {code} | {r['macs_paper'] / 1e6:.2f} M | {r['params'] / 1e6:.3f} M | {b} | "
              f"{r['libtorch_ms']:.3f} ({r['libtorch_p10_ms']:.3f}) | {r['onnxruntime_ms']:.3f} ({r['onnxruntime_p10_ms']:.3f}) | "
              f"{r['onnxruntime_ms'] / r['libtorch_ms']:.2f} | "
              f"{r['parity_max_abs_diff']:.2g} |")
PY
done
[ -z "$OUT" ] || { cp "$W/rows.jsonl" "$OUT"; echo "rows (JSON lines): $OUT"; }
