#!/usr/bin/env bash
# Pruning-criteria comparison (the shape of paper Table 3) on a model and Fashion-MNIST or an image
# folder: each criterion reorders/rotates every head's dims (skd-convert --criterion), then the model
# is evaluated keeping only the leading 1/4, 2/4, 3/4 of every head's q/k/v dims (skd-eval
# --attn-keep; MLP untouched, softmax scale unchanged).
#
# Usage: tools/experiments/criteria_table.sh [--model M] [--data D] [--proxy-samples N] [--limit N]
#                                  [--random-seeds "0 1 2"] [--keeps "0.25 0.5 0.75"] [--out-dir DIR] [--threads T]
# Writes DIR/criteria.json and DIR/criteria.md (a Markdown table) and prints the table.
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
BIN="${SKD_BIN:-$SRC/build/apps}"
MODEL="$SRC/assets/vit_fmnist.safetensors"
DATA=fashion-mnist
PROXY=1024
LIMIT=0
SEEDS="0 1 2"
OUT=criteria
THREADS=$(nproc)
KEEPS="0.25 0.5 0.75"
skd_args --model MODEL --data DATA --proxy-samples PROXY --limit LIMIT --random-seeds SEEDS --out-dir OUT \
  --threads THREADS --keeps KEEPS -- "$@"
mkdir -p "$OUT"
common=(--threads "$THREADS" --log-level warn)

evaluate() {  # model keep json
  "$BIN/skd-eval" --model "$1" --data "$DATA" --limit "$LIMIT" --attn-keep "$2" --json "$3" "${common[@]}" >/dev/null
}

rows=()
run_criterion() {  # name criterion seed
  local name=$1 crit=$2 seed=$3 art="$OUT/$1.safetensors"
  local t0=$(date +%s%N)
  "$BIN/skd-convert" --model "$MODEL" --data "$DATA" --criterion "$crit" --seed "$seed" --proxy-samples "$PROXY" \
    --out "$art" --report "$OUT/$name.report.json" "${common[@]}" >/dev/null
  echo "converted $name in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
  for k in $KEEPS; do evaluate "$art" "$k" "$OUT/$name.keep$k.json"; done
  rows+=("$name")
  rm -f "$art"
}

evaluate "$MODEL" 1.0 "$OUT/original.json"
for c in wpac taylor taylor2 magnitude; do run_criterion "$c" "$c" 0; done
for s in $SEEDS; do run_criterion "random-seed$s" random "$s"; done

python3 - "$OUT" "$MODEL" "$DATA" "$PROXY" "$KEEPS" "${rows[@]}" <<'EOF'
import json, sys, statistics
from fractions import Fraction
out, model, data, proxy, keeps, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(), sys.argv[6:]
orig = json.load(open(f"{out}/original.json"))
table = {}
for r in rows:
    table[r] = {k: json.load(open(f"{out}/{r}.keep{k}.json"))["top1"] for k in keeps}
random_rows = [r for r in rows if r.startswith("random")]
result = {"model": model, "data": data, "proxy_samples": int(proxy), "images": orig["images"],
          "original_top1": orig["top1"], "keeps": keeps, "top1": table}
labels = {"wpac": "WPAC", "taylor": "Taylor FO", "taylor2": "Taylor SO", "magnitude": "Magnitude"}
def ratio(k):  # 0.25 -> "1:4", 0.5 -> "2:4", 0.125 -> "1:8"
    f = Fraction(k).limit_denominator(64)
    n, d = (f.numerator * 4 // f.denominator, 4) if (f * 4).denominator == 1 else (f.numerator, f.denominator)
    return f"{n}:{d}"
head = "| criterion | " + " | ".join(ratio(k) for k in keeps) + " |"
lines = [head, "|---|" + "---|" * len(keeps)]
if random_rows:
    mean = {k: statistics.mean(table[r][k] for r in random_rows) for k in keeps}
    sd = {k: statistics.pstdev([table[r][k] for r in random_rows]) for k in keeps}
    result["random_mean"] = mean
    lines.append(f"| Random (mean ± sd of {len(random_rows)} seeds) | " +
                 " | ".join(f"{mean[k]:.2f} ± {sd[k]:.2f}" for k in keeps) + " |")
for r in ["magnitude", "taylor", "taylor2", "wpac"]:
    if r in table:
        lines.append(f"| {labels[r]} | " + " | ".join(f"{table[r][k]:.2f}" for k in keeps) + " |")
lines.append(f"| (unpruned) | " + " | ".join(f"{orig['top1']:.2f}" for _ in keeps) + " |")
md = "\n".join(lines) + "\n"
json.dump(result, open(f"{out}/criteria.json", "w"), indent=1)
open(f"{out}/criteria.md", "w").write(md)
print(md)
EOF
