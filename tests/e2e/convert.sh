#!/usr/bin/env bash
# End-to-end: skd-convert (WPAC and the baseline criteria) and skd-eval --attn-keep.
#  - WPAC on the embedded Fashion-MNIST model: report (proxy count, spectra, captured variance),
#    provenance, logits preserved within 1e-4, and at 1/4 of the head dims far better than random
#  - the fixture ViT and Swin (foreign .pth + --arch): converted outputs still match timm's
#  - torchrun --no_python, 2 processes over Gloo == 1 process
#  - bad input: clear errors, exit codes, no partial output
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR, SKD_FIXTURES.
set -uo pipefail
FIX="${SKD_FIXTURES:?}/timm"
source "$(dirname "$0")/common.bash"
MODEL="$SRC/assets/vit_fmnist.safetensors"
COMMON=(--threads 2 --data fashion-mnist --proxy-samples 512)

# --- WPAC on the embedded model ------------------------------------------------------------------
check "wpac convert" 0 "$BIN/skd-convert" --model "$MODEL" "${COMMON[@]}" --out "$W/wpac.safetensors"
expect_in "summary line" "$W/out" "wpac: 512 proxy images"
R="$W/wpac.report.json"
[ "$(json "$R" 'd["proxy"]["images"]')" = 512 ] && ok "report: 512 proxy images" || bad "report proxy count"
[ "$(json "$R" 'len(d["blocks"][0]["attention"][0]["v"]["eigenvalues"])')" = 32 ] \
  && ok "report: 32 eigenvalues per head" || bad "report spectrum length"
[ "$(json "$R" 'd["mean_captured"]["v"]["0.25"] > 0.5 and d["blocks"][5]["attention"][1]["qk"]["captured"]["0.75"] <= 1')" = True ] \
  && ok "report: captured variance" || bad "report captured variance"
[ "$(json "$R" 'd["function_check"]["max_abs_logit_diff"] < 1e-4')" = True ] && ok "report: function check" \
  || bad "function check $(json "$R" 'd["function_check"]')"
check "eval summary of the artifact" 0 "$BIN/skd-eval" --model "$W/wpac.safetensors" --summary
manifest "$W/wpac.safetensors" 'm["provenance"]["conversion"]' >"$W/meta"
expect_in "provenance names the conversion" "$W/meta" "'criterion': 'wpac'"

# Function preserved on real test images.
check "eval original" 0 "$BIN/skd-eval" --model "$MODEL" --data fashion-mnist --limit 500 --save-outputs "$W/o0.safetensors"
check "eval converted" 0 "$BIN/skd-eval" --model "$W/wpac.safetensors" --data fashion-mnist --limit 500 \
  --save-outputs "$W/o1.safetensors"
if python3 "$SRC/tools/dev/compare_outputs.py" "$W/o0.safetensors" "$W/o1.safetensors" logits --atol 1e-4 >"$W/cmp"; then
  ok "logits preserved ($(tail -1 "$W/cmp"))"
else
  bad "logits preserved"; cat "$W/cmp"
fi

# 1/4 of every head's q/k/v dims: WPAC keeps the accuracy, a random order does not.
check "random criterion (no data)" 0 "$BIN/skd-convert" --model "$MODEL" --criterion random --out "$W/random.safetensors"
check "eval wpac 1:4" 0 "$BIN/skd-eval" --model "$W/wpac.safetensors" --data fashion-mnist --limit 1000 --attn-keep 0.25 \
  --json "$W/w.json"
check "eval random 1:4" 0 "$BIN/skd-eval" --model "$W/random.safetensors" --data fashion-mnist --limit 1000 \
  --attn-keep 0.25 --json "$W/r.json"
w=$(json "$W/w.json" 'd["top1"]'); r=$(json "$W/r.json" 'd["top1"]')
[ "$(python3 -c "print($w > 80 and $w > $r + 20)")" = True ] && ok "1:4 wpac $w% vs random $r%" || bad "1:4 wpac $w% vs random $r%"
check "summary at full width" 0 "$BIN/skd-eval" --model "$W/wpac.safetensors" --summary --json "$W/full.json"
[ "$(json "$W/w.json" 'd["macs_paper"]')" -lt "$(json "$W/full.json" 'd["macs_paper"]')" ] && ok "fewer MACs at 1:4" \
  || bad "MACs at 1:4"

