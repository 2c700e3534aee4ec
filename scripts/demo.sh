#!/usr/bin/env bash
# The demo: installs what is missing, builds, trains the embedded default (a small ViT) on
# Fashion-MNIST for a short schedule, evaluates it, extracts a half-width sub-network and
# evaluates that too. Results land in runs/demo/ (JSON + Markdown table).
# Usage: scripts/demo.sh [--epochs N]      (env SKD_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=2
if [ "${1:-}" = "--epochs" ]; then EPOCHS="$2"; fi
start=$(date +%s)
bash scripts/setup.sh
BUILD_DIR="${SKD_BUILD_DIR:-build}"
bash scripts/build.sh "$BUILD_DIR" >/dev/null
BIN="$BUILD_DIR/apps"
OUT=runs/demo
mkdir -p "$OUT"
rm -f "$OUT/metrics.jsonl"
export OMP_WAIT_POLICY=PASSIVE

echo "== 1/4 train the embedded default model (configs/models/vit_fmnist_demo.json, $EPOCHS epochs)"
"$BIN/skd-train" --arch configs/models/vit_fmnist_demo.json --data fashion-mnist --epochs "$EPOCHS" \
  --batch-size 128 --lr 2e-3 --warmup-epochs 0.2 --log-every 100 \
  --out "$OUT/model.safetensors" --metrics "$OUT/metrics.jsonl"

echo "== 2/4 evaluate it on the 10k Fashion-MNIST test images"
"$BIN/skd-eval" --model "$OUT/model.safetensors" --data fashion-mnist --json "$OUT/eval_full.json"

echo "== 3/4 extract a standalone sub-network at half attention and MLP width"
"$BIN/skd-extract" --model "$OUT/model.safetensors" --attn-keep 0.5 --mlp-keep 0.5 --out "$OUT/half.safetensors"

echo "== 4/4 evaluate the sub-network (no SKD training yet: the plain model is not elastic)"
"$BIN/skd-eval" --model "$OUT/half.safetensors" --data fashion-mnist --json "$OUT/eval_half.json"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
rows = []
for name, f in [("full", "eval_full.json"), ("half width", "eval_half.json")]:
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
