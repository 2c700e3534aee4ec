#!/usr/bin/env bash
# Super-network benchmark: extraction time and latency of extracted sub-networks vs their MACs.
#  For each DeiT shape (random weights: no pretrained weights here):
#   1. a super-network: random weights and a uniform mask table (make_uniform_mask_table.py: 12
#      codes shrinking every block in equal steps to 1/4 of its width) attached by skd-convert
#      --mask-table; with random weights a PIAD table would only reflect noise, and extraction time
#      and latency depend on the widths, not on how they were chosen;
#   2. skd-extract --macs-ratio n/12 for n in 4 6 8 10 12: its own timing line (read + sha256,
#      select + slice, write) and the wall time of the command;
#   3. skd-eval --latency on each extracted artifact: median forward latency; ratio to 12:12.
#  Optionally (--supernet FILE, repeatable) the same for existing super-networks, e.g. the embedded
#  Fashion-MNIST model after PIAD (runs/piad_results/piad/model.safetensors).
# Usage: tools/bench/extract_bench.sh [--archs "deit_small deit_base"] [--supernet F]... [--repeats 10]
#          [--device cpu|cuda] [--threads N] [--out results.json]
# Prints a Markdown table per super-network and writes all rows to --out (JSON).
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
BIN="${SKD_BIN:-$SRC/build/apps}"
PY=/usr/bin/python3
ARCHS="deit_small deit_base"
SUPERNETS=()
REPEATS=10
DEVICE=cpu
THREADS=$(nproc)
OUT=""
skd_args --archs ARCHS --supernet SUPERNETS+ --repeats REPEATS --device DEVICE --threads THREADS --out OUT -- "$@"
W="${BENCH_DIR:-/tmp/skd_extract_bench}"
mkdir -p "$W"
export OMP_WAIT_POLICY=PASSIVE
T=(--threads "$THREADS")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), device $DEVICE, $THREADS threads"
for arch in $ARCHS; do
  if [ ! -f "$W/$arch-supernet.safetensors" ]; then
    [ -f "$W/$arch.pth" ] || $PY "$SRC/tools/bench/make_random_vit.py" --arch "$arch" --out "$W/$arch.pth"
    echo "== $arch: random weights + a uniform mask table"
    $PY "$SRC/tools/bench/make_uniform_mask_table.py" --arch "$arch" --out "$W/$arch-mask_table.json"
    "$BIN/skd-convert" --model "$W/$arch.pth" --arch "$arch" --mask-table "$W/$arch-mask_table.json" \
      --out "$W/$arch-supernet.safetensors" "${T[@]}" --log-level warn >/dev/null
  fi
  SUPERNETS+=("$W/$arch-supernet.safetensors")
done
# Batch sizes for latency: 1 everywhere; 16 below 10 GMACs (DeiT-B at 16 takes minutes here), 256 below
# 0.1 GMACs (tiny models: per-call overhead dominates small batches).
rows=()
for sn in "${SUPERNETS[@]}"; do
  name=$(basename "$sn" .safetensors)
  [ "$name" = model ] && name=$(basename "$(dirname "$sn")")  # a run directory's model.safetensors
  for n in 4 6 8 10 12; do
    ratio=$($PY -c "print($n / 12)")
    sub="$W/$name-$n.safetensors"
    rm -f "$sub"
    sync
    t0=$(date +%s.%N)
    if ! "$BIN/skd-extract" --supernet "$sn" --macs-ratio "$ratio" --out "$sub" "${T[@]}" >"$W/$name-$n.extract.txt" \
      2>"$W/$name-$n.extract.err"; then
      echo "$name $n/12: $(cat "$W/$name-$n.extract.err")"  # below the table's smallest sub-network
      continue
    fi
    t1=$(date +%s.%N)
    wall=$($PY -c "print('%.3f' % ($t1 - $t0))")
    "$BIN/skd-eval" --model "$sub" --summary --json "$W/$name-$n.summary.json" >/dev/null
    macs=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['macs_paper'])" "$W/$name-$n.summary.json")
    batches=1
    [ "$macs" -lt 10000000000 ] && batches=1,16
    [ "$macs" -lt 100000000 ] && batches=1,256
    "$BIN/skd-eval" --model "$sub" --latency "$batches" --latency-repeats "$REPEATS" --device "$DEVICE" \
      --json "$W/$name-$n.latency.json" "${T[@]}" --log-level warn >/dev/null
    rows+=("$name $n $wall $W/$name-$n.extract.txt $W/$name-$n.latency.json")
    echo "$name $n/12: extract ${wall} s wall; $(grep '^time:' "$W/$name-$n.extract.txt")"
  done
done
printf '%s\n' "${rows[@]}" | $PY "$SRC/tools/bench/extract_table.py" "$OUT"
