#!/usr/bin/env bash
# PIAD vs a plain fine-tune (the shape of paper Table 7) on the embedded Fashion-MNIST model:
#   1. the starting network: WPAC (skd-convert, 1024 proxy images), or with --no-wpac the embedded
#      model as it is
#   2. PIAD: skd-train --mode piad for --epochs (mask-table updates in the first --pe epochs), plus
#      any --piad-args (e.g. "--piad-sandwich", "--piad-sensitivity accuracy")
#   3. baseline: the same recipe and epochs without PIAD (plain fine-tune); --no-baseline skips it
#   4. sub-networks at n/12 of the MACs for n in --budgets: the largest code of PIAD's mask table
#      within the budget (skd-extract --macs-ratio), cut from the PIAD super-network, from the
#      baseline and from the starting network before any training (same widths), no fine-tuning;
#      top-1 on the 10k test set
#   5. DIR/results.{json,md} and DIR/accuracy_vs_macs.png (gnuplot)
# Usage: scripts/piad_results.sh [--epochs 4] [--pe 3] [--limit 0] [--out-dir runs/piad_results]
#          [--threads N] [--no-wpac] [--no-baseline] [--piad-args "..."] [--budgets "2 3 4 6 8 10 12"]
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${SKD_BIN:-$SRC/build/apps}"
EPOCHS=4
PE=3
LIMIT=0
OUT=runs/piad_results
THREADS=$(nproc)
WPAC=1
BASELINE=1
PIAD_ARGS=""
BUDGETS="2 3 4 6 8 10 12"
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="$2"; shift 2 ;;
    --pe) PE="$2"; shift 2 ;;
    --limit) LIMIT="$2"; shift 2 ;;
    --out-dir) OUT="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --no-wpac) WPAC=0; shift ;;
    --no-baseline) BASELINE=0; shift ;;
    --piad-args) PIAD_ARGS="$2"; shift 2 ;;
    --budgets) BUDGETS="$2"; shift 2 ;;
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
if [ "$WPAC" = 1 ]; then
  START_LABEL="WPAC only"
  echo "== WPAC"
  "$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" --data fashion-mnist --proxy-samples 1024 \
    --out "$OUT/start.safetensors" "${T[@]}"
else
  START_LABEL="embedded model, no WPAC"
  cp "$SRC/assets/vit_fmnist.safetensors" "$OUT/start.safetensors"
fi
echo "== PIAD, $EPOCHS epochs (table updates in the first $PE) $PIAD_ARGS"
rm -rf "$OUT/piad" "$OUT/baseline"
# shellcheck disable=SC2086  # PIAD_ARGS is a list of flags
"$BIN/skd-train" --model "$OUT/start.safetensors" --mode piad --piad-progressive-epochs "$PE" "${RECIPE[@]}" \
  $PIAD_ARGS --run-dir "$OUT/piad"
SOURCES=(piad start)
if [ "$BASELINE" = 1 ]; then
  echo "== baseline: the same recipe without PIAD"
  "$BIN/skd-train" --model "$OUT/start.safetensors" "${RECIPE[@]}" --run-dir "$OUT/baseline"
  SOURCES=(piad baseline start)
fi
TABLE="$OUT/piad/mask_table.json"
for n in $BUDGETS; do
  ratio=$(python3 -c "print($n / 12)")
  for src in "${SOURCES[@]}"; do
    case $src in
      piad) args=(--supernet "$OUT/piad/model.safetensors") ;;
      baseline) args=(--model "$OUT/baseline/model.safetensors" --mask-table "$TABLE") ;;
      start) args=(--model "$OUT/start.safetensors" --mask-table "$TABLE") ;;
    esac
    "$BIN/skd-extract" "${args[@]}" --macs-ratio "$ratio" --out "$OUT/$src-$n.safetensors" "${T[@]}" >"$OUT/$src-$n.extract.txt"
    "$BIN/skd-eval" --model "$OUT/$src-$n.safetensors" --data fashion-mnist --json "$OUT/$src-$n.json" "${T[@]}" \
      --log-level warn >/dev/null
    echo "$n/12 $src: $(python3 -c "import json; print(json.load(open('$OUT/$src-$n.json'))['top1'])") %"
  done
done
python3 - "$OUT" "$EPOCHS" "$PE" "$BUDGETS" "$START_LABEL" "$PIAD_ARGS" "${SOURCES[@]}" <<'PY'
import json, re, sys
out, epochs, pe, budgets, start_label, piad_args = sys.argv[1:7]
sources = sys.argv[7:]
epochs, pe = int(epochs), int(pe)
names = {"piad": f"PIAD {piad_args}".strip(), "baseline": "plain fine-tune", "start": start_label}
rows = []
for n in budgets.split():
    r = {"fraction": f"{n}:12"}
    for src in sources:
        j = json.load(open(f"{out}/{src}-{n}.json"))
        code = re.search(r"op code (\d+)", open(f"{out}/{src}-{n}.extract.txt").read()).group(1)
        r[src] = j["top1"]
        r["code"] = int(code)
        r["macs_paper"] = j["macs_paper"]
        r["params"] = j["params"]
    rows.append(r)
json.dump({"epochs": epochs, "progressive_epochs": pe, "start": start_label, "piad_args": piad_args,
           "columns": {s: names[s] for s in sources}, "rows": rows}, open(f"{out}/results.json", "w"), indent=1)
md = ["| MACs budget | op code | MACs (paper) | params | " + " | ".join(names[s] for s in sources) + " |",
      "|---|---:|---:|---:|" + "---:|" * len(sources)]
for r in rows:
    md.append(f"| {r['fraction']} | {r['code']} | {r['macs_paper'] / 1e6:.2f} M | {r['params'] / 1e6:.3f} M | "
              + " | ".join(f"{r[s]:.2f}" for s in sources) + " |")
open(f"{out}/results.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
CURVES=("$OUT/results.json:piad:PIAD${PIAD_ARGS:+ $PIAD_ARGS} ($EPOCHS epochs)")
[ "$BASELINE" = 1 ] && CURVES+=("$OUT/results.json:baseline:plain fine-tune ($EPOCHS epochs)")
CURVES+=("$OUT/results.json:start:$START_LABEL")
/usr/bin/python3 "$SRC/scripts/plot_results.py" "$OUT/accuracy_vs_macs.png" \
  "Sub-networks of the embedded Fashion-MNIST ViT (no fine-tuning after extraction)" "${CURVES[@]}"
rm -f "$OUT"/*-*.safetensors
echo "done in $(( $(date +%s) - start )) s: $OUT/results.md, $OUT/accuracy_vs_macs.png"
