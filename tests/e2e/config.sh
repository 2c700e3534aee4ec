#!/usr/bin/env bash
# End-to-end: --config FILE / --dump-config of skd-convert, skd-eval, skd-extract and skd-export (the
# options struct of each app, skd/cli/binder.h): the dumped keys are the app's config keys, a value
# from the file is used and a flag on the command line overrides it, an unknown key is a usage error.
# Env (set by ctest): SKD_BIN (apps folder), SKD_FIXTURES, SKD_SOURCE_DIR.
set -uo pipefail
FIX="${SKD_FIXTURES:?}/timm"
[ -d "$FIX" ] || { echo "FIXTURES MISSING: $FIX"; exit 1; }
source "$(dirname "$0")/common.bash"

# keys_are NAME FILE "k1 k2 ..."   the JSON object in FILE has exactly these keys
keys_are() {
  local got want
  got=$(json "$2" '" ".join(sorted(d.keys()))')
  want=$(echo "$3" | tr ' ' '\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
  if [ "$got" = "$want" ]; then ok "$1"; else bad "$1: keys '$got', expected '$want'"; fi
}
# value_is NAME FILE KEY VALUE     d[KEY] printed by Python is VALUE
value_is() {
  local got
  got=$(json "$2" "d['$3']")
  if [ "$got" = "$4" ]; then ok "$1"; else bad "$1: $3 = '$got', expected '$4'"; fi
}

declare -A KEYS
KEYS[skd-convert]="model arch out report mask_table data split proxy_samples batch_size seed criterion \
mlp_criterion centering cost device dist_backend dist_timeout crop_pct interpolation mean std"
KEYS[skd-eval]="model arch attn_keep mlp_keep data split limit batch_size inputs class_index crop_pct interpolation \
mean std workers on_bad_image device amp latency latency_repeats latency_table batch_sizes summary json save_outputs \
save_inputs out runtime python"
KEYS[skd-extract]="model arch mask_table op_code macs macs_ratio latency widths attn_keep mlp_keep \
macs_convention batch latency_table runtime list out fold_scale python"
KEYS[skd-export]="model arch mask_table op_code macs macs_ratio latency widths attn_keep mlp_keep macs_convention \
latency_table runtime out opset batch embed_normalize fold_scale verify python tolerance int8 calibration calibration_split \
calibration_samples calibration_method"
# one key per app: a value in the --config file, and a flag that overrides it
declare -A FILE_KEY=([skd-convert]=split [skd-eval]=split [skd-extract]=latency_table [skd-export]=python)
declare -A FLAG=([skd-convert]=--split [skd-eval]=--split [skd-extract]=--latency-table [skd-export]=--python)

for app in skd-convert skd-eval skd-extract skd-export; do
  [ -x "$BIN/$app" ] || { echo "skip $app (not built)"; continue; }
  check "$app --dump-config" 0 "$BIN/$app" --dump-config
  cp "$W/out" "$W/$app.dump.json"
  keys_are "$app --dump-config keys" "$W/$app.dump.json" "$(echo ${KEYS[$app]})"
  expect_in "$app --dump-config indent 2" "$W/$app.dump.json" '^  "model": ""'
  expect_in "$app --help lists --config" <("$BIN/$app" --help) "--config"
  k=${FILE_KEY[$app]}
  echo "{\"$k\": \"from-file\"}" >"$W/$app.cfg.json"
  check "$app --config" 0 "$BIN/$app" --config "$W/$app.cfg.json" --dump-config
  value_is "$app --config value used" "$W/out" "$k" from-file
  check "$app flag over --config" 0 "$BIN/$app" --config "$W/$app.cfg.json" "${FLAG[$app]}" from-flag --dump-config
  value_is "$app flag wins" "$W/out" "$k" from-flag
  echo '{"bogus_key": 1}' >"$W/$app.bad.json"
  check "$app unknown key" 2 "$BIN/$app" --config "$W/$app.bad.json" --dump-config
  expect_in "$app unknown key named" "$W/err" "unknown key 'bogus_key'"
  expect_in "$app unknown key file named" "$W/err" "$app.bad.json"
done

# Enum-valued keys take their names only, from a file or a flag; the error lists the names.
echo '{"macs_convention": "ptflops"}' >"$W/enum.json"
check "enum key with an unknown name" 2 "$BIN/skd-extract" --config "$W/enum.json" --dump-config
expect_in "names the key and the names" "$W/err" "key 'macs_convention' has the value \"ptflops\" (expected one of paper, full)"
check "enum flag with an unknown name" 2 "$BIN/skd-train" --amp fp8 --arch deit_tiny --dump-config
expect_in "names the flag and the names" "$W/err" "--amp: unknown value 'fp8' (expected one of none, bf16, fp16)"

# The values of a --config file drive a real run: a format conversion whose model and output come
# from the file, and a summary by architecture.
cat >"$W/convert.json" <<JSON
{"model": "$FIX/swin_micro_32.legacy.pth", "arch": "$FIX/swin_micro_32.json", "out": "$W/swin.safetensors"}
JSON
check "convert from --config" 0 "$BIN/skd-convert" --config "$W/convert.json"
expect_in "convert from --config wrote" "$W/out" "wrote $W/swin.safetensors"
echo "{\"model\": \"$W/none.pth\"}" >"$W/convert_missing.json"
check "convert --config without out" 2 "$BIN/skd-convert" --config "$W/convert_missing.json"
expect_in "convert --config without out named" "$W/err" "--out is required"
echo "{\"arch\": \"deit_small\", \"summary\": true, \"json\": \"$W/s.json\"}" >"$W/eval.json"
check "eval summary from --config" 0 "$BIN/skd-eval" --config "$W/eval.json"
expect_in "eval summary params" "$W/s.json" '"params": 22050664'
echo "{\"model\": \"$W/swin.safetensors\", \"attn_keep\": 0.5, \"mlp_keep\": 0.5}" >"$W/extract.json"
check "extract from --config" 0 "$BIN/skd-extract" --config "$W/extract.json" --out "$W/half.safetensors"
expect_in "extract from --config wrote" "$W/out" "wrote $W/half.safetensors"
check "extract --config and flag select twice" 2 "$BIN/skd-extract" --config "$W/extract.json" --op-code 0 \
  --out "$W/x.safetensors"

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
