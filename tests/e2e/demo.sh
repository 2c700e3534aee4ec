#!/usr/bin/env bash
# End-to-end: a miniature of scripts/demo.sh -- the pipeline script it runs (tools/experiments/piad_results.sh)
# with the demo's recipe (configs/train/demo_fmnist.json) cut down to a tiny schedule and few images:
# WPAC -> PIAD -> extract at 3 budgets from the super-network, the WPAC model and the embedded model
# -> eval -> results.{json,md} + accuracy_vs_macs.png. Checks the outputs' content and invariants
# (budgets respected, code 0 at full budget, WPAC preserves the function), then fine-tunes one
# extracted sub-network with the shipped configs/train/finetune_fmnist.json.
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR.
set -uo pipefail
source "$(dirname "$0")/common.bash"
D="$W/demo"

check "pipeline, tiny schedule" 0 env SKD_BIN="$BIN" bash "$SRC/tools/experiments/piad_results.sh" \
  --config "$SRC/configs/train/demo_fmnist.json" --no-baseline --with-original --budgets "3 6 12" --out-dir "$D" \
  --limit 512 --epochs 2 --pe 2 --proxy-samples 128 --eval-limit 500 --threads 2 \
  --piad-args "--batch-size 64 --no-eval --piad-proxy-samples 128 --piad-proxy-batch 32 --log-every 0"
expect_in "PIAD logged its table updates" "$W/err" "PIAD epoch 1: +"
expect_in "per-item progress" "$W/out" "\[9/9\] 12/12 original"
R="$D/results.json"
[ "$(json "$R" 'sorted(d["columns"])')" = "['original', 'piad', 'start']" ] && ok "three curves" || bad "columns: $(json "$R" 'd["columns"]')"
[ "$(json "$R" '(d["epochs"], d["progressive_epochs"], d["limit"])')" = "(2, 2, 512)" ] && ok "records the schedule" \
  || bad "schedule: $(json "$R" '(d["epochs"], d["progressive_epochs"], d["limit"])')"
[ "$(json "$R" 'sorted(d["seconds"])')" = "['convert', 'extract_eval', 'piad']" ] && ok "stage times" || bad "stage times"
[ "$(json "$R" '[r["images"] for r in d["rows"]]')" = "[500, 500, 500]" ] && ok "evaluated on 500 images" \
  || bad "images: $(json "$R" '[r["images"] for r in d["rows"]]')"
full=$(json "$R" 'd["rows"][-1]["macs_paper"]')
[ "$(json "$R" 'd["rows"][-1]["code"]')" = 0 ] && ok "12:12 is code 0 ($full MACs)" || bad "12:12 code"
[ "$(json "$R" "all(r['macs_paper'] <= int(r['fraction'].split(':')[0]) * $full / 12 for r in d['rows'])")" = True ] \
  && ok "every sub-network within its budget" || bad "a sub-network over its budget"
[ "$(json "$R" '[r["code"] for r in d["rows"]] == sorted([r["code"] for r in d["rows"]], reverse=True) and d["rows"][0]["code"] > 0')" = True ] \
  && ok "smaller budget, larger op code" || bad "codes: $(json "$R" '[r["code"] for r in d["rows"]]')"
# WPAC only changes the basis: at full width it classifies as the embedded model does (logits within
# 1e-4; one flipped near-tie of 500 would be 0.2).
[ "$(json "$R" 'abs(d["rows"][-1]["start"] - d["rows"][-1]["original"]) <= 0.2')" = True ] \
  && ok "WPAC model at 12:12 == embedded model ($(json "$R" 'd["rows"][-1]["original"]') %)" \
  || bad "WPAC changed the full model's accuracy: $(json "$R" 'd["rows"][-1]')"
[ "$(json "$R" 'all(r[c] > 50 for r in d["rows"][1:] for c in ("piad", "start"))')" = True ] \
  && ok "SKD sub-networks at 6:12 and 12:12 above 50 %" || bad "accuracies: $(json "$R" 'd["rows"]')"
[ "$(grep -c '^| [0-9]*:12 |' "$D/results.md")" = 3 ] && ok "results.md has 3 rows" || bad "results.md rows"
expect_in "results.md names the curves" "$D/results.md" "| WPAC + PIAD .* | WPAC only | embedded model, no SKD |"
if [ "$(head -c 4 "$D/accuracy_vs_macs.png" | od -An -tx1 | tr -d ' ')" = 89504e47 ]; then ok "PNG plot"; else bad "no PNG plot"; fi
[ "$(grep -c '^# ' "$D/accuracy_vs_macs.dat")" = 3 ] && ok "plot data has 3 curves" || bad "plot data"
[ -z "$(ls "$D"/*-*.safetensors 2>/dev/null)" ] && ok "temporary sub-networks removed" || bad "sub-networks left in $D"

check "extract half the MACs" 0 "$BIN/skd-extract" --supernet "$D/piad/model.safetensors" --macs-ratio 0.5 \
  --out "$W/half.safetensors" --threads 2
check "fine-tune it with configs/train/finetune_fmnist.json" 0 "$BIN/skd-train" \
  --config "$SRC/configs/train/finetune_fmnist.json" --model "$W/half.safetensors" --limit 256 --batch-size 64 \
  --no-eval --threads 2 --log-every 0 --run-dir "$W/ft"
[ "$(manifest "$W/ft/model.safetensors" 'm["widths"]')" = "$(manifest "$W/half.safetensors" 'm["widths"]')" ] \
  && ok "fine-tuned sub-network keeps its widths" || bad "widths changed by fine-tuning"

check "missing --config" 2 env SKD_BIN="$BIN" bash "$SRC/tools/experiments/piad_results.sh" --config "$W/nope.json" --out-dir "$W/x"
expect_in "names the file" "$W/err" "nope.json: no such file"
check "unknown option" 2 env SKD_BIN="$BIN" bash "$SRC/tools/experiments/piad_results.sh" --bogus
echo "demo e2e: $pass ok, $fails failed"
[ "$fails" -eq 0 ]
