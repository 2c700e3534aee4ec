#!/usr/bin/env bash
# End-to-end: hostile JSON, numbers and messages (issue 25, docs/reliability.md "Hostile input").
#  - a --config file and an artifact's manifest nested 100,000 deep: an error naming the file and the
#    depth limit, not a segfault; duplicate keys refused naming the key
#  - integers are decimal (no octal 010, no hex 0x10) and never wrap (2^64-1, 2^32+17)
#  - a --config file gets the same range checks as the flags (macs_ratio 1.5, limit -5)
#  - --macs 1e30 / '5 0M' / 0x10M, --lr inf / nan (flag and file): errors, not NaN weights
# Env (set by ctest): SKD_BIN (apps folder), SKD_FIXTURES, SKD_SOURCE_DIR.
set -uo pipefail
FIX="${SKD_FIXTURES:?}/timm"
[ -d "$FIX" ] || { echo "FIXTURES MISSING: $FIX"; exit 1; }
source "$(dirname "$0")/common.bash"
M=vit_micro_32

# A small super-network to select from (as tests/e2e/extract.sh).
cat >"$W/mask_table.json" <<'JSON'
{"0.attn": {"0": 16, "-1": 16, "1": 16}, "0.mlp": {"0": 256, "-1": 128, "1": 128},
 "1.attn": {"0": 16, "-1": 8, "1": 8}, "1.mlp": {"0": 256, "-1": 256, "1": 256},
 "2.attn": {"0": 16, "-1": 16, "1": 16}, "2.mlp": {"0": 256, "-1": 256, "1": 256},
 "3.attn": {"0": 16, "-1": 16, "1": 16}, "3.mlp": {"0": 256, "-1": 192, "1": 192}}
JSON
check "make a super-network" 0 "$BIN/skd-convert" --model "$FIX/$M.pth" --arch "$FIX/$M.json" \
  --mask-table "$W/mask_table.json" --out "$W/super.safetensors"
SUPER="$W/super.safetensors"

# --- deep JSON ------------------------------------------------------------------------------------
python3 -c 'import sys; n = 100000; open(sys.argv[1], "w").write("{\"a\":" * n + "1" + "}" * n)' "$W/deep.json"
python3 -c 'import sys; open(sys.argv[1], "w").write("[" * 100000)' "$W/open.json"
for app in skd-convert skd-eval skd-extract skd-export skd-train; do
  [ -x "$BIN/$app" ] || { echo "skip $app (not built)"; continue; }
  check "$app deep --config" 1 "$BIN/$app" --config "$W/deep.json" --dump-config
  expect_in "$app deep --config names the file" "$W/err" "--config '$W/deep.json' nests deeper than 256 levels"
done
check "unterminated deep --config" 1 "$BIN/skd-eval" --config "$W/open.json" --dump-config
expect_in "unterminated deep --config named" "$W/err" "open.json' nests deeper than 256 levels"

# rewrite_manifest IN OUT PYTHON: OUT is IN with its skd manifest m changed by the statement PYTHON
# (the manifest text is then t = json.dumps(m) unless PYTHON sets t itself).
rewrite_manifest() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, struct, sys
src, dst, code = sys.argv[1:4]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
m = json.loads(header["__metadata__"]["skd_manifest"])
t = None
exec(code)
header["__metadata__"]["skd_manifest"] = t if t is not None else json.dumps(m)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(dst, "wb").write(struct.pack("<Q", len(h)) + h + b[8 + n:])
PY
}
rewrite_manifest "$SUPER" "$W/deep_prov.safetensors" \
  't = json.dumps(m)[:-1] + ", \"provenance_extra\": " + "[" * 100000 + "]" * 100000 + "}"'
check "deep manifest: eval" 1 "$BIN/skd-eval" --model "$W/deep_prov.safetensors" --summary
expect_in "deep manifest named" "$W/err" "deep_prov.safetensors: __metadata__ key 'skd_manifest' nests deeper than 256 levels"
rewrite_manifest "$SUPER" "$W/deep_prov2.safetensors" \
  'd = 100000; t = json.dumps(m)[:-1] + ", \"x\": 0}"; t = t.replace("\"provenance\": {", "\"provenance\": " + "{\"a\": " * d + "{", 1).replace("\"x\": 0}", "\"x\": 0" + "}" * d + "}")'
