#!/usr/bin/env bash
# The SKD pipeline on the embedded Fashion-MNIST model, with comparison curves (the shape of paper
# Table 7); scripts/demo.sh runs it with configs/train/demo_fmnist.json.
#   1. the starting network: WPAC (skd-convert, --proxy-samples images, default 1024), or with
#      --no-wpac the embedded model as it is
#   2. PIAD: skd-train --mode piad, with the recipe of --config (a configs/train JSON) or the
#      built-in one (4 epochs, table updates in the first 3), plus any --piad-args (e.g.
#      "--piad-sandwich", "--piad-sensitivity accuracy"); --epochs/--pe/--limit override either
#   3. baseline: the same recipe and epochs without PIAD (plain fine-tune); --no-baseline skips it
#   4. sub-networks at n/12 of the MACs for n in --budgets: the largest code of PIAD's mask table
#      within the budget (skd-extract --macs-ratio), cut from the PIAD super-network, from the
#      baseline, from the starting network before any training and, with --with-original, from the
#      embedded model without WPAC (same widths each time), no fine-tuning; top-1 on the 10k test
#      set (or its first --eval-limit images)
#   5. DIR/results.{json,md} and DIR/accuracy_vs_macs.png (gnuplot)
# --no-start leaves out the starting network's column (its sub-networks use the run's own table, so
# it is one more evaluation per budget; tools/experiments/piad_distill_results.sh runs many PIAD variants).
# Usage: tools/experiments/piad_results.sh [--config FILE] [--epochs N] [--pe N] [--limit N] [--out-dir runs/piad_results]
#          [--threads N] [--no-wpac] [--no-baseline] [--no-start] [--with-original] [--piad-args "..."]
#          [--budgets "2 3 4 6 8 10 12"] [--proxy-samples 1024] [--eval-limit N] [--title TEXT]
#        env SKD_BIN: the apps folder (default build/apps)
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
BIN="${SKD_BIN:-$SRC/build/apps}"
CONFIG=""
EPOCHS=""
PE=""
LIMIT=""
OUT=runs/piad_results
THREADS=$(nproc)
WPAC=1
BASELINE=1
ORIGINAL=0
START=1
PIAD_ARGS=""
BUDGETS="2 3 4 6 8 10 12"
PROXY=1024
EVAL_LIMIT=0
TITLE="Sub-networks of the embedded Fashion-MNIST ViT (no fine-tuning after extraction)"
skd_args --config CONFIG --epochs EPOCHS --pe PE --limit LIMIT --out-dir OUT --threads THREADS \
  --no-wpac WPAC=0 --no-baseline BASELINE=0 --no-start START=0 --with-original ORIGINAL=1 --piad-args PIAD_ARGS \
  --budgets BUDGETS --proxy-samples PROXY --eval-limit EVAL_LIMIT --title TITLE -- "$@"
command -v gnuplot >/dev/null || { echo "gnuplot is needed for the plot (apt-get install gnuplot-nox)" >&2; exit 2; }
[ -z "$CONFIG" ] || [ -f "$CONFIG" ] || skd_usage_error "--config $CONFIG: no such file"
if [ "$WPAC" = 0 ] && [ "$ORIGINAL" = 1 ]; then
  skd_usage_error "--with-original adds the embedded model without WPAC, which --no-wpac already starts from"
fi
mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE
T=(--threads "$THREADS")
if [ -n "$CONFIG" ]; then
  RECIPE=(--config "$CONFIG")
else
  RECIPE=(--data fashion-mnist --epochs 4 --piad-progressive-epochs 3 --batch-size 128 --lr 1e-4 --unscale-lr
          --min-lr 1e-5 --warmup-epochs 0 --mixup 0 --cutmix 0 --drop-path 0 --workers 1 --log-every 100)
fi
[ -n "$EPOCHS" ] && RECIPE+=(--epochs "$EPOCHS")
[ -n "$LIMIT" ] && RECIPE+=(--limit "$LIMIT")
RECIPE+=("${T[@]}")
PIAD_ONLY=()
[ -n "$PE" ] && PIAD_ONLY+=(--piad-progressive-epochs "$PE")
EVAL_ARGS=(--data fashion-mnist "${T[@]}")
[ "$EVAL_LIMIT" -gt 0 ] && EVAL_ARGS+=(--limit "$EVAL_LIMIT")
start=$(date +%s)
stage_start=$start
STAGES=()
stage_done() {  # name: records and prints the seconds since the previous stage ended
  local now
  now=$(date +%s)
  STAGES+=("$1=$((now - stage_start))")
  echo "-- $1 took $((now - stage_start)) s (total $((now - start)) s)"
  stage_start=$now
}
if [ "$WPAC" = 1 ]; then
  START_LABEL="WPAC only"
  echo "== WPAC: skd-convert, $PROXY proxy images"
  "$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" --data fashion-mnist --proxy-samples "$PROXY" \
    --out "$OUT/start.safetensors" "${T[@]}"
else
  START_LABEL="embedded model, no WPAC"
  cp "$SRC/assets/vit_fmnist.safetensors" "$OUT/start.safetensors"
