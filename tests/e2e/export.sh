#!/usr/bin/env bash
# End-to-end: skd-export --verify (onnxruntime parity within 1e-4 against the C++ forward) for
#  - every op code of a small ViT and a small Swin super-network (mask tables with removed attention
#    and MLP branches, width-8 heads), dynamic batch (inputs of batch 2 and 1) and a fixed batch
#  - --fold-scale in skd-export and in skd-extract (the extracted, folded sub-network exported as is)
#  - the demo's model (assets/vit_fmnist.safetensors) with a mask table attached by skd-convert, and the
#    demo's ONNX step (scripts/demo_export.sh) on it
#  - a pretrained foreign checkpoint (.pth + --arch)
#  - --macs-ratio 4:12 (the paper's n:12) selects and records what skd-extract --macs-ratio 4/12 does
#  - errors: onnxruntime missing (a Python without it), bad flags, op code out of range: no file left
# The Python with onnxruntime is the project's environment (scripts/setup_venv.sh, cached).
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR, SKD_FIXTURES.
set -uo pipefail
FIX="${SKD_FIXTURES:?}/timm"
source "$(dirname "$0")/common.bash"
VENV=$(bash "$SRC/scripts/setup_venv.sh" 2>/dev/null | tail -1)
PY="$VENV/bin/python"
if ! "$PY" -c 'import onnxruntime' 2>/dev/null; then
  echo "FAIL no onnxruntime in the project's Python environment '$VENV' (bash scripts/setup_venv.sh)"; exit 1
fi
T=(--threads 1)
# verify NAME ARGS...: skd-export --verify succeeds, prints the parity line, writes the file
verify() {
  local name=$1
  shift
  check "$name" 0 "$BIN/skd-export" --python "$PY" --verify "${T[@]}" "$@"
  if grep -q '^parity: max |logit diff| .* <= 1e-04 on inputs' "$W/out"; then
    ok "$name: max |logit diff| $(grep '^parity' "$W/out" | cut -d' ' -f5)"
  else
    bad "$name: no parity line"; sed 's/^/  | /' "$W/out" "$W/err" | tail -5
  fi
}

# ViT (vit_micro_32: 4 blocks, head dim 16, MLP 256): codes 0..4, incl. a removed MLP (block 0 from
# code 3), a removed attention (block 2 at code 4) and width-8 heads (block 3 from code 2).
cat >"$W/vit_table.json" <<'JSON'
{"0.attn": {"0": 16, "-1": 16, "1": 16, "2": 16, "3": 16, "4": 16},
 "0.mlp":  {"0": 256, "-1": 0, "1": 256, "2": 256, "3": 0, "4": 0},
 "1.attn": {"0": 16, "-1": 8, "1": 16, "2": 16, "3": 8, "4": 8},
 "1.mlp":  {"0": 256, "-1": 128, "1": 256, "2": 256, "3": 256, "4": 128},
 "2.attn": {"0": 16, "-1": 0, "1": 16, "2": 16, "3": 16, "4": 0},
 "2.mlp":  {"0": 256, "-1": 256, "1": 256, "2": 256, "3": 256, "4": 256},
 "3.attn": {"0": 16, "-1": 8, "1": 16, "2": 8, "3": 8, "4": 8},
 "3.mlp":  {"0": 256, "-1": 192, "1": 192, "2": 192, "3": 192, "4": 192}}
JSON
# Swin (swin_micro_32: stages of 2 + 2 blocks, head dim 16, shifted windows in both stages, MLP 128 / 256).
cat >"$W/swin_table.json" <<'JSON'
{"0.attn": {"0": 16, "-1": 8, "1": 16, "2": 8, "3": 8},
 "0.mlp":  {"0": 128, "-1": 64, "1": 128, "2": 128, "3": 64},
 "1.attn": {"0": 16, "-1": 0, "1": 16, "2": 16, "3": 0},
 "1.mlp":  {"0": 128, "-1": 96, "1": 96, "2": 96, "3": 96},
 "2.attn": {"0": 16, "-1": 8, "1": 16, "2": 16, "3": 8},
 "2.mlp":  {"0": 256, "-1": 0, "1": 256, "2": 0, "3": 0},
 "3.attn": {"0": 16, "-1": 8, "1": 8, "2": 8, "3": 8},
 "3.mlp":  {"0": 256, "-1": 32, "1": 256, "2": 128, "3": 32}}