check "deep provenance: extract" 1 "$BIN/skd-extract" --model "$W/deep_prov2.safetensors" --list
expect_in "deep provenance named" "$W/err" "nests deeper than 256 levels"

# --- duplicate keys -------------------------------------------------------------------------------
printf '{"split": "train", "split": "test"}' >"$W/dup.json"
for app in skd-convert skd-eval; do
  check "$app duplicate key" 1 "$BIN/$app" --config "$W/dup.json" --dump-config
  expect_in "$app duplicate key named" "$W/err" "dup.json' has the key 'split' twice"
done
printf '{"lr": 0.1, "epochs": 1, "lr": 5}' >"$W/dup_train.json"
check "skd-train duplicate key" 1 "$BIN/skd-train" --config "$W/dup_train.json" --dump-config
expect_in "skd-train duplicate key named" "$W/err" "has the key 'lr' twice"
rewrite_manifest "$SUPER" "$W/dup_manifest.safetensors" 't = json.dumps(m)[:-1] + ", \"format\": \"skd-artifact\"}"'
check "manifest duplicate key" 1 "$BIN/skd-eval" --model "$W/dup_manifest.safetensors" --summary
expect_in "manifest duplicate key named" "$W/err" "dup_manifest.safetensors: __metadata__ key 'skd_manifest' has the key 'format' twice"
rewrite_manifest "$SUPER" "$W/str_prov.safetensors" 'm["provenance"] = "x" * 1000000'
check "manifest provenance a string" 1 "$BIN/skd-convert" --model "$W/str_prov.safetensors" --out "$W/o.safetensors"
expect_in "provenance key named" "$W/err" "str_prov.safetensors: manifest key 'provenance' is string"
expect_in "huge value cut short" "$W/err" '\.\.\. (1000002 bytes), expected object'
check "directory as --config" 2 "$BIN/skd-eval" --config "$W" --dump-config
expect_in "directory named" "$W/err" "--config '$W' is a directory"

# --- integers: decimal, never wrapped -------------------------------------------------------------
check "--op-code 010 is ten" 0 "$BIN/skd-extract" --op-code 010 --dump-config
expect_in "--op-code 010 dumped as 10" "$W/out" '"op_code": 10,'
check "--limit 010 is ten" 0 "$BIN/skd-eval" --limit 010 --dump-config
expect_in "--limit 010 dumped as 10" "$W/out" '"limit": 10,'
check "--op-code 0x1" 2 "$BIN/skd-extract" --op-code 0x1 --dump-config
expect_in "--op-code 0x1 refused" "$W/err" "--op-code: '0x1' is not a decimal integer"
check "--batch-size 0x40" 2 "$BIN/skd-eval" --batch-size 0x40 --dump-config
expect_in "--batch-size hex refused" "$W/err" "is not a decimal integer"
check "--limit 99999999999999999999" 2 "$BIN/skd-eval" --limit 99999999999999999999 --dump-config
expect_in "--limit too large" "$W/err" "is out of range"
check "--seed -1 (unsigned)" 2 "$BIN/skd-convert" --seed -1 --dump-config
expect_in "--seed -1 out of range" "$W/err" "is out of range"
check "--threads 0x2" 2 "$BIN/skd-eval" --threads 0x2 --arch deit_tiny --summary
expect_in "--threads hex refused" "$W/err" "is not a decimal integer"
echo '{"op_code": 18446744073709551615}' >"$W/wrap.json"
check "op_code 2^64-1 in a config" 2 "$BIN/skd-extract" --config "$W/wrap.json" --model "$SUPER" --out "$W/x.safetensors"
expect_in "op_code wrap named" "$W/err" "key 'op_code': 18446744073709551615 is out of range"
[ ! -e "$W/x.safetensors" ] && ok "nothing written for op_code 2^64-1" || bad "wrote $W/x.safetensors"
if [ -x "$BIN/skd-export" ]; then
  check "op_code 2^64-1 in an export config" 2 "$BIN/skd-export" --config "$W/wrap.json" --model "$SUPER" --out "$W/x.onnx"
  expect_in "export op_code wrap named" "$W/err" "key 'op_code': 18446744073709551615 is out of range"
  echo '{"opset": 4294967313}' >"$W/opset.json"
  check "opset 2^32+17 in a config" 2 "$BIN/skd-export" --config "$W/opset.json" --dump-config
  expect_in "opset wrap named" "$W/err" "key 'opset': 4294967313 is out of range"
  check "--tolerance nan" 2 "$BIN/skd-export" --tolerance nan --dump-config
  expect_in "--tolerance nan named" "$W/err" "--tolerance: nan is not a finite number"
