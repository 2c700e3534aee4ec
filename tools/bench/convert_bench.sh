#!/usr/bin/env bash
# Conversion-time benchmark for skd-convert (WPAC): proxy pass (forward + backward with probes) plus
# float64 statistics, eigendecompositions and the weight transform, as the report's seconds.total.
#  1. the embedded Fashion-MNIST model, 1024 proxy images (Fashion-MNIST train), batch 64;
#  2. DeiT-S and DeiT-B shapes with random weights (no pretrained weights here) on a generated
#     folder of 500x375 JPEGs (decode + eval transform included), --proxy-samples per model below.
# Usage: tools/bench/convert_bench.sh [--repeat N] [--device cpu|cuda] [--deit-proxy "S B"]
# Prints one line per run; paste the results into docs/benchmarks.md with the machine.
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
BIN="${SKD_BIN:-$SRC/build/apps}"
PY=/usr/bin/python3
REPEAT=3
DEVICE=cpu
PROXY_S=64
PROXY_B=32
BATCH=32
DEIT_PROXY="$PROXY_S $PROXY_B"
skd_args --repeat REPEAT --device DEVICE --deit-proxy DEIT_PROXY --batch-size BATCH -- "$@"
read -r PROXY_S PROXY_B <<<"$DEIT_PROXY"
W="${BENCH_DIR:-/tmp/skd_convert_bench}"
mkdir -p "$W"
secs() { $PY -c "import json,sys; print('%.2f' % json.load(open(sys.argv[1]))['seconds']['total'])" "$1"; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), device $DEVICE"
for i in $(seq "$REPEAT"); do
  "$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" --data fashion-mnist --proxy-samples 1024 \
    --batch-size 64 --device "$DEVICE" --out "$W/fmnist.safetensors" --log-level warn >/dev/null
  echo "vit_fmnist  1024 proxy images: $(secs "$W/fmnist.report.json") s"
done
count=$(( PROXY_S > PROXY_B ? PROXY_S : PROXY_B ))
[ -d "$W/jpegs" ] || $PY "$SRC/tools/bench/make_jpeg_folder.py" --out "$W/jpegs" --count "$count" --classes 4 >/dev/null
for arch in deit_small deit_base; do
  [ -f "$W/$arch.pth" ] || $PY "$SRC/tools/bench/make_random_vit.py" --arch "$arch" --out "$W/$arch.pth"
  n=$PROXY_S; [ "$arch" = deit_base ] && n=$PROXY_B
  for i in $(seq "$REPEAT"); do
    "$BIN/skd-convert" --model "$W/$arch.pth" --arch "$arch" --data "$W/jpegs" --proxy-samples "$n" \
      --batch-size "$BATCH" --device "$DEVICE" --out "$W/$arch.safetensors" --log-level warn >/dev/null
    t=$(secs "$W/$arch.report.json")
    echo "$arch  $n proxy images: $t s  ($($PY -c "print('%.3f' % ($t / $n))") s/image)"
  done
done
