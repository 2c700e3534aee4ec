#!/usr/bin/env bash
# End-to-end: latency you can select by.
#  - skd-eval --latency-table times every op code of a super-network, writes <model>.latency.json
#    (or --out) and prints the table
#  - skd-extract --latency picks the lowest code whose measured median fits and records the
#    selection in the sub-network's provenance
#  - a budget below the fastest code, a batch size the table lacks, a table of another model, no
#    table, not a super-network: exit 2 naming the flag or file
#  - tools/experiments/plot_latency.py draws latency and MACs against the op code (when gnuplot is there)
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR, SKD_FIXTURES.
set -uo pipefail
FIX="${SKD_FIXTURES:?}/timm"
source "$(dirname "$0")/common.bash"
M=vit_micro_32
# vit_micro_32: 4 blocks, head dim 16, MLP 256; codes 0..4 shrink modules, code 4 removes branches.
cat >"$W/mask_table.json" <<'JSON'
{"0.attn": {"0": 16, "-1": 8, "1": 16, "2": 8, "3": 8, "4": 8},
 "0.mlp":  {"0": 256, "-1": 0, "1": 128, "2": 128, "3": 64, "4": 0},
 "1.attn": {"0": 16, "-1": 4, "1": 16, "2": 8, "3": 4, "4": 4},
 "1.mlp":  {"0": 256, "-1": 64, "1": 128, "2": 128, "3": 64, "4": 64},
 "2.attn": {"0": 16, "-1": 0, "1": 16, "2": 8, "3": 4, "4": 0},
 "2.mlp":  {"0": 256, "-1": 64, "1": 128, "2": 128, "3": 64, "4": 64},
 "3.attn": {"0": 16, "-1": 4, "1": 16, "2": 8, "3": 4, "4": 4},
 "3.mlp":  {"0": 256, "-1": 64, "1": 128, "2": 128, "3": 64, "4": 64}}
JSON
check "super-network" 0 "$BIN/skd-convert" --model "$FIX/$M.pth" --arch "$FIX/$M.json" \
  --mask-table "$W/mask_table.json" --out "$W/super.safetensors"
LT=(--latency-repeats 5 --threads 1)
check "skd-eval --latency-table" 0 "$BIN/skd-eval" --model "$W/super.safetensors" --latency-table --batch-sizes 1,4 "${LT[@]}"
cp "$W/out" "$W/table.txt"
T="$W/super.latency.json"
[ -f "$T" ] && ok "sidecar $T written" || bad "no sidecar latency table"
expect_in "prints where it wrote" "$W/table.txt" "wrote $T (5 codes, libtorch $(json "$T" 'd["runtime_version"]'), cpu, 1 threads"
[ "$(grep -c '^ *[0-4] ' "$W/table.txt")" = 5 ] && ok "prints 5 code rows" || bad "code rows: $(cat "$W/table.txt")"
[ "$(json "$T" '" ".join(map(str, (len(d["codes"]), d["batch_sizes"], d["threads"], d["device"], all(len(c["latency"]) == 2 and c["latency"][0]["median_ms"] > 0 for c in d["codes"]))))')" = "5 [1, 4] 1 cpu True" ] \
  && ok "table: 5 codes x 2 batch sizes, threads, device" || bad "table content: $(head -c 600 "$T")"
sha=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$W/super.safetensors")
[ "$(json "$T" 'd["model_sha256"]')" = "$sha" ] && ok "table names the model's sha256" || bad "model_sha256"
# MACs in the table are the mask table's (skd-extract --list).
"$BIN/skd-extract" --supernet "$W/super.safetensors" --list 2>/dev/null | awk '$1 ~ /^[0-9]+$/ {print $1, $2, $3}' >"$W/list"
python3 - "$T" "$W/list" >"$W/macs_cmp" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
fmt = lambda x: f"{round(x / 1e6, 2):.2f} MMac"
rows = [f"{c['code']} {fmt(c['macs_paper'])}" for c in d["codes"]]
listed = [" ".join(l.split()[:3]) for l in open(sys.argv[2])]
print("same" if rows == listed else f"table {rows} != list {listed}")
PY
expect_in "table MACs == --list MACs" "$W/macs_cmp" "same"
check "--out elsewhere" 0 "$BIN/skd-eval" --model "$W/super.safetensors" --latency-table --batch-sizes 2 \
  --out "$W/other.json" --latency-repeats 2 --threads 1
[ "$(json "$W/other.json" 'd["batch_sizes"]')" = "[2]" ] && ok "--out table at batch 2" || bad "--out table"

