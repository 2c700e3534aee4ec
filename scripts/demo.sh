#!/usr/bin/env bash
# The demo (README command 1): installs what is missing, builds, then runs the whole SKD pipeline on
# the embedded default model (assets/vit_fmnist.safetensors, a small ViT trained on Fashion-MNIST by
# skd-train, see assets/README.md) with the recipe configs/train/demo_fmnist.json:
#   1. skd-convert: WPAC with 1024 proxy images (function preserving)
#   2. skd-train --mode piad: a short PIAD schedule (3 epochs on 20k training images, mask-table
#      updates before the first 2) turns it into a super-network
#   3. skd-extract --macs-ratio n/12 for n = 2 3 4 6 8 12 (a lookup in the mask table), and for
#      comparison the same widths cut from the WPAC model before PIAD and from the embedded model
#      without any SKD step; skd-eval of each on the 10k test images
#   4. runs/demo/results.{md,json} and runs/demo/accuracy_vs_macs.png
#   5. skd-export of the 4/12 sub-network to runs/demo/subnet_4of12.onnx, with the onnxruntime parity
#      line where onnxruntime is installed (scripts/demo_export.sh)
# Usage: scripts/demo.sh [any tools/experiments/piad_results.sh option, e.g. --threads 4]
#        env SKD_BUILD_DIR (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
echo "== setup: Debian packages"
bash scripts/setup.sh --demo
echo "== build the library and the four apps (Release; ninja prints [done/total]; the tests are left to scripts/test.sh)"
BUILD_DIR="${SKD_BUILD_DIR:-build}"
SKD_TARGETS="skd-convert skd-train skd-extract skd-eval skd-export" bash scripts/build.sh "$BUILD_DIR"
built=$(date +%s)
echo "-- setup + build took $((built - start)) s"
SKD_BIN="$BUILD_DIR/apps" bash tools/experiments/piad_results.sh --config configs/train/demo_fmnist.json --no-baseline \
  --with-original --budgets "2 3 4 6 8 12" --out-dir runs/demo \
  --title "SKD demo: sub-networks of the embedded Fashion-MNIST ViT (no fine-tuning after extraction)" "$@"
SKD_BIN="$BUILD_DIR/apps" bash scripts/demo_export.sh runs/demo/piad/model.safetensors runs/demo/subnet_4of12.onnx 4 \
  || echo "demo: the ONNX export step failed (see above); the results above are complete"
end=$(date +%s)
echo "demo finished in $((end - start)) s (setup + build $((built - start)) s, pipeline $((end - built)) s)"
echo "results: runs/demo/results.md, runs/demo/results.json, plot: runs/demo/accuracy_vs_macs.png, ONNX: runs/demo/subnet_4of12.onnx"
