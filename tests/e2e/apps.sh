#!/usr/bin/env bash
# End-to-end: the four apps as a user runs them, on the fixtures and Fashion-MNIST.
# Env (set by ctest): SKD_BIN (apps folder), SKD_FIXTURES, SKD_SOURCE_DIR.
set -uo pipefail
FIX="${SKD_FIXTURES:?}/timm"
[ -d "$FIX" ] || { echo "FIXTURES MISSING: $FIX"; exit 1; }
source "$(dirname "$0")/common.bash"

for app in skd-convert skd-train skd-extract skd-eval; do check "$app --help" 0 "$BIN/$app" --help; done

# Summary without weights: pinned DeiT-S numbers.
check "summary deit_small" 0 "$BIN/skd-eval" --arch deit_small --summary --json "$W/s.json"
expect_in "summary params" "$W/s.json" '"params": 22050664'
expect_in "summary macs" "$W/s.json" '"macs_paper": 4256878312'

# Outputs on the fixture inputs reproduce timm (foreign .pth with --arch).
check "eval inputs vit_micro" 0 "$BIN/skd-eval" --model "$FIX/vit_micro_32.pth" --arch "$FIX/vit_micro_32.json" \
  --inputs "$FIX/vit_micro_32.input.safetensors" --save-outputs "$W/o.safetensors"
check "vit_micro outputs match timm" 0 python3 "$SRC/tools/dev/compare_outputs.py" "$W/o.safetensors" \
  "$FIX/vit_micro_32.output.safetensors" logits,features,forward_features

# Convert a legacy Swin checkpoint into an artifact; the artifact needs no --arch.
check "convert legacy swin" 0 "$BIN/skd-convert" --model "$FIX/swin_micro_32.legacy.pth" \
  --arch "$FIX/swin_micro_32.json" --out "$W/swin.safetensors"
check "eval swin artifact" 0 "$BIN/skd-eval" --model "$W/swin.safetensors" \
  --inputs "$FIX/swin_micro_32.input.safetensors" --save-outputs "$W/so.safetensors"
check "swin outputs match timm" 0 python3 "$SRC/tools/dev/compare_outputs.py" "$W/so.safetensors" \
  "$FIX/swin_micro_32.output.safetensors" logits,features,forward_features

# Extract a half-width sub-network: fewer MACs, loads standalone.
check "extract half" 0 "$BIN/skd-extract" --model "$W/swin.safetensors" --attn-keep 0.5 --mlp-keep 0.5 \
  --out "$W/half.safetensors"
check "summary half" 0 "$BIN/skd-eval" --model "$W/half.safetensors" --summary --json "$W/h.json"
expect_in "half params" "$W/h.json" '"params": '
check "extract widths" 0 "$BIN/skd-extract" --model "$W/swin.safetensors" --widths 8:64,0:128,16:0,16:256 \
  --out "$W/w.safetensors"

# Train a few steps on Fashion-MNIST, then evaluate the result on the test split.
check "train micro" 0 "$BIN/skd-train" --arch "$FIX/vit_micro_32.json" --data fashion-mnist --limit 512 \
  --epochs 1 --batch-size 64 --no-eval --out "$W/t.safetensors" --run-dir "$W/run" --threads 2
expect_in "train metrics" "$W/run/metrics.jsonl" '"train_loss"'
check "eval fashion-mnist" 0 "$BIN/skd-eval" --model "$W/t.safetensors" --data fashion-mnist --limit 300 \
  --json "$W/e.json"
for key in top1 top5 loss images images_per_s macs_paper macs_full params bad_images model data; do
  expect_in "eval json $key" "$W/e.json" "\"$key\""
done
expect_in "eval images" "$W/e.json" '"images": 300'

# Bad input: clear errors and the documented exit codes.
check "missing file" 1 "$BIN/skd-eval" --model "$W/nope.safetensors" --arch deit_tiny --summary
expect_in "missing file named" "$W/err" "nope.safetensors"
check "unknown flag" 2 "$BIN/skd-eval" --bogus
check "unknown arch" 2 "$BIN/skd-eval" --arch resnet50 --summary
check "foreign without arch" 2 "$BIN/skd-eval" --model "$FIX/vit_micro_32.safetensors" --summary
expect_in "arch hint" "$W/err" "--arch"
check "wrong arch" 1 "$BIN/skd-eval" --model "$FIX/vit_micro_32.safetensors" --arch deit_tiny --summary
expect_in "wrong arch names key" "$W/err" "blocks.0.attn.qkv.weight"
printf 'garbage' >"$W/bad.pth"
check "garbage checkpoint" 1 "$BIN/skd-convert" --model "$W/bad.pth" --arch deit_tiny --out "$W/x.safetensors"
[ ! -e "$W/x.safetensors" ] && { echo "ok   no partial output"; pass=$((pass + 1)); } || { echo "FAIL partial output"; fails=$((fails + 1)); }
check "bad widths" 2 "$BIN/skd-extract" --model "$W/swin.safetensors" --widths 8:64 --out "$W/y.safetensors"

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