fi
echo '{"seed": -1}' >"$W/seed.json"
check "negative unsigned in a config" 2 "$BIN/skd-convert" --config "$W/seed.json" --dump-config
expect_in "negative unsigned named" "$W/err" "key 'seed': -1 is out of range"
echo '{"limit": 2.5}' >"$W/frac.json"
check "fractional integer in a config" 2 "$BIN/skd-eval" --config "$W/frac.json" --dump-config
expect_in "fractional integer named" "$W/err" "key 'limit' has the wrong type (2.5)"

# --- a config gets the flags' range checks --------------------------------------------------------
echo '{"macs_ratio": "1.5"}' >"$W/ratio.json"
check "macs_ratio 1.5 in a config" 2 "$BIN/skd-extract" --config "$W/ratio.json" --model "$SUPER" --out "$W/r.safetensors"
expect_in "macs_ratio config named" "$W/err" "key 'macs_ratio': '1.5': expected a fraction in (0, 1]"
check "--macs-ratio 1.5" 2 "$BIN/skd-extract" --macs-ratio 1.5 --model "$SUPER" --out "$W/r.safetensors"
expect_in "--macs-ratio named" "$W/err" "--macs-ratio: '1.5': expected a fraction in (0, 1]"
[ ! -e "$W/r.safetensors" ] && ok "nothing written for macs_ratio 1.5" || bad "wrote $W/r.safetensors"
echo '{"limit": -5}' >"$W/limit.json"
check "limit -5 in a config" 2 "$BIN/skd-eval" --config "$W/limit.json" --model "$SUPER" --data fashion-mnist
expect_in "limit config named" "$W/err" "--limit must be >= 0 (got -5)"
check "--limit -5" 2 "$BIN/skd-eval" --limit -5 --model "$SUPER" --data fashion-mnist
expect_in "--limit named" "$W/err" "--limit must be >= 0 (got -5)"
echo '{"batch_size": 0}' >"$W/bs.json"
check "batch_size 0 in a convert config" 2 "$BIN/skd-convert" --config "$W/bs.json" --model "$SUPER" --out "$W/c.safetensors"
expect_in "convert batch_size named" "$W/err" "--batch-size must be positive (got 0)"

# --- MACs budgets ---------------------------------------------------------------------------------
for bad in 1e30 '5 0M' 0x10M inf; do
  check "--macs '$bad'" 2 "$BIN/skd-extract" --model "$SUPER" --macs "$bad" --out "$W/m.safetensors"
  expect_in "--macs '$bad' named" "$W/err" "^--macs: '$bad' is"
done
expect_in "--macs inf" "$W/err" "is not a MACs amount"
check "--macs 1e30 is not below the smallest" 2 "$BIN/skd-extract" --model "$SUPER" --macs 1e30 --out "$W/m.safetensors"
expect_in "--macs 1e30 says too many" "$W/err" "more MACs than any model has"

# --- floats are finite ----------------------------------------------------------------------------
for v in inf nan -inf; do
  check "--lr $v" 2 "$BIN/skd-train" --arch "$FIX/$M.json" --data fashion-mnist "--lr=$v" --dump-config
  expect_in "--lr $v named" "$W/err" "--lr: .* is not a finite number"
done
echo '{"lr": 1e999}' >"$W/lr.json"
# JSON has no inf or nan; a number that overflows to inf is refused by the parser.
check "lr 1e999 in a config" 1 "$BIN/skd-train" --config "$W/lr.json" --arch "$FIX/$M.json" --data fashion-mnist --dump-config
expect_in "lr config named" "$W/err" "lr.json' is not valid JSON: .*number overflow"
check "--crop-pct inf" 2 "$BIN/skd-eval" --crop-pct inf --dump-config
expect_in "--crop-pct inf named" "$W/err" "--crop-pct: inf is not a finite number"

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
