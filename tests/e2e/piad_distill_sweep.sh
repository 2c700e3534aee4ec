#!/usr/bin/env bash
# End-to-end: tools/experiments/piad_distill_results.sh (docs/results.md §5) in miniature: two piad_distill
# modes on the embedded model without WPAC, a tiny schedule, two budgets; summary.{json,md} and the
# plot; a rerun keeps the finished runs; bad arguments are refused before any work.
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR.
set -uo pipefail
source "$(dirname "$0")/common.bash"
O="$W/sweep"
ARGS=(--starts nowpac --modes "none frozen" --budgets "6 12" --limit 256 --epochs 1 --pe 1 --eval-limit 200
      --threads 2 --out-dir "$O"
      --piad-args "--batch-size 64 --no-eval --piad-proxy-samples 64 --piad-proxy-batch 32 --log-every 0")
check "sweep: none and frozen" 0 env SKD_BIN="$BIN" bash "$SRC/tools/experiments/piad_distill_results.sh" "${ARGS[@]}"
S="$O/summary.json"
[ "$(json "$S" 'sorted(d["runs"]["nowpac"])')" = "['frozen', 'none']" ] && ok "both modes in the summary" \
  || bad "summary runs: $(json "$S" 'd["runs"]')"
[ "$(json "$S" 'sorted(d["runs"]["nowpac"]["frozen"]["rows"])')" = "['12:12', '6:12']" ] && ok "two budgets" \
  || bad "budgets: $(json "$S" 'd["runs"]["nowpac"]["frozen"]["rows"]')"
[ "$(json "$S" 'all(r["images_per_s"] > 0 and r["epochs"] == 1 for r in d["runs"]["nowpac"].values())')" = True ] \
  && ok "images/s and schedule recorded" || bad "runs: $(json "$S" 'd["runs"]')"
[ "$(json "$O/nowpac-frozen/piad/config.json" 'd["piad_distill"]')" = frozen ] && ok "the frozen run used piad_distill frozen" \
  || bad "config of the frozen run"
[ "$(json "$O/nowpac-none/piad/config.json" 'd["piad_distill"]')" = none ] && ok "the none run is the paper's" \
  || bad "config of the none run"
expect_in "summary.md has the step-time row" "$O/summary.md" "| step time vs none | 1.00x |"
if [ "$(head -c 4 "$O/nowpac.png" | od -An -tx1 | tr -d ' ')" = 89504e47 ]; then ok "PNG plot"; else bad "no PNG plot"; fi
check "rerun keeps the finished runs" 0 env SKD_BIN="$BIN" bash "$SRC/tools/experiments/piad_distill_results.sh" "${ARGS[@]}"
expect_in "says it kept them" "$W/out" "== nowpac frozen: kept"
check "unknown mode" 2 env SKD_BIN="$BIN" bash "$SRC/tools/experiments/piad_distill_results.sh" --modes "teacher" --out-dir "$W/x"
expect_in "names the accepted modes" "$W/err" "none, frozen, full, progressive"
check "unknown start" 2 env SKD_BIN="$BIN" bash "$SRC/tools/experiments/piad_distill_results.sh" --starts "imagenet" --out-dir "$W/x"
[ ! -e "$W/x" ] && ok "nothing made on bad arguments" || bad "$W/x was made"
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