# Selection: a budget equal to code 2's median at batch 1 selects the lowest code whose median fits.
budget=$(json "$T" 'd["codes"][2]["latency"][0]["median_ms"]')
want=$(json "$T" "min(c['code'] for c in d['codes'] if c['latency'][0]['median_ms'] <= $budget)")
check "skd-extract --latency" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency "${budget}ms" --batch 1 \
  --out "$W/sub.safetensors"
expect_in "picks the lowest fitting code ($want)" "$W/out" "op code $want of 0..4"
expect_in "prints the measured latency" "$W/out" "latency budget"
[ "$(manifest "$W/sub.safetensors" '" ".join(map(str, (m["provenance"]["op_code"], m["provenance"]["latency"]["batch_size"], m["provenance"]["latency"]["device"])))')" = "$want 1 cpu" ] \
  && ok "provenance records code, batch, device" || bad "provenance: $(manifest "$W/sub.safetensors" 'm["provenance"]')"
[ "$(manifest "$W/sub.safetensors" 'm["provenance"]["latency"]["median_ms"]')" = "$(json "$T" "d['codes'][$want]['latency'][0]['median_ms']")" ] \
  && ok "provenance median = table's" || bad "provenance median"
check "same code by --op-code" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --op-code "$want" --out "$W/byc.safetensors"
same_weights "--latency == --op-code weights" "$W/sub.safetensors" "$W/byc.safetensors" 0
check "a huge budget picks code 0" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 10s --out "$W/s0.safetensors"
expect_in "code 0" "$W/out" "op code 0 of"
check "batch 4 column" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 10s --batch 4 --latency-table "$T" \
  --out "$W/s4.safetensors"

# Errors.
fastest=$(json "$T" 'min(c["latency"][0]["median_ms"] for c in d["codes"])')
check "budget below the fastest code" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" \
  --latency "$(python3 -c "print($fastest / 2)")ms" --out "$W/bad1.safetensors"
expect_in "names the fastest code" "$W/err" "below the fastest sub-network in '$T'"
check "batch the table lacks" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 5ms --batch 64 --out "$W/bad2.safetensors"
expect_in "names --batch and the measured sizes" "$W/err" "--batch 64: --latency-table '$T' was measured at batch size(s) 1, 4 only"
sed 's/"-1": 8, "1": 16, "2": 8, "3": 8, "4": 8}/"-1": 4, "1": 16, "2": 8, "3": 8, "4": 4}/' "$W/mask_table.json" >"$W/mask_table2.json"
cmp -s "$W/mask_table.json" "$W/mask_table2.json" && bad "mask_table2.json is not another table"
check "another super-network" 0 "$BIN/skd-convert" --model "$FIX/$M.pth" --arch "$FIX/$M.json" \
  --mask-table "$W/mask_table2.json" --out "$W/super2.safetensors"
check "table of another model" 2 "$BIN/skd-extract" --supernet "$W/super2.safetensors" --latency 5ms --latency-table "$T" \
  --out "$W/bad3.safetensors"
expect_in "says so" "$W/err" "was measured for another model file"
check "no table" 2 "$BIN/skd-extract" --supernet "$W/super2.safetensors" --latency 5ms --out "$W/bad4.safetensors"
expect_in "names the missing sidecar" "$W/err" "super2.latency.json' cannot be opened"
echo '{"format": "skd-something-else"}' >"$W/not_a_table.json"
check "a JSON file that is not a latency table" 1 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 5ms \
  --latency-table "$W/not_a_table.json" --out "$W/bad8.safetensors"
expect_in "says so (format error)" "$W/err" "not_a_table.json': not a latency table"
check "bad duration" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 5min --out "$W/bad5.safetensors"
expect_in "names --latency" "$W/err" "--latency: '5min'"
check "--latency with --macs" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 5ms --macs 1G --out "$W/bad6.safetensors"
check "--batch without --latency" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --op-code 1 --batch 4 --out "$W/bad7.safetensors"
check "extract code 1" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --op-code 1 --out "$W/c1.safetensors"
check "latency table of a plain model" 2 "$BIN/skd-eval" --model "$W/c1.safetensors" --latency-table "${LT[@]}"
expect_in "not a super-network" "$W/err" "is not a super-network"
check "--out without --latency-table" 2 "$BIN/skd-eval" --model "$W/super.safetensors" --latency 1 --out "$W/x.json"
for f in bad1 bad2 bad3 bad4 bad5 bad8; do [ -e "$W/$f.safetensors" ] && bad "$f.safetensors written"; done

if command -v gnuplot >/dev/null 2>&1; then
  check "plot_latency.py" 0 /usr/bin/python3 "$SRC/tools/experiments/plot_latency.py" "$T" "$W/latency.png" --batch 4
  [ -s "$W/latency.png" ] && ok "plot written" || bad "no plot"
else
  echo "note: gnuplot not installed; plot not tested"
fi
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
