#!/usr/bin/env bash
# The demo: installs what is missing, builds, then works on the embedded default model
# (assets/vit_fmnist.safetensors, a small ViT trained on Fashion-MNIST by skd-train, see
# assets/README.md): evaluates it on the 10k test images, slices a standalone half-width
# sub-network, evaluates it, fine-tunes that sub-network briefly with skd-train (the reference's
# "peeled" fine-tune) and evaluates it again; then converts the model with WPAC (skd-convert) and
# slices the same half-width sub-network from the converted model, which needs no fine-tuning.
# Results land in runs/demo/ (JSON + Markdown table).
# Usage: scripts/demo.sh [--epochs N]  (fine-tune epochs, default 1; env SKD_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=1
if [ "${1:-}" = "--epochs" ]; then EPOCHS="$2"; fi
start=$(date +%s)
bash scripts/setup.sh
BUILD_DIR="${SKD_BUILD_DIR:-build}"
bash scripts/build.sh "$BUILD_DIR" >/dev/null
BIN="$BUILD_DIR/apps"
OUT=runs/demo
MODEL=assets/vit_fmnist.safetensors
rm -rf "$OUT"
mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE

echo "== 1/7 evaluate the embedded default model ($MODEL) on the 10k Fashion-MNIST test images"
"$BIN/skd-eval" --model "$MODEL" --data fashion-mnist --json "$OUT/eval_full.json"

echo "== 2/7 extract a standalone sub-network at half attention and MLP width"
"$BIN/skd-extract" --model "$MODEL" --attn-keep 0.5 --mlp-keep 0.5 --out "$OUT/half.safetensors"

echo "== 3/7 evaluate it (the plain model is not an SKD super-network yet: accuracy drops)"
"$BIN/skd-eval" --model "$OUT/half.safetensors" --data fashion-mnist --json "$OUT/eval_half.json"

echo "== 4/7 fine-tune the sub-network for $EPOCHS epoch(s) with skd-train"
"$BIN/skd-train" --model "$OUT/half.safetensors" --data fashion-mnist --epochs "$EPOCHS" --batch-size 128 \
  --lr 2e-4 --unscale-lr --min-lr 1e-5 --warmup-epochs 0 --mixup 0 --cutmix 0 --drop-path 0 --workers 1 \
  --no-eval --log-every 100 --run-dir "$OUT/finetune"

echo "== 5/7 evaluate the fine-tuned sub-network"
"$BIN/skd-eval" --model "$OUT/finetune/model.safetensors" --data fashion-mnist --json "$OUT/eval_half_ft.json"

echo "== 6/7 WPAC: importance-weighted PCA per head + MLP sort (function preserving), 1024 proxy images"
"$BIN/skd-convert" --model "$MODEL" --data fashion-mnist --proxy-samples 1024 --out "$OUT/wpac.safetensors"

echo "== 7/7 slice the same half-width sub-network from the WPAC model and evaluate it (no fine-tuning)"
"$BIN/skd-extract" --model "$OUT/wpac.safetensors" --attn-keep 0.5 --mlp-keep 0.5 --out "$OUT/wpac_half.safetensors"
"$BIN/skd-eval" --model "$OUT/wpac_half.safetensors" --data fashion-mnist --json "$OUT/eval_wpac_half.json"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
rows = []
for name, f in [("full (embedded default)", "eval_full.json"), ("half width, sliced", "eval_half.json"),
                ("half width, fine-tuned", "eval_half_ft.json"),
                ("half width of the WPAC model, sliced", "eval_wpac_half.json")]:
    j = json.load(open(f"{out}/{f}"))
    rows.append((name, j["top1"], j["top5"], j["macs_paper"] / 1e6, j["params"] / 1e6))
md = ["| model | top-1 % | top-5 % | MACs (paper, M) | params (M) |", "|---|---|---|---|---|"]
md += [f"| {n} | {t1:.2f} | {t5:.2f} | {m:.2f} | {p:.3f} |" for n, t1, t5, m, p in rows]
open(f"{out}/results.md", "w").write("\n".join(md) + "\n")
json.dump([dict(zip(["model", "top1", "top5", "macs_paper_m", "params_m"], r)) for r in rows],
          open(f"{out}/results.json", "w"), indent=2)
print("\n".join(md))
PY
echo "demo finished in $(( $(date +%s) - start )) s; results in $OUT/results.md"
