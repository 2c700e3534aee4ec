#!/usr/bin/env bash
# End-to-end: the MACs-ratio forms of skd-extract and skd-export (issue 24), through the real apps:
#  - the documented commands (README: skd-extract --macs-ratio 0.5, skd-export --macs-ratio 4:12 --verify)
#    as the docs write them, on a super-network of the embedded demo model
#  - 4/12, 4:12 and 0.3333333333333333 select one code in both apps, from flags and from --config
#    (macs_ratio is text or a number in a config), and --dump-config keeps the text as given
# Env (set by ctest): SKD_BIN, SKD_SOURCE_DIR, SKD_BUILD_DIR, SKD_FIXTURES.
set -uo pipefail
source "$(dirname "$0")/common.bash"
VENV=$(bash "$SRC/scripts/setup_venv.sh" 2>/dev/null | tail -1)
export SKD_PYTHON="$VENV/bin/python"
if ! "$SKD_PYTHON" -c 'import onnxruntime' 2>/dev/null; then
  echo "FAIL no onnxruntime in the project's Python environment '$VENV' (bash scripts/setup_venv.sh)"; exit 1
fi
# The demo model (6 blocks, head dim 32, MLP 256) as a super-network: codes 0 (full), 1 (half the
# dims), 2 (a quarter).
cat >"$W/table.json" <<'JSON'
{"0.attn": {"0": 32, "-1": 8, "1": 16, "2": 8}, "0.mlp": {"0": 256, "-1": 64, "1": 128, "2": 64},
 "1.attn": {"0": 32, "-1": 8, "1": 16, "2": 8}, "1.mlp": {"0": 256, "-1": 64, "1": 128, "2": 64},
 "2.attn": {"0": 32, "-1": 8, "1": 16, "2": 8}, "2.mlp": {"0": 256, "-1": 64, "1": 128, "2": 64},
 "3.attn": {"0": 32, "-1": 8, "1": 16, "2": 8}, "3.mlp": {"0": 256, "-1": 64, "1": 128, "2": 64},
 "4.attn": {"0": 32, "-1": 8, "1": 16, "2": 8}, "4.mlp": {"0": 256, "-1": 64, "1": 128, "2": 64},
 "5.attn": {"0": 32, "-1": 8, "1": 16, "2": 8}, "5.mlp": {"0": 256, "-1": 64, "1": 128, "2": 64}}
JSON
check "a super-network of the demo model" 0 "$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" \
  --mask-table "$W/table.json" --out "$W/super.safetensors"
doc_setup
mkdir -p "$W/doc/runs/piad" "$W/doc/runs/demo/piad"
ln -s "$W/super.safetensors" "$W/doc/runs/piad/model.safetensors"
ln -s "$W/super.safetensors" "$W/doc/runs/demo/piad/model.safetensors"
# The code a third of the full MACs selects: the lowest whose paper MACs are <= floor(full * 4 / 12).
want=$(manifest "$W/super.safetensors" \
  'min(c["code"] for c in m["op_codes"] if c["macs_paper"] <= m["op_codes"][0]["macs_paper"] * 4 // 12)')

doc_cmd "README: skd-extract --macs-ratio 0.5" 0 '$B/skd-extract --supernet runs/piad/model.safetensors --macs-ratio 0.5 --out half.safetensors'
expect_in "half: a code of the table" "$W/out" "op code [0-9] of 0..2"
doc_cmd "README: skd-export --macs-ratio 4:12 --verify" 0 '$B/skd-export --supernet runs/demo/piad/model.safetensors --macs-ratio 4:12 --out sub4.onnx --verify'
expect_in "4:12 exported: code $want" "$W/out" "^op code $want of 0..2"
expect_in "4:12 exported: parity" "$W/out" "^parity: max |logit diff| .* <= 1e-04"

for app in skd-extract skd-export; do
  ext=safetensors
  [ "$app" = skd-export ] && ext=onnx
  for r in 4/12 4:12 0.3333333333333333; do
    check "$app --macs-ratio $r" 0 "$BIN/$app" --supernet "$W/super.safetensors" --macs-ratio "$r" --out "$W/r.$ext"
    expect_in "$app --macs-ratio $r: code $want" "$W/out" "^op code $want of 0..2"
    echo "{\"macs_ratio\": \"$r\"}" >"$W/ratio.json"
    check "$app macs_ratio \"$r\" in --config" 0 "$BIN/$app" --config "$W/ratio.json" --supernet "$W/super.safetensors" \
      --out "$W/c.$ext"
    expect_in "$app config $r: code $want" "$W/out" "^op code $want of 0..2"
  done
  echo '{"macs_ratio": 0.5}' >"$W/number.json"
  check "$app macs_ratio as a JSON number" 0 "$BIN/$app" --config "$W/number.json" --supernet "$W/super.safetensors" \
    --out "$W/n.$ext"
  expect_in "$app macs_ratio 0.5 (a number) selects" "$W/out" "^op code [0-9] of 0..2"
  echo '{"macs_ratio": [4, 12]}' >"$W/list.json"
  check "$app macs_ratio as a list" 2 "$BIN/$app" --config "$W/list.json" --supernet "$W/super.safetensors" \
    --out "$W/l.$ext"
  expect_in "$app: the key is named" "$W/err" "key 'macs_ratio'"
  check "$app --dump-config keeps 4:12" 0 "$BIN/$app" --macs-ratio 4:12 --dump-config
  expect_in "$app dump: \"4:12\"" "$W/out" '"macs_ratio": "4:12"'
done

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
