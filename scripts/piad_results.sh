#!/usr/bin/env bash
# PIAD vs a plain fine-tune (the shape of paper Table 7) on the embedded Fashion-MNIST model:
#   1. WPAC (skd-convert, 1024 proxy images)
#   2. PIAD: skd-train --mode piad for --epochs (mask-table updates in the first --pe epochs)
#   3. baseline: the same recipe and epochs without PIAD (plain fine-tune of the WPAC network)
#   4. sub-networks at 2/12 ... 12/12 of the MACs: the largest code of PIAD's mask table within the
#      budget (skd-extract --macs-ratio), cut from the PIAD super-network, from the baseline and from
#      the WPAC network before any training (same widths), no fine-tuning; top-1 on the 10k test set
#   5. DIR/results.{json,md} and DIR/accuracy_vs_macs.png (gnuplot)
# Usage: scripts/piad_results.sh [--epochs 4] [--pe 3] [--limit 0] [--out-dir runs/piad_results] [--threads N]
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${SKD_BIN:-$SRC/build/apps}"
EPOCHS=4
PE=3
LIMIT=0
OUT=runs/piad_results
THREADS=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="$2"; shift 2 ;;
    --pe) PE="$2"; shift 2 ;;
    --limit) LIMIT="$2"; shift 2 ;;
    --out-dir) OUT="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v gnuplot >/dev/null || { echo "gnuplot is needed for the plot (apt-get install gnuplot-nox)" >&2; exit 2; }
mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE
T=(--threads "$THREADS")
RECIPE=(--data fashion-mnist --limit "$LIMIT" --epochs "$EPOCHS" --batch-size 128 --lr 1e-4 --unscale-lr --min-lr 1e-5
        --warmup-epochs 0 --mixup 0 --cutmix 0 --drop-path 0 --workers 1 --log-every 100 "${T[@]}")
start=$(date +%s)
echo "== WPAC"
"$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" --data fashion-mnist --proxy-samples 1024 \
  --out "$OUT/wpac.safetensors" "${T[@]}"
echo "== PIAD, $EPOCHS epochs (table updates in the first $PE)"
rm -rf "$OUT/piad" "$OUT/baseline"
"$BIN/skd-train" --model "$OUT/wpac.safetensors" --mode piad --piad-progressive-epochs "$PE" "${RECIPE[@]}" \
  --run-dir "$OUT/piad"
echo "== baseline: the same recipe without PIAD"
"$BIN/skd-train" --model "$OUT/wpac.safetensors" "${RECIPE[@]}" --run-dir "$OUT/baseline"
TABLE="$OUT/piad/mask_table.json"
for n in 2 3 4 6 8 10 12; do
  ratio=$(python3 -c "print($n / 12)")
  for src in piad baseline wpac; do
    case $src in
      piad) args=(--supernet "$OUT/piad/model.safetensors") ;;
      baseline) args=(--model "$OUT/baseline/model.safetensors" --mask-table "$TABLE") ;;
      wpac) args=(--model "$OUT/wpac.safetensors" --mask-table "$TABLE") ;;
    esac
    "$BIN/skd-extract" "${args[@]}" --macs-ratio "$ratio" --out "$OUT/$src-$n.safetensors" "${T[@]}" >"$OUT/$src-$n.extract.txt"
    "$BIN/skd-eval" --model "$OUT/$src-$n.safetensors" --data fashion-mnist --json "$OUT/$src-$n.json" "${T[@]}" \
      --log-level warn >/dev/null
    echo "$n/12 $src: $(python3 -c "import json; print(json.load(open('$OUT/$src-$n.json'))['top1'])") %"
  done
done
python3 - "$OUT" "$EPOCHS" "$PE" <<'PY'
import json, re, sys
out, epochs, pe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = []
for n in [2, 3, 4, 6, 8, 10, 12]:
    r = {"fraction": f"{n}:12"}
    for src in ["piad", "baseline", "wpac"]:
        j = json.load(open(f"{out}/{src}-{n}.json"))
        code = re.search(r"op code (\d+)", open(f"{out}/{src}-{n}.extract.txt").read()).group(1)
        r[src] = j["top1"]
        r["code"] = int(code)
        r["macs_paper"] = j["macs_paper"]
        r["params"] = j["params"]
    rows.append(r)
json.dump({"epochs": epochs, "progressive_epochs": pe, "rows": rows}, open(f"{out}/results.json", "w"), indent=1)
md = ["| MACs budget | op code | MACs (paper) | params | PIAD | plain fine-tune | WPAC, no training |",
      "|---|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    md.append(f"| {r['fraction']} | {r['code']} | {r['macs_paper'] / 1e6:.2f} M | {r['params'] / 1e6:.3f} M | "
              f"{r['piad']:.2f} | {r['baseline']:.2f} | {r['wpac']:.2f} |")
open(f"{out}/results.md", "w").write("\n".join(md) + "\n")
with open(f"{out}/results.dat", "w") as f:
    f.write("# macs_m piad baseline wpac\n")
    for r in rows:
        f.write(f"{r['macs_paper'] / 1e6:.4f} {r['piad']:.2f} {r['baseline']:.2f} {r['wpac']:.2f}\n")
print("\n".join(md))
PY
gnuplot <<EOF
set terminal pngcairo size 900,600 noenhanced font ",11"
set output "$OUT/accuracy_vs_macs.png"
set title "Sub-networks of the embedded Fashion-MNIST ViT (no fine-tuning after extraction)"
set xlabel "MACs (paper convention, millions)"
set ylabel "top-1 on the 10k test set (%)"
set key bottom right
set grid
plot "$OUT/results.dat" using 1:2 with linespoints lw 2 pt 7 title "PIAD ($EPOCHS epochs)", \
     "" using 1:3 with linespoints lw 2 pt 5 title "plain fine-tune ($EPOCHS epochs)", \
     "" using 1:4 with linespoints lw 2 pt 9 title "WPAC only"
EOF
rm -f "$OUT"/*-*.safetensors
echo "done in $(( $(date +%s) - start )) s: $OUT/results.md, $OUT/accuracy_vs_macs.png"
