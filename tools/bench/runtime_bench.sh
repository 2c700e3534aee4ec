#!/usr/bin/env bash
# Deployment-runtime benchmark (issue 26): for the sub-networks at n/12 of a super-network's MACs,
# top-1 on the eval set and forward latency in each runtime, all through the toolkit's own commands:
#   1. skd-extract --macs-ratio n:12; skd-export (fp32) and skd-export --int8 --calibration (train split)
#   2. top-1 (--data): LibTorch on the artifact, onnxruntime on the fp32 graph, onnxruntime on the int8 graph
#   3. latency (--latency at the batch sizes, --threads each of the thread counts): LibTorch eager,
#      onnxruntime fp32, OpenVINO fp32, onnxruntime int8, OpenVINO int8 (skd-eval --runtime)
#   4. table vs fresh timing: the onnxruntime latency table of the super-network (--table-threads,
#      batch sizes as above), skd-extract --latency at budgets between its codes, then a fresh
#      skd-eval --latency of the chosen sub-network's export; the two medians side by side
#   5. the LibTorch and OpenVINO tables at batch 1 too, and OUT/latency_runtimes.png: latency against the
#      op code per runtime, the int8 sub-networks as points, MACs on the right axis
#      (tools/experiments/plot_latency.py; needs gnuplot)
# One JSON object per measurement in OUT/rows.jsonl; tools/bench/runtime_table.py makes the tables.
# Usage: tools/bench/runtime_bench.sh --supernet FILE [--data fashion-mnist] [--budgets "2 3 4 6 8 12"]
#          [--batches 1,64] [--threads-list "1 2"] [--repeats 50] [--calibration-samples 512]
#          [--table-threads 1] [--out-dir DIR]
#   env SKD_BIN (default build/apps), SKD_PYTHON (default: the runtimes environment,
#   scripts/setup_venv.sh --runtimes --cached)
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
BIN="${SKD_BIN:-$SRC/build/apps}"
SUPERNET=""
DATA=fashion-mnist
BUDGETS="2 3 4 6 8 12"
BATCHES=1,64
THREADS_LIST="1 2"
REPEATS=50
SAMPLES=512
TABLE_THREADS=1
OUT_DIR=/tmp/skd_runtime_bench
skd_args --supernet SUPERNET --data DATA --budgets BUDGETS --batches BATCHES --threads-list THREADS_LIST \
  --repeats REPEATS --calibration-samples SAMPLES --table-threads TABLE_THREADS --out-dir OUT_DIR -- "$@"
[ -n "$SUPERNET" ] || skd_usage_error "--supernet is required"
if [ -z "${SKD_PYTHON:-}" ]; then
  VENV=$(bash "$SRC/scripts/setup_venv.sh" --runtimes --cached) || skd_usage_error "no runtimes: bash scripts/setup_venv.sh --runtimes"
  export SKD_PYTHON="$VENV/bin/python"
fi
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT_DIR"
ROWS="$OUT_DIR/rows.jsonl"
: >"$ROWS"
Q=(--log-level warn)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
row() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.update(json.loads(sys.argv[2])); print(json.dumps(d))' "$@" >>"$ROWS"; }
for n in $BUDGETS; do
  S="$OUT_DIR/sub$n"
  code=$("$BIN/skd-extract" --supernet "$SUPERNET" --macs-ratio "$n:12" --out "$S.safetensors" "${Q[@]}" |
    sed -n 's/^op code \([0-9]*\) of.*/\1/p')
  "$BIN/skd-export" --model "$S.safetensors" --out "$S.onnx" "${Q[@]}" >/dev/null
  start=$(date +%s.%N)
  "$BIN/skd-export" --model "$S.safetensors" --out "$S.int8.onnx" --int8 --calibration "$DATA" \
    --calibration-samples "$SAMPLES" --verify --threads 2 "${Q[@]}" >"$S.int8.txt"
  echo "budget $n/12: $(grep '^int8:' "$S.int8.txt") ($(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s)"
  for m in "libtorch $S.safetensors" "onnxruntime $S.onnx" "onnxruntime-int8 $S.int8.onnx" "openvino-int8 $S.int8.onnx"; do
    set -- $m
    rt=${1%-int8}
    "$BIN/skd-eval" --model "$2" --runtime "$rt" --data "$DATA" --threads 2 --json "$OUT_DIR/acc.json" "${Q[@]}" >/dev/null
    row "$OUT_DIR/acc.json" "{\"kind\": \"accuracy\", \"budget\": $n, \"code\": $code, \"variant\": \"$1\"}"
    echo "  top-1 $1: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["top1"])' "$OUT_DIR/acc.json")"
  done
  for t in $THREADS_LIST; do
    for m in "libtorch $S.safetensors" "onnxruntime $S.onnx" "openvino $S.onnx" "onnxruntime-int8 $S.int8.onnx" \
      "openvino-int8 $S.int8.onnx"; do
      set -- $m
      rt=${1%-int8}
      "$BIN/skd-eval" --model "$2" --runtime "$rt" --latency "$BATCHES" --latency-repeats "$REPEATS" --threads "$t" \
        --json "$OUT_DIR/lat.json" "${Q[@]}" >/dev/null
      row "$OUT_DIR/lat.json" "{\"kind\": \"latency\", \"budget\": $n, \"code\": $code, \"variant\": \"$1\"}"
    done
    echo "  latency measured at $t thread(s)"
  done