fi
stage_done convert
echo "== PIAD: skd-train --mode piad ${CONFIG:+--config $CONFIG} $PIAD_ARGS"
rm -rf "$OUT/piad" "$OUT/baseline"
# The mode flag goes last so that a --config recipe cannot turn PIAD into plain training.
# shellcheck disable=SC2086  # PIAD_ARGS is a list of flags
"$BIN/skd-train" --model "$OUT/start.safetensors" "${RECIPE[@]}" "${PIAD_ONLY[@]}" $PIAD_ARGS --mode piad \
  --run-dir "$OUT/piad"
stage_done piad
SOURCES=(piad)
if [ "$BASELINE" = 1 ]; then
  echo "== baseline: the same recipe without PIAD"
  "$BIN/skd-train" --model "$OUT/start.safetensors" "${RECIPE[@]}" --mode train --run-dir "$OUT/baseline"
  stage_done baseline
  SOURCES+=(baseline)
fi
[ "$START" = 1 ] && SOURCES+=(start)
[ "$ORIGINAL" = 1 ] && SOURCES+=(original)
TABLE="$OUT/piad/mask_table.json"
n_budgets=$(wc -w <<<"$BUDGETS")
total=$((n_budgets * ${#SOURCES[@]}))
echo "== $total sub-networks: skd-extract --macs-ratio n/12 then skd-eval, for n in $BUDGETS, from: ${SOURCES[*]}"
i=0
for n in $BUDGETS; do
  ratio=$(python3 -c "print($n / 12)")
  for src in "${SOURCES[@]}"; do
    case $src in
      piad) args=(--supernet "$OUT/piad/model.safetensors") ;;
      baseline) args=(--model "$OUT/baseline/model.safetensors" --mask-table "$TABLE") ;;
      start) args=(--model "$OUT/start.safetensors" --mask-table "$TABLE") ;;
      original) args=(--model "$SRC/assets/vit_fmnist.safetensors" --mask-table "$TABLE") ;;
    esac
    "$BIN/skd-extract" "${args[@]}" --macs-ratio "$ratio" --out "$OUT/$src-$n.safetensors" "${T[@]}" >"$OUT/$src-$n.extract.txt"
    "$BIN/skd-eval" --model "$OUT/$src-$n.safetensors" --json "$OUT/$src-$n.json" "${EVAL_ARGS[@]}" \
      --log-level warn >/dev/null
    i=$((i + 1))
    echo "[$i/$total] $n/12 $src: top-1 $(python3 -c "import json; print(json.load(open('$OUT/$src-$n.json'))['top1'])") % ($(( $(date +%s) - start )) s)"
  done
done
stage_done extract_eval
python3 - "$OUT" "$BUDGETS" "$START_LABEL" "$PIAD_ARGS" "${STAGES[*]}" "${SOURCES[@]}" <<'PY'
import json, re, sys
out, budgets, start_label, piad_args, stages = sys.argv[1:6]
sources = sys.argv[6:]
cfg = json.load(open(f"{out}/piad/config.json"))
names = {"piad": f"WPAC + PIAD {piad_args}".strip() if start_label == "WPAC only" else f"PIAD {piad_args}".strip(),
         "baseline": "plain fine-tune", "start": start_label, "original": "embedded model, no SKD"}
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
        r["images"] = j["images"]
    rows.append(r)
seconds = {k: int(v) for k, v in (s.split("=") for s in stages.split())}
json.dump({"epochs": cfg["epochs"], "progressive_epochs": cfg["piad_progressive_epochs"], "limit": cfg["limit"],
           "start": start_label, "piad_args": piad_args, "columns": {s: names[s] for s in sources},
           "seconds": seconds, "rows": rows}, open(f"{out}/results.json", "w"), indent=1)
md = ["| MACs budget | op code | MACs (paper) | params | " + " | ".join(names[s] for s in sources) + " |",
      "|---|---:|---:|---:|" + "---:|" * len(sources)]
for r in rows:
    md.append(f"| {r['fraction']} | {r['code']} | {r['macs_paper'] / 1e6:.2f} M | {r['params'] / 1e6:.3f} M | "
              + " | ".join(f"{r[s]:.2f}" for s in sources) + " |")
images = rows[0]["images"]
md += ["", f"Top-1 (%) on {images} Fashion-MNIST test images; PIAD: {cfg['epochs']} epochs"
       + (f" on the first {cfg['limit']} training images" if cfg["limit"] else "")
       + f", mask-table updates before the first {cfg['piad_progressive_epochs']}; no fine-tuning after extraction."]
open(f"{out}/results.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
LABEL_EPOCHS=$(python3 -c "import json; print(json.load(open('$OUT/results.json'))['epochs'])")
CURVES=("$OUT/results.json:piad:$(python3 -c "import json; print(json.load(open('$OUT/results.json'))['columns']['piad'])") ($LABEL_EPOCHS epochs)")
[ "$BASELINE" = 1 ] && CURVES+=("$OUT/results.json:baseline:plain fine-tune ($LABEL_EPOCHS epochs)")
[ "$START" = 1 ] && CURVES+=("$OUT/results.json:start:$START_LABEL")
[ "$ORIGINAL" = 1 ] && CURVES+=("$OUT/results.json:original:embedded model, no SKD")
/usr/bin/python3 "$SRC/tools/experiments/plot_results.py" "$OUT/accuracy_vs_macs.png" "$TITLE" "${CURVES[@]}"
rm -f "$OUT"/*-*.safetensors
echo "done in $(( $(date +%s) - start )) s: $OUT/results.md, $OUT/results.json, $OUT/accuracy_vs_macs.png"