# --- fixtures: foreign checkpoints, ViT and Swin; outputs still equal timm's ---------------------
for m in vit_micro_32 swin_micro_32; do
  check "convert $m (WPAC, Fashion-MNIST at 32x32x3)" 0 "$BIN/skd-convert" --model "$FIX/$m.pth" \
    --arch "$FIX/$m.json" --data fashion-mnist --proxy-samples 64 --batch-size 32 --criterion wpac --out "$W/$m.safetensors"
  check "eval $m inputs" 0 "$BIN/skd-eval" --model "$W/$m.safetensors" --inputs "$FIX/$m.input.safetensors" \
    --save-outputs "$W/$m.out.safetensors"
  if python3 "$SRC/tools/dev/compare_outputs.py" "$W/$m.out.safetensors" "$FIX/$m.output.safetensors" logits,features \
    --atol 1e-4 >"$W/cmp"; then ok "$m converted == timm ($(tail -1 "$W/cmp"))"; else bad "$m converted == timm"; cat "$W/cmp"; fi
done

# --- torchrun: 2 processes == 1 process ---------------------------------------------------------
D=(--model "$MODEL" --data fashion-mnist --proxy-samples 256 --batch-size 32 --threads 1)
check "1 process" 0 "$BIN/skd-convert" "${D[@]}" --out "$W/one.safetensors"
if command -v "$TORCHRUN" >/dev/null; then
  check "torchrun --no_python, 2 processes" 0 "$TORCHRUN" --no_python --nproc_per_node=2 --master_port="$(free_port)" \
    --redirects 9:1 --tee 9:1 "$BIN/skd-convert" "${D[@]}" --out "$W/two.safetensors"
  expect_in "2 processes over gloo" "$W/err" "(torchrun, gloo)"
  same_weights "2 processes equal 1 process" "$W/two.safetensors" "$W/one.safetensors" 1e-5
  [ "$(json "$W/two.report.json" 'd["world_size"]')" = 2 ] && ok "report says world_size 2" || bad "world_size"
else
  bad "$TORCHRUN not found (scripts/setup.sh installs python3-torch)"
fi

# --- bad input -----------------------------------------------------------------------------------
check "proxy smaller than a batch" 2 "$BIN/skd-convert" --model "$MODEL" --data fashion-mnist --proxy-samples 10 \
  --batch-size 64 --out "$W/bad1.safetensors"
expect_in "names --proxy-samples" "$W/err" "smaller than one batch"
check "more proxy images than data" 2 "$BIN/skd-convert" --model "$MODEL" --data fashion-mnist --split test \
  --proxy-samples 20000 --out "$W/bad2.safetensors"
expect_in "names the dataset size" "$W/err" "exceeds the 10000 images"
check "unknown criterion" 2 "$BIN/skd-convert" --model "$MODEL" --data fashion-mnist --criterion hessian --out "$W/bad3.safetensors"
expect_in "lists the criteria" "$W/err" "wpac, taylor, taylor2, magnitude, random"
check "taylor without data" 2 "$BIN/skd-convert" --model "$MODEL" --criterion taylor --out "$W/bad4.safetensors"
expect_in "asks for --data" "$W/err" "give --data"
check "unknown architecture" 2 "$BIN/skd-convert" --model "$FIX/vit_micro_32.pth" --arch deit_gigantic --data fashion-mnist \
  --out "$W/bad5.safetensors"
expect_in "names the architecture" "$W/err" "deit_gigantic"
check "checkpoint/arch mismatch" 1 "$BIN/skd-convert" --model "$FIX/vit_micro_32.pth" --arch deit_tiny --data fashion-mnist \
  --out "$W/bad6.safetensors"
expect_in "names the key and the architecture" "$W/err" "blocks.0.attn.qkv.weight' has shape.*is the architecture right"
mkdir -p "$W/folder/a" "$W/folder/b"
cp "$SKD_FIXTURES/transforms/small_64x48.png" "$W/folder/a/x.png"
check "a class with no samples" 2 "$BIN/skd-convert" --model "$FIX/vit_micro_32.pth" --arch "$FIX/vit_micro_32.json" --data "$W/folder" --proxy-samples 1 --batch-size 1 \
  --out "$W/bad7.safetensors"
expect_in "names the empty class" "$W/err" "holds no image files"
check "missing data folder" 2 "$BIN/skd-convert" --model "$MODEL" --data "$W/nope" --out "$W/bad8.safetensors"
# A 1-channel model reads image folders as grayscale (e2e.finetune_own_data); the empty class is still refused.
check "image folder for a 1-channel model, a class with no samples" 2 "$BIN/skd-convert" --model "$MODEL" --data "$W/folder" \
  --out "$W/bad9.safetensors"
expect_in "names the empty class" "$W/err" "folder/b' holds no image files"
check "attn-keep keeps nothing" 2 "$BIN/skd-eval" --model "$MODEL" --data fashion-mnist --attn-keep 0.01
expect_in "names --attn-keep" "$W/err" "--attn-keep 0.01 keeps nothing"
if ls "$W"/bad*.safetensors "$W"/bad*.json >/dev/null 2>&1; then bad "failed runs left files"; else ok "no partial output"; fi

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
