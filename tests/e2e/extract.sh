#!/usr/bin/env bash
# End-to-end: super-networks and skd-extract by op code / MACs budget.
#  - an official-schema mask_table.json attached to a foreign .pth by skd-convert --mask-table
#  - skd-extract --list / --op-code / --macs / --macs-ratio / -1, from the artifact and from the .pth
#  - --macs-ratio 4/12, 4:12 (the paper's n:12) and 0.333...: the same code; bad ratios name the forms
#  - code 0 equals the full model (timm's outputs), MACs of extracted artifacts equal the table's
#  - budgets below the smallest sub-network, unknown codes, bad tables: exit 2 naming the problem
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR, SKD_FIXTURES.
set -uo pipefail
FIX="${SKD_FIXTURES:?}/timm"
source "$(dirname "$0")/common.bash"
manifest_macs() { manifest "$1" 'm["macs"]["paper"]'; }  # artifact -> paper MACs in its manifest
M=vit_micro_32
# vit_micro_32: 4 blocks, head dim 16, MLP 256; codes 0..4 shrink one module at a time.
cat >"$W/mask_table.json" <<'JSON'
{"0.attn": {"0": 16, "-1": 16, "1": 16, "2": 16, "3": 16, "4": 16},
 "0.mlp":  {"0": 256, "-1": 0, "1": 256, "2": 256, "3": 0, "4": 0},
 "1.attn": {"0": 16, "-1": 16, "1": 16, "2": 16, "3": 16, "4": 16},
 "1.mlp":  {"0": 256, "-1": 128, "1": 256, "2": 256, "3": 256, "4": 128},
 "2.attn": {"0": 16, "-1": 0, "1": 16, "2": 16, "3": 16, "4": 0},
 "2.mlp":  {"0": 256, "-1": 256, "1": 256, "2": 256, "3": 256, "4": 256},
 "3.attn": {"0": 16, "-1": 8, "1": 16, "2": 8, "3": 8, "4": 8},
 "3.mlp":  {"0": 256, "-1": 192, "1": 192, "2": 192, "3": 192, "4": 192}}
JSON
check "attach the mask table" 0 "$BIN/skd-convert" --model "$FIX/$M.pth" --arch "$FIX/$M.json" \
  --mask-table "$W/mask_table.json" --out "$W/super.safetensors"
check "list" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --list
cp "$W/out" "$W/list"
[ "$(grep -c '^ *[0-9]' "$W/list")" = 5 ] && ok "list has codes 0..4" || bad "list rows: $(cat "$W/list")"
expect_in "list shows the widths of code 4" "$W/list" "16:0,16:128,0:256,8:192"

# Code 0 = the full model: timm's outputs.
check "extract code 0" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --op-code 0 --out "$W/c0.safetensors"
check "eval code 0" 0 "$BIN/skd-eval" --model "$W/c0.safetensors" --inputs "$FIX/$M.input.safetensors" --save-outputs "$W/o0.safetensors"
if python3 "$SRC/tools/dev/compare_outputs.py" "$W/o0.safetensors" "$FIX/$M.output.safetensors" logits,features >"$W/cmp"; then
  ok "code 0 == timm ($(tail -1 "$W/cmp"))"; else bad "code 0 == timm"; cat "$W/cmp"; fi

# Each code: the artifact's MACs are the table's; -1 is the last code.
for code in 1 2 3 4; do
  check "extract code $code" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --op-code "$code" --out "$W/c$code.safetensors"
  want=$("$BIN/skd-extract" --supernet "$W/super.safetensors" --list --macs-convention paper 2>/dev/null \
    | awk -v c="$code" '$1 == c {print $2, $3}')
  got=$(python3 -c "import sys; x=int(sys.argv[1]); print(f'{round(x/1e6, 2):.2f} MMac' if x < 1e9 else f'{round(x/1e9, 2):.2f} GMac')" \
    "$(manifest_macs "$W/c$code.safetensors")")
  [ "$got" = "$want" ] && ok "code $code MACs $got as listed" || bad "code $code MACs $got, list says $want"
done
check "extract code -1" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --op-code -1 --out "$W/cm1.safetensors"
expect_in "-1 is code 4" "$W/out" "op code 4 of 0..4"
check "eval code 4" 0 "$BIN/skd-eval" --model "$W/c4.safetensors" --data fashion-mnist --limit 64

# MACs budgets: exact table entry -> that code; just below -> the next; full or more -> 0.
m2=$(manifest_macs "$W/c2.safetensors"); m4=$(manifest_macs "$W/c4.safetensors"); m0=$(manifest_macs "$W/c0.safetensors")
check "--macs = code 2's MACs" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --macs "$m2" --out "$W/b2.safetensors"
expect_in "picks code 2" "$W/out" "op code 2 of"
check "--macs just below code 2" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --macs "$((m2 - 1))" --out "$W/b3.safetensors"
expect_in "picks code 3" "$W/out" "op code 3 of"
check "--macs 1G (above full)" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --macs 1G --out "$W/bf.safetensors"
expect_in "picks code 0" "$W/out" "op code 0 of"
check "--macs-ratio 1" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --macs-ratio 1 --out "$W/r1.safetensors"
expect_in "ratio 1 picks code 0" "$W/out" "op code 0 of"
check "--macs-ratio 0.9 --macs-convention full" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --macs-ratio 0.9 \
  --macs-convention full --out "$W/r9.safetensors"