JSON
for M in vit swin; do
  check "$M: attach the mask table" 0 "$BIN/skd-convert" --model "$FIX/${M}_micro_32.pth" --arch "$FIX/${M}_micro_32.json" \
    --mask-table "$W/${M}_table.json" --out "$W/$M.super.safetensors"
  last=$("$BIN/skd-extract" --supernet "$W/$M.super.safetensors" --list 2>/dev/null | awk '$1 ~ /^[0-9]+$/ {c = $1} END {print c}')
  [ -n "$last" ] && [ "$last" -ge 3 ] && ok "$M: codes 0..$last" || bad "$M: codes: '$last'"
  for code in $(seq 0 "$last"); do
    verify "$M: code $code" --supernet "$W/$M.super.safetensors" --op-code "$code" --out "$W/$M.$code.onnx"
  done
  verify "$M: smallest code, --fold-scale, --batch 3" --supernet "$W/$M.super.safetensors" --op-code -1 --fold-scale \
    --batch 3 --out "$W/$M.folded.onnx"
  expect_in "$M: fixed batch input" "$W/out" "on inputs \[3,3,32,32\],"
  # skd-extract --fold-scale, then export the folded sub-network as it is.
  check "$M: extract --fold-scale" 0 "$BIN/skd-extract" --supernet "$W/$M.super.safetensors" --op-code 2 --fold-scale \
    --out "$W/$M.sub2f.safetensors"
  [ "$(manifest "$W/$M.sub2f.safetensors" 'm["attn_scale_folded"]')" = True ] && ok "$M: manifest says folded" \
    || bad "$M: manifest lacks attn_scale_folded"
  verify "$M: export the folded sub-network" --model "$W/$M.sub2f.safetensors" --out "$W/$M.sub2f.onnx"
done

# The folded sub-network computes what the unfolded one does (C++ forward, the fixture's input).
check "extract code 2 unfolded" 0 "$BIN/skd-extract" --supernet "$W/vit.super.safetensors" --op-code 2 --out "$W/vit.sub2.safetensors"
for v in sub2 sub2f; do
  "$BIN/skd-eval" --model "$W/vit.$v.safetensors" --inputs "$FIX/vit_micro_32.input.safetensors" \
    --save-outputs "$W/vit.$v.out.safetensors" "${T[@]}" >/dev/null 2>&1
done
if python3 "$SRC/tools/dev/compare_outputs.py" "$W/vit.sub2f.out.safetensors" "$W/vit.sub2.out.safetensors" logits \
  --atol 1e-5 >"$W/cmp" 2>&1; then ok "folded == unfolded logits ($(tail -1 "$W/cmp"))"; else bad "folded != unfolded"; cat "$W/cmp"; fi

# The demo's model (6 blocks, head dim 32, 1-channel 28x28 input) with a mask table attached (no WPAC).
python3 - "$W/demo_table.json" <<'PY'
import json, sys
codes = [[(32, 256)] * 6,
         [(32, 192)] * 3 + [(16, 192)] * 3,
         [(16, 128), (8, 128), (16, 0), (8, 64), (0, 128), (8, 64)]]
t = {}
for b in range(6):
    for i, part in enumerate(("attn", "mlp")):
        w = {str(k): c[b][i] for k, c in enumerate(codes)}
        t[f"{b}.{part}"] = {"0": w["0"], "-1": w[str(len(codes) - 1)], **{k: v for k, v in w.items() if k != "0"}}
json.dump(t, open(sys.argv[1], "w"))
PY
check "demo model: attach a mask table" 0 "$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" \
  --mask-table "$W/demo_table.json" --out "$W/demo.super.safetensors"
for code in 0 1 2; do
  verify "demo model: code $code" --supernet "$W/demo.super.safetensors" --op-code "$code" --out "$W/demo.$code.onnx"
done
verify "demo model: --macs-ratio 0.5" --supernet "$W/demo.super.safetensors" --macs-ratio 0.5 --out "$W/demo.half.onnx"
expect_in "says the code" "$W/out" "op code 2 of 0..2"
# The paper's n:12 notation: skd-export --macs-ratio 4:12 selects what skd-extract --macs-ratio 4/12 does,
# with the same provenance.
verify "demo model: --macs-ratio 4:12" --supernet "$W/demo.super.safetensors" --macs-ratio 4:12 --out "$W/demo.412.onnx"
grep '^op code' "$W/out" >"$W/export_412.code"
check "skd-extract --macs-ratio 4/12" 0 "$BIN/skd-extract" --supernet "$W/demo.super.safetensors" --macs-ratio 4/12 \
  --out "$W/demo.412.safetensors"
