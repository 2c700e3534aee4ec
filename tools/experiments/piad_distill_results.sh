#!/usr/bin/env bash
# PIAD with in-place distillation against the paper's PIAD on the embedded Fashion-MNIST model
# (docs/results.md §4): for every start (WPAC-converted, or the model as trained) and every
# piad_distill mode, tools/experiments/piad_results.sh with the same recipe (--config, default the demo's),
# sub-networks at n/12 of the MACs for n in --budgets (the run's own mask table), top-1 on the 10k
# test images, and the training step's images/s (mean of the epochs' metrics.jsonl images_per_s:
# the steps only, not the table updates or evaluation). Runs already finished under --out-dir
# (their results.json exists) are kept, so an interrupted sweep continues where it stopped.
# Writes DIR/summary.{json,md} and DIR/<start>.png (accuracy against MACs, one curve per mode).
# Usage: tools/experiments/piad_distill_results.sh [--config FILE] [--epochs N] [--starts "wpac nowpac"]
#          [--modes "none frozen full progressive"] [--budgets "2 3 4 6 8 12"] [--threads N]
#          [--piad-args "..."] [--tag TEXT] [--out-dir runs/piad_distill]
#          [--limit N] [--pe N] [--proxy-samples N] [--eval-limit N] (passed to tools/experiments/piad_results.sh)
#        env SKD_BIN: the apps folder (default build/apps)
source "$(dirname "$0")/../../scripts/lib/common.sh"
SRC=$SKD_ROOT
CONFIG="$SRC/configs/train/demo_fmnist.json"
EPOCHS=""
STARTS="wpac nowpac"
MODES="none frozen full progressive"
BUDGETS="2 3 4 6 8 12"
THREADS=$(nproc)
PIAD_ARGS=""
TAG=""
OUT=runs/piad_distill
PASS=()
skd_args --config CONFIG --epochs EPOCHS --starts STARTS --modes MODES --budgets BUDGETS --threads THREADS \
  --piad-args PIAD_ARGS --tag TAG --out-dir OUT --limit PASS++ --pe PASS++ --proxy-samples PASS++ --eval-limit PASS++ -- "$@"
for s in $STARTS; do
  case $s in wpac|nowpac) ;; *) skd_usage_error "--starts takes wpac and/or nowpac, not '$s'" ;; esac
done
for m in $MODES; do
  case $m in none|frozen|full|progressive) ;;
    *) skd_usage_error "--modes takes none, frozen, full, progressive, not '$m'" ;; esac
done
mkdir -p "$OUT"
for start in $STARTS; do
  for mode in $MODES; do
    dir="$OUT/$start-$mode"
    if [ -f "$dir/results.json" ]; then echo "== $start $mode: kept ($dir/results.json)"; continue; fi
    echo "== $start, piad_distill $mode"
    args=(--config "$CONFIG" --no-baseline --no-start --budgets "$BUDGETS" --threads "$THREADS" --out-dir "$dir"
          --piad-args "--piad-distill $mode $PIAD_ARGS")
    [ -n "$EPOCHS" ] && args+=(--epochs "$EPOCHS")
    args+=("${PASS[@]}")
    [ "$start" = nowpac ] && args+=(--no-wpac)
    bash "$SRC/tools/experiments/piad_results.sh" "${args[@]}" >"$dir.log" 2>&1 || { echo "failed: see $dir.log" >&2; exit 1; }
    tail -n 1 "$dir.log"
  done
done
python3 - "$OUT" "$TAG" <<'PY'
import glob, json, os, sys
out, tag = sys.argv[1:3]
modes = ["none", "frozen", "full", "progressive"]
runs = {}
for path in sorted(glob.glob(f"{out}/*-*/results.json")):
    start, mode = os.path.basename(os.path.dirname(path)).split("-", 1)
    res = json.load(open(path))
    metrics = [json.loads(l) for l in open(os.path.join(os.path.dirname(path), "piad", "metrics.jsonl"))]
    cfg = json.load(open(os.path.join(os.path.dirname(path), "piad", "config.json")))
    runs.setdefault(start, {})[mode] = {
        "rows": {r["fraction"]: {"top1": r["piad"], "code": r["code"], "macs_paper": r["macs_paper"]} for r in res["rows"]},
        "images_per_s": sum(m["images_per_s"] for m in metrics) / len(metrics),
        "piad_seconds": res["seconds"]["piad"], "epochs": res["epochs"], "limit": res["limit"],
        "distill_weight": cfg["piad_distill_weight"], "distill_temperature": cfg["piad_distill_temperature"],
        "sandwich": cfg["piad_sandwich"]}
json.dump({"tag": tag, "runs": runs}, open(f"{out}/summary.json", "w"), indent=1)
md = []
for start, by_mode in runs.items():
    present = [m for m in modes if m in by_mode]
    fractions = list(next(iter(by_mode.values()))["rows"])
    md += [f"### {'WPAC start' if start == 'wpac' else 'no WPAC'}{' (' + tag + ')' if tag else ''}", "",
           "| MACs budget | " + " | ".join(present) + " |", "|---|" + "---:|" * len(present)]
    for f in fractions:
        cells = []
        for m in present:
            r = by_mode[m]["rows"].get(f)
            cells.append("–" if r is None else f"{r['top1']:.2f}")
        md.append(f"| {f} | " + " | ".join(cells) + " |")
    base = by_mode.get("none")
    md.append("| images/s (training step) | " + " | ".join(f"{by_mode[m]['images_per_s']:.0f}" for m in present) + " |")
    if base:
        md.append("| step time vs none | " + " | ".join(f"{base['images_per_s'] / by_mode[m]['images_per_s']:.2f}x"
                                                      for m in present) + " |")
    md.append("| PIAD wall-clock | " + " | ".join(f"{by_mode[m]['piad_seconds']} s" for m in present) + " |")
    md.append("")
open(f"{out}/summary.md", "w").write("\n".join(md))
print("\n".join(md))
PY
for start in $STARTS; do
  curves=()
  for mode in $MODES; do
    [ -f "$OUT/$start-$mode/results.json" ] && curves+=("$OUT/$start-$mode/results.json:piad:piad_distill $mode")
  done
  label=$([ "$start" = wpac ] && echo "WPAC start" || echo "no WPAC")
  /usr/bin/python3 "$SRC/tools/experiments/plot_results.py" "$OUT/$start.png" \
    "PIAD distillation modes, $label${TAG:+ ($TAG)}: top-1 against MACs" "${curves[@]}"
done
echo "summary: $OUT/summary.md, $OUT/summary.json, plots: $OUT/<start>.png"