done
# The onnxruntime table of the super-network, and fresh timings of what it selects.
TABLE="$OUT_DIR/supernet.latency.onnxruntime.json"
start=$(date +%s.%N)
"$BIN/skd-eval" --model "$SUPERNET" --latency-table --runtime onnxruntime --batch-sizes "$BATCHES" \
  --latency-repeats "$REPEATS" --threads "$TABLE_THREADS" --out "$TABLE" "${Q[@]}" >/dev/null
echo "onnxruntime latency table: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"
for b in ${BATCHES//,/ }; do
  # budgets at the medians of the codes at 1/4, 1/2 and 3/4 of the table, plus 2 %
  for budget in $(python3 - "$TABLE" "$b" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); b = int(sys.argv[2]); col = t["batch_sizes"].index(b)
n = len(t["codes"])
print(" ".join(f"{t['codes'][k]['latency'][col]['median_ms'] * 1.02:.4f}ms" for k in (n // 4, n // 2, 3 * n // 4)))
PY
  ); do
    S="$OUT_DIR/lat_${b}_$budget"
    "$BIN/skd-export" --supernet "$SUPERNET" --latency "$budget" --batch "$b" --latency-table "$TABLE" \
      --runtime onnxruntime --out "$S.onnx" "${Q[@]}" >"$S.txt"
    "$BIN/skd-eval" --model "$S.onnx" --latency "$b" --latency-repeats "$REPEATS" --threads "$TABLE_THREADS" \
      --json "$OUT_DIR/lat.json" "${Q[@]}" >/dev/null
    code=$(sed -n 's/^op code \([0-9]*\) of.*/\1/p' "$S.txt")
    table_ms=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print(t["codes"][int(sys.argv[2])]["latency"][t["batch_sizes"].index(int(sys.argv[3]))]["median_ms"])' "$TABLE" "$code" "$b")
    row "$OUT_DIR/lat.json" "{\"kind\": \"table_vs_fresh\", \"budget_text\": \"$budget\", \"batch\": $b, \"table_median_ms\": $table_ms, \"code\": $code}"
    echo "  batch $b, budget $budget: table $table_ms ms, fresh $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["latency"][0]["median_ms"], 4))' "$OUT_DIR/lat.json") ms"
  done
done
B1=${BATCHES%%,*}
for rt in libtorch openvino; do
  "$BIN/skd-eval" --model "$SUPERNET" --latency-table --runtime "$rt" --batch-sizes "$B1" \
    --latency-repeats "$REPEATS" --threads "$TABLE_THREADS" --out "$OUT_DIR/supernet.latency.$rt.json" "${Q[@]}" >/dev/null
done
python3 "$SRC/tools/bench/runtime_table.py" "$ROWS" --points "$OUT_DIR/int8_points" "$TABLE_THREADS" "$B1" |
  tee "$OUT_DIR/tables.md"
if command -v gnuplot >/dev/null 2>&1; then
  /usr/bin/python3 "$SRC/tools/experiments/plot_latency.py" "$OUT_DIR/supernet.latency.libtorch.json" "$TABLE" \
    "$OUT_DIR/supernet.latency.openvino.json" "$OUT_DIR/latency_runtimes.png" --batch "$B1" \
    --points "$OUT_DIR/int8_points.onnxruntime.dat" "int8 (onnxruntime), the budgets' sub-networks" \
    --points "$OUT_DIR/int8_points.openvino.dat" "int8 (OpenVINO), the budgets' sub-networks"
fi