grep '^op code' "$W/out" >"$W/extract_412.code"
if [ -s "$W/export_412.code" ] && cmp -s "$W/export_412.code" "$W/extract_412.code"; then
  ok "4:12 and 4/12: $(cat "$W/export_412.code")"
else bad "4:12 export '$(cat "$W/export_412.code")' vs 4/12 extract '$(cat "$W/extract_412.code")'"; fi
"$PY" - "$W/demo.412.onnx" "$W/demo.412.safetensors" >"$W/prov" 2>&1 <<'PY'
import json, struct, sys
import onnxruntime as o
onnx = json.loads(o.InferenceSession(sys.argv[1]).get_modelmeta().custom_metadata_map["skd_manifest"])
with open(sys.argv[2], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    art = json.loads(json.loads(f.read(n))["__metadata__"]["skd_manifest"])
for m in (onnx, art):
    m["provenance"].pop("created")  # when each file was written
print("same" if onnx["provenance"] == art["provenance"] and onnx["widths"] == art["widths"] else f"differ {onnx['provenance']} {art['provenance']}")
print(onnx["provenance"]["macs_budget"], "extracted_from" in onnx["provenance"])
PY
if head -1 "$W/prov" | grep -qx same; then ok "export and extract provenance the same ($(tail -1 "$W/prov"))"
else bad "provenance: $(cat "$W/prov")"; fi
check "--macs-ratio 5/4" 2 "$BIN/skd-export" --supernet "$W/demo.super.safetensors" --macs-ratio 5/4 --out "$W/bad6.onnx"
expect_in "names the accepted forms" "$W/err" "--macs-ratio: '5/4': expected a fraction in (0, 1]: 0.333, 4/12 or 4:12"
# The demo's ONNX step (scripts/demo_export.sh) on this super-network: the project's environment is there.
check "demo_export.sh" 0 env SKD_BIN="$BIN" bash "$SRC/scripts/demo_export.sh" "$W/demo.super.safetensors" "$W/demo.4.onnx" 4 "${T[@]}"
expect_in "demo_export.sh prints the parity line" "$W/out" "^parity: max |logit diff| .* <= 1e-04"

# A foreign pretrained checkpoint.
verify "pretrained .pth + --arch" --model "$FIX/vit_micro_32.pth" --arch "$FIX/vit_micro_32.json" --out "$W/pre.onnx"
[ "$("$PY" -c 'import json,onnxruntime as o,sys; m=o.InferenceSession(sys.argv[1]).get_modelmeta(); print(json.loads(m.custom_metadata_map["skd_manifest"])["family"])' "$W/pre.onnx" 2>&1)" = vit ] \
  && ok "manifest in the ONNX metadata" || bad "manifest in the ONNX metadata"

# Errors: nothing written.
check "onnxruntime missing" 1 "$BIN/skd-export" --python /usr/bin/python3 --verify --model "$W/vit.super.safetensors" \
  --op-code 1 --out "$W/bad1.onnx" "${T[@]}"
if /usr/bin/python3 -c 'import onnxruntime' 2>/dev/null; then
  ok "(skipped the message check: /usr/bin/python3 has onnxruntime)"
else
  expect_in "says how to install it" "$W/err" "bash scripts/setup_venv.sh"
  expect_in "names the flag" "$W/err" "pass --python <that folder>/bin/python"
fi
check "op code out of range" 2 "$BIN/skd-export" --model "$W/vit.super.safetensors" --op-code 9 --out "$W/bad2.onnx"
expect_in "names the range" "$W/err" "0..4"
check "bad --batch" 2 "$BIN/skd-export" --model "$W/vit.super.safetensors" --batch 0 --out "$W/bad3.onnx"
check "bad --opset" 2 "$BIN/skd-export" --model "$W/vit.super.safetensors" --opset 13 --out "$W/bad4.onnx"
expect_in "names the opset range" "$W/err" "opsets 17.."
check "unwritable --out" 1 "$BIN/skd-export" --model "$W/vit.super.safetensors" --out "$W/no/such/dir/bad5.onnx"
if ls "$W"/bad*.onnx "$W"/no >/dev/null 2>&1; then bad "failed runs left files"; else ok "no partial output"; fi

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