expect_in "says the convention" "$W/out" "full convention"
same_weights "b2 == c2" "$W/b2.safetensors" "$W/c2.safetensors" 0

# A third of the full MACs, as 4/12, the paper's 4:12 and a decimal: one budget, one code (the lowest
# whose paper MACs are <= floor(full * 4 / 12), from the manifest's op_codes). Code 2 of this table is
# small enough.
cat >"$W/small_table.json" <<'JSON'
{"0.attn": {"0": 16, "-1": 16, "1": 16, "2": 16},
 "0.mlp":  {"0": 256, "-1": 0, "1": 256, "2": 0},
 "1.attn": {"0": 16, "-1": 0, "1": 16, "2": 0},
 "1.mlp":  {"0": 256, "-1": 64, "1": 128, "2": 64},
 "2.attn": {"0": 16, "-1": 0, "1": 8, "2": 0},
 "2.mlp":  {"0": 256, "-1": 64, "1": 128, "2": 64},
 "3.attn": {"0": 16, "-1": 0, "1": 8, "2": 0},
 "3.mlp":  {"0": 256, "-1": 64, "1": 128, "2": 64}}
JSON
check "attach a table with a small code" 0 "$BIN/skd-convert" --model "$FIX/$M.pth" --arch "$FIX/$M.json" \
  --mask-table "$W/small_table.json" --out "$W/small.safetensors"
want=$(manifest "$W/small.safetensors" \
  'min(c["code"] for c in m["op_codes"] if c["macs_paper"] <= m["op_codes"][0]["macs_paper"] * 4 // 12)')
for r in 4/12 4:12 0.3333333333333333; do
  check "--macs-ratio $r" 0 "$BIN/skd-extract" --supernet "$W/small.safetensors" --macs-ratio "$r" \
    --out "$W/third.$(echo "$r" | tr '/:' 'sc').safetensors"
  expect_in "--macs-ratio $r picks code $want" "$W/out" "op code $want of 0..2"
done
same_weights "4/12 == 4:12" "$W/third.4s12.safetensors" "$W/third.4c12.safetensors" 0
same_weights "4/12 == 0.333..." "$W/third.4s12.safetensors" "$W/third.0.3333333333333333.safetensors" 0
for r in 0 5/4 4/0 abc 1/ -0.5; do
  check "--macs-ratio $r refused" 2 "$BIN/skd-extract" --supernet "$W/small.safetensors" --macs-ratio "$r" \
    --out "$W/bad_r.safetensors"
  expect_in "--macs-ratio $r: the accepted forms" "$W/err" "--macs-ratio: '$r': expected a fraction in (0, 1]: 0.333, 4/12 or 4:12"
done

# The official layout: .pth + --arch + --mask-table, no artifact needed.
check "extract from .pth + mask_table.json" 0 "$BIN/skd-extract" --model "$FIX/$M.pth" --arch "$FIX/$M.json" \
  --mask-table "$W/mask_table.json" --op-code 2 --out "$W/p2.safetensors"
same_weights "from .pth == from the artifact" "$W/p2.safetensors" "$W/c2.safetensors" 0

# Bad input.
check "budget below the smallest" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --macs "$((m4 - 1))" --out "$W/bad1.safetensors"
expect_in "names the smallest" "$W/err" "below the smallest sub-network in the mask table: code 4"
check "unknown code" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --op-code 9 --out "$W/bad2.safetensors"
expect_in "names the range" "$W/err" "codes 0..4"
check "not a super-network" 2 "$BIN/skd-extract" --model "$W/c2.safetensors" --op-code 1 --out "$W/bad3.safetensors"
expect_in "says so" "$W/err" "is not a super-network"
check "bad --macs" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --macs 2.4X --out "$W/bad4.safetensors"
check "two selectors" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --macs 1G --op-code 1 --out "$W/bad5.safetensors"
sed 's/"2": 8, "3": 8/"2": 8, "3": 16/' "$W/mask_table.json" >"$W/grow.json"
check "table that grows" 1 "$BIN/skd-convert" --model "$FIX/$M.pth" --arch "$FIX/$M.json" --mask-table "$W/grow.json" \
  --out "$W/bad6.safetensors"
expect_in "names module and codes" "$W/err" "'3.attn' grows from 8 at code 2 to 16 at code 3"
sed 's/"2.mlp"/"7.mlp"/' "$W/mask_table.json" >"$W/wrong.json"
check "table for another model" 1 "$BIN/skd-extract" --model "$FIX/$M.pth" --arch "$FIX/$M.json" --mask-table "$W/wrong.json" \
  --op-code 1 --out "$W/bad7.safetensors"
expect_in "names the key" "$W/err" "unexpected key '7.mlp'"
check "mask table with WPAC" 2 "$BIN/skd-convert" --model "$FIX/$M.pth" --arch "$FIX/$M.json" --mask-table "$W/mask_table.json" \
  --data fashion-mnist --out "$W/bad8.safetensors"
if ls "$W"/bad*.safetensors >/dev/null 2>&1; then bad "failed runs left files"; else ok "no partial output"; fi

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
