#!/usr/bin/env bash
# Latency-table benchmark: how long skd-eval --latency-table takes to time every op code of a
# DeiT-shaped super-network (random weights + the uniform 12-code mask table of
# make_uniform_mask_table.py, attached by skd-convert --mask-table), and the table itself (latency and
# MACs per code, plotted by tools/experiments/plot_latency.py).
# Usage: tools/bench/latency_table_bench.sh [--arch deit_small] [--batch-sizes 1] [--repeats 20]
#          [--threads N] [--device cpu|cuda] [--runtime libtorch|onnxruntime|openvino]
#   --runtime other than libtorch: the table measured in that runtime (skd-eval --latency-table
#   --runtime; Python from $SKD_PYTHON, else the runtimes environment, scripts/setup_venv.sh --runtimes)
# Prints the machine, the wall time of the command and the sweep time recorded in the table; writes
# $BENCH_DIR/<arch>-supernet.latency[.<runtime>].json and <arch>-latency-<runtime>.png (BENCH_DIR default /tmp/skd_lat_bench).
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
BIN="${SKD_BIN:-$SRC/build/apps}"
PY=/usr/bin/python3
ARCH=deit_small
BATCHES=1
REPEATS=20
THREADS=$(nproc)
DEVICE=cpu
RUNTIME=libtorch
skd_args --arch ARCH --batch-sizes BATCHES --repeats REPEATS --threads THREADS --device DEVICE --runtime RUNTIME -- "$@"
RT=()
if [ "$RUNTIME" != libtorch ]; then
  RT=(--runtime "$RUNTIME")
  if [ -z "${SKD_PYTHON:-}" ]; then
    VENV=$(bash "$SRC/scripts/setup_venv.sh" --runtimes --cached) || skd_usage_error "no runtimes: bash scripts/setup_venv.sh --runtimes"
    export SKD_PYTHON="$VENV/bin/python"
  fi
fi
W="${BENCH_DIR:-/tmp/skd_lat_bench}"
mkdir -p "$W"
export OMP_WAIT_POLICY=PASSIVE
S="$W/$ARCH-supernet.safetensors"
if [ ! -f "$S" ]; then
  [ -f "$W/$ARCH.pth" ] || $PY "$SRC/tools/bench/make_random_vit.py" --arch "$ARCH" --out "$W/$ARCH.pth"
  $PY "$SRC/tools/bench/make_uniform_mask_table.py" --arch "$ARCH" --out "$W/$ARCH-mask_table.json"
  "$BIN/skd-convert" --model "$W/$ARCH.pth" --arch "$ARCH" --mask-table "$W/$ARCH-mask_table.json" --out "$S" \
    --log-level warn >/dev/null
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
"$BIN/skd-eval" --model "$S" --latency-table --batch-sizes "$BATCHES" --latency-repeats "$REPEATS" \
  --threads "$THREADS" --device "$DEVICE" "${RT[@]}"
end=$(date +%s.%N)
T="$W/$ARCH-supernet.latency.json"
[ "$RUNTIME" = libtorch ] || T="$W/$ARCH-supernet.latency.$RUNTIME.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f'sweep (from the table): {d[\"sweep_seconds\"]:.1f} s for {len(d[\"codes\"])} codes x {len(d[\"batch_sizes\"])} batch size(s), {d[\"warmup\"]} warm-up + {d[\"repeats\"]} timed runs each')" "$T"
echo "wall time of skd-eval --latency-table (incl. loading, sha256): $(python3 -c "print(f'{$end - $start:.1f}')") s"
if command -v gnuplot >/dev/null 2>&1; then
  $PY "$SRC/tools/experiments/plot_latency.py" "$T" "$W/$ARCH-latency-$RUNTIME.png" --batch "${BATCHES%%,*}"
fi
