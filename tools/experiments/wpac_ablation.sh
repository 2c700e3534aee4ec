#!/usr/bin/env bash
# WPAC design choices measured on a model (default: the embedded Fashion-MNIST model):
#  1. centring (batch = official code | global weighted mean | none) x cost (logit = official code |
#     ce = the paper's cross-entropy), scored by top-1 with only the leading 1/16, 1/8, 1/4 of every
#     head's q/k/v dims kept;
#  2. MLP unit order (taylor = first order, the paper | taylor2 = second order, the official code |
#     magnitude | random), scored by top-1 with only the leading 1/8, 1/4, 1/2 of every MLP kept.
# Usage: tools/experiments/wpac_ablation.sh [--model M] [--data D] [--proxy-samples N] [--limit N] [--out-dir DIR]
# Writes DIR/ablation.json and DIR/ablation.md and prints the tables.
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
BIN="${SKD_BIN:-$SRC/build/apps}"
MODEL="$SRC/assets/vit_fmnist.safetensors"
DATA=fashion-mnist
PROXY=1024
LIMIT=0
OUT=ablation
THREADS=$(nproc)
skd_args --model MODEL --data DATA --proxy-samples PROXY --limit LIMIT --out-dir OUT --threads THREADS -- "$@"
mkdir -p "$OUT"
common=(--threads "$THREADS" --log-level warn)
ATTN_KEEPS="0.0625 0.125 0.25"
MLP_KEEPS="0.125 0.25 0.5"

# variant NAME KEEP_FLAG "KEEPS" CONVERT_ARGS...: convert, evaluate at each keep fraction, clean up
variant() {
  local name=$1 flag=$2 keeps=$3
  shift 3
  "$BIN/skd-convert" --model "$MODEL" --data "$DATA" --proxy-samples "$PROXY" "$@" \
    --out "$OUT/$name.safetensors" --report "$OUT/$name.report.json" "${common[@]}" >/dev/null
  for k in $keeps; do
    "$BIN/skd-eval" --model "$OUT/$name.safetensors" --data "$DATA" --limit "$LIMIT" "$flag" "$k" \
      --json "$OUT/$name.keep$k.json" "${common[@]}" >/dev/null
  done
  rm -f "$OUT/$name.safetensors"
  echo "done $name" >&2
}
for centering in batch global none; do
  for cost in logit ce; do
    variant "attn-$centering-$cost" --attn-keep "$ATTN_KEEPS" --centering "$centering" --cost "$cost" --mlp-criterion keep
  done
done
for mlp in taylor taylor2 magnitude random; do variant "mlp-$mlp" --mlp-keep "$MLP_KEEPS" --mlp-criterion "$mlp"; done

python3 - "$OUT" "$ATTN_KEEPS" "$MLP_KEEPS" <<'EOF'
import json, sys
out, attn_keeps, mlp_keeps = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
res = {"attention": {}, "mlp": {}}
lines = ["| centring | cost | " + " | ".join(f"attn {k}" for k in attn_keeps) + " |", "|---|---|" + "---|" * len(attn_keeps)]
for c in ["batch", "global", "none"]:
    for cost in ["logit", "ce"]:
        n = f"attn-{c}-{cost}"
        row = {k: json.load(open(f"{out}/{n}.keep{k}.json"))["top1"] for k in attn_keeps}
        res["attention"][n] = row
        lines.append(f"| {c} | {cost} | " + " | ".join(f"{row[k]:.2f}" for k in attn_keeps) + " |")
lines += ["", "| MLP order | " + " | ".join(f"mlp {k}" for k in mlp_keeps) + " |", "|---|" + "---|" * len(mlp_keeps)]
for m in ["taylor", "taylor2", "magnitude", "random"]:
    row = {k: json.load(open(f"{out}/mlp-{m}.keep{k}.json"))["top1"] for k in mlp_keeps}
    res["mlp"][m] = row
    lines.append(f"| {m} | " + " | ".join(f"{row[k]:.2f}" for k in mlp_keeps) + " |")
md = "\n".join(lines) + "\n"
json.dump(res, open(f"{out}/ablation.json", "w"), indent=1)
open(f"{out}/ablation.md", "w").write(md)
print(md)
EOF
