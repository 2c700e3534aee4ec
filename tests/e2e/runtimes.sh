#!/usr/bin/env bash
# End-to-end: the deployment runtimes (issue 26), in the project's runtimes environment
# (scripts/setup_venv.sh --runtimes, cached):
#  - accuracy through the runtime: skd-eval on an exported .onnx (onnxruntime and OpenVINO) and on the
#    artifact with --runtime gives LibTorch's top-1 (within 0.02 points) on a generated image folder and
#    on Fashion-MNIST
#  - latency tables measured in libtorch, onnxruntime and openvino: each names its runtime and version,
#    skd-extract --latency --latency-table selects a code from it and records the runtime in the
#    provenance; a table of another runtime, of another runtime version or of another model is refused
#  - int8: skd-export --int8 --calibration writes a quantized graph that runs, reports its top-1
#    agreement with fp32 (--verify) and records the scheme and the calibration set in its manifest
#  - the preprocess entry in the ONNX metadata; --embed-normalize unit|uint8 graphs give the plain graph's
#    logits (1e-5) in onnxruntime, run in OpenVINO and quantize to int8 (issue 27)
#  - bad input: a runtime that is not installed (says how to install it), an .onnx whose input does not
#    fit the data, a manifest that disagrees with its graph, an empty or unreadable calibration set,
#    --runtime libtorch for an .onnx: a clear error, exit 1 or 2, no file left
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR.
set -uo pipefail
source "$(dirname "$0")/common.bash"
VENV=$(bash "$SRC/scripts/setup_venv.sh" --runtimes 2>/dev/null | tail -1)
PY="$VENV/bin/python"
if ! "$PY" -c 'import onnxruntime, openvino, onnx' 2>/dev/null; then
  echo "FAIL the runtimes environment '$VENV' lacks onnxruntime/openvino/onnx (bash scripts/setup_venv.sh --runtimes)"
  exit 1
fi
export SKD_PYTHON="$PY"
T=(--threads 1)
top1() { sed -n 's/^top-1 \([0-9.]*\)%.*/\1/p' "$1" | head -1; }
# same_top1 NAME A B: top-1 percentages within 0.02 points
same_top1() {
  if [ -n "$2" ] && [ -n "$3" ] && awk -v a="$2" -v b="$3" 'BEGIN { d = a - b; exit !(d <= 0.02 && d >= -0.02) }'; then
    ok "$1: $2 % vs $3 %"
  else
    bad "$1: top-1 '$2' vs '$3'"
  fi
}

# An image folder of 200 Fashion-MNIST test images (PNG, one folder per class, 100 in train/ and 100
# in val/) and the demo's model (1-channel 28x28, 10 classes) with a three-code mask table attached.
/usr/bin/python3 - "$W/data" <<'PY'
import gzip, os, sys
from PIL import Image
root, base = sys.argv[1], "/usr/share/datasets/fashion-mnist/t10k-"
images = gzip.open(base + "images-idx3-ubyte.gz").read()[16:]
labels = gzip.open(base + "labels-idx1-ubyte.gz").read()[8:]
for i in range(200):
    d = os.path.join(root, "train" if i < 100 else "val", str(labels[i]))
    os.makedirs(d, exist_ok=True)
    Image.frombytes("L", (28, 28), images[i * 784:(i + 1) * 784]).save(os.path.join(d, f"{i:03d}.png"))
PY
python3 - "$W/demo_table.json" <<'PY'
import json, sys
codes = [[(32, 256)] * 6,
         [(32, 192)] * 3 + [(16, 192)] * 3,
         [(16, 128), (8, 128), (16, 0), (8, 64), (0, 128), (8, 64)]]
t = {}
for b in range(6):
    for i, part in enumerate(("attn", "mlp")):
        w = {str(k): c[b][i] for k, c in enumerate(codes)}
        t[f"{b}.{part}"] = {"0": w["0"], "-1": w["2"], "1": w["1"], "2": w["2"]}
json.dump(t, open(sys.argv[1], "w"))
PY
check "attach a mask table" 0 "$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" \
  --mask-table "$W/demo_table.json" --out "$W/super.safetensors"
sed 's/"1": 192/"1": 128/g' "$W/demo_table.json" >"$W/other_table.json"
check "another super-network" 0 "$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" \
  --mask-table "$W/other_table.json" --out "$W/other.safetensors"
check "export code 1 (fp32)" 0 "$BIN/skd-export" --supernet "$W/super.safetensors" --op-code 1 --out "$W/sub1.onnx" "${T[@]}"
check "extract code 1" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --op-code 1 --out "$W/sub1.safetensors"

# 1. Accuracy through the runtime equals LibTorch's.
for data in "$W/data" fashion-mnist; do
  extra=()
  [ "$data" = fashion-mnist ] && extra=(--limit 1000)
  check "libtorch on $data" 0 "$BIN/skd-eval" --model "$W/sub1.safetensors" --data "$data" "${extra[@]}" "${T[@]}"
  ref=$(top1 "$W/out")
  [ "$data" = "$W/data" ] && folder_ref=$ref
  for rt in onnxruntime openvino; do
    check "$rt: .onnx on $data" 0 "$BIN/skd-eval" --model "$W/sub1.onnx" --runtime "$rt" --data "$data" "${extra[@]}" "${T[@]}"
    expect_in "$rt: names the runtime and its version" "$W/out" "^runtime $rt [0-9]"
    same_top1 "$rt .onnx = libtorch top-1 ($data)" "$(top1 "$W/out")" "$ref"
  done
  check "onnxruntime: the artifact itself (--runtime)" 0 "$BIN/skd-eval" --model "$W/sub1.safetensors" \
    --runtime onnxruntime --data "$data" "${extra[@]}" "${T[@]}" --json "$W/acc.json"
  same_top1 "artifact --runtime onnxruntime = libtorch top-1 ($data)" "$(top1 "$W/out")" "$ref"
done
[ "$(json "$W/acc.json" 'd["runtime"]')" = onnxruntime ] && ok "--json records the runtime" || bad "--json: no runtime"
check "latency in openvino" 0 "$BIN/skd-eval" --model "$W/sub1.onnx" --runtime openvino --latency 1,4 \
  --latency-repeats 3 "${T[@]}" --json "$W/lat.json"
[ "$(json "$W/lat.json" 'len(d["latency"])')" = 2 ] && ok "latency rows for batch 1 and 4" || bad "latency rows"

# 2. Latency tables in each runtime; skd-extract selects from each and records the runtime.
for rt in libtorch onnxruntime openvino; do
  check "$rt: latency table" 0 "$BIN/skd-eval" --model "$W/super.safetensors" --latency-table --runtime "$rt" \
    --latency-repeats 3 "${T[@]}" --out "$W/table.$rt.json"
  [ "$(json "$W/table.$rt.json" 'd["runtime"]')" = "$rt" ] && ok "$rt: the table names its runtime" ||
    bad "$rt: table runtime '$(json "$W/table.$rt.json" 'd.get("runtime")')'"
  [ -n "$(json "$W/table.$rt.json" 'd["runtime_version"]')" ] && ok "$rt: and its version" || bad "$rt: no version"
  check "$rt: skd-extract selects from it" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 10s \
    --latency-table "$W/table.$rt.json" --runtime "$rt" --out "$W/lat.$rt.safetensors"
  expect_in "$rt: prints the runtime" "$W/out" "in $rt "
  [ "$(manifest "$W/lat.$rt.safetensors" 'm["provenance"]["latency"]["runtime"]')" = "$rt" ] &&
    ok "$rt: provenance records the runtime" || bad "$rt: provenance runtime"
done
check "the default sidecar of a runtime" 0 "$BIN/skd-eval" --model "$W/super.safetensors" --latency-table \
  --runtime onnxruntime --latency-repeats 2 "${T[@]}"
[ -f "$W/super.latency.onnxruntime.json" ] && ok "super.latency.onnxruntime.json written" || bad "no runtime sidecar"
check "skd-extract --runtime finds its sidecar" 0 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 10s \
  --runtime onnxruntime --out "$W/lat.side.safetensors"
check "a table of another runtime" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 10s \
  --latency-table "$W/table.onnxruntime.json" --runtime openvino --out "$W/bad1.safetensors"
expect_in "names the table and both runtimes" "$W/err" "table.onnxruntime.json' was measured in onnxruntime"
python3 - "$W/table.onnxruntime.json" "$W/old.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1])); t["runtime_version"] = "0.0.1"; json.dump(t, open(sys.argv[2], "w"))
PY
check "a table of another runtime version" 2 "$BIN/skd-extract" --supernet "$W/super.safetensors" --latency 10s \
  --latency-table "$W/old.json" --runtime onnxruntime --out "$W/bad2.safetensors"
expect_in "says to measure it again" "$W/err" "measured in onnxruntime 0.0.1, but onnxruntime"
check "a table of another model" 2 "$BIN/skd-extract" --supernet "$W/other.safetensors" --latency 10s \
  --latency-table "$W/table.onnxruntime.json" --out "$W/bad3.safetensors"
expect_in "names the other model" "$W/err" "was measured for another model file"

# 3. int8.
check "int8 export with --verify" 0 "$BIN/skd-export" --supernet "$W/super.safetensors" --op-code 1 --int8 \
  --calibration "$W/data" --calibration-samples 24 --verify --out "$W/sub1.int8.onnx" "${T[@]}"
expect_in "reports the top-1 agreement" "$W/out" "^int8: .*calibrated on 24 images; top-1 agreement with fp32"
check "int8 runs in onnxruntime" 0 "$BIN/skd-eval" --model "$W/sub1.int8.onnx" --data "$W/data" "${T[@]}" --json "$W/q.json"
q8=$(top1 "$W/out")
awk -v a="$q8" -v b="$folder_ref" 'BEGIN { exit !(a != "" && a + 5 >= b) }' && ok "int8 top-1 $q8 % (fp32 $folder_ref %)" ||
  bad "int8 top-1 '$q8' % far below fp32 $folder_ref %"
[ "$(json "$W/q.json" 'd["quantization"]["calibration"]["images"]')" = 24 ] && ok "the manifest records the calibration set" ||
  bad "no quantization record"
check "int8 export of a fixed-batch graph" 0 "$BIN/skd-export" --supernet "$W/super.safetensors" --op-code 2 --int8 \
  --calibration "$W/data" --calibration-samples 10 --batch 4 --verify --out "$W/sub2.b4.int8.onnx" "${T[@]}"
expect_in "reports its agreement on all 10 images" "$W/out" "calibrated on 10 images; top-1 agreement"
check "the fixed-batch int8 graph evaluates (last batch padded)" 0 "$BIN/skd-eval" --model "$W/sub2.b4.int8.onnx" \
  --data "$W/data" "${T[@]}"
check "int8 runs in openvino" 0 "$BIN/skd-eval" --model "$W/sub1.int8.onnx" --runtime openvino --data "$W/data" "${T[@]}"

# 4. The preprocessing in the ONNX metadata, and in the graph with --embed-normalize (issue 27): the graph
# that normalizes its own input gives the plain graph's logits on the same images (within 1e-5).
onnx_manifest() {  # onnx_manifest FILE EXPR: EXPR of the skd manifest m in the ONNX metadata
  "$PY" -c 'import json, sys, onnx
m = json.loads({p.key: p.value for p in onnx.load(sys.argv[1]).metadata_props}["skd_manifest"])
print(eval(sys.argv[2]))' "$@"
}
[ "$(onnx_manifest "$W/sub1.onnx" '(m["graph_input"], m["preprocess"]["mean"], m["preprocess"]["std"])')" = \
  "('normalized', [0.286], [0.353])" ] && ok "the ONNX metadata holds the preprocess entry" \
  || bad "ONNX metadata: $(onnx_manifest "$W/sub1.onnx" 'm.get("preprocess")')"
check "plain graph on the folder" 0 "$BIN/skd-eval" --model "$W/sub1.onnx" --data "$W/data" "${T[@]}" \
  --save-outputs "$W/plain.out"
for input in unit uint8; do
  check "export --embed-normalize $input --verify" 0 "$BIN/skd-export" --supernet "$W/super.safetensors" --op-code 1 \
    --embed-normalize "$input" --verify --out "$W/sub1.$input.onnx" "${T[@]}"
  expect_in "$input: prints the normalization" "$W/out" "normalized in the graph (1x28x28, bilinear"
  expect_in "$input: parity in onnxruntime" "$W/out" "^parity: max |logit diff|"
  [ "$(onnx_manifest "$W/sub1.$input.onnx" 'm["graph_input"]')" = "$input" ] && ok "$input: recorded as graph_input" \
    || bad "$input: graph_input $(onnx_manifest "$W/sub1.$input.onnx" 'm.get("graph_input")')"
  check "$input graph on the folder" 0 "$BIN/skd-eval" --model "$W/sub1.$input.onnx" --data "$W/data" "${T[@]}" \
    --save-outputs "$W/$input.out"
  if python3 "$SRC/tools/dev/compare_outputs.py" "$W/plain.out" "$W/$input.out" logits --atol 1e-5 >"$W/cmp" 2>&1; then
    ok "$input graph = plain graph fed normalized images ($(tail -1 "$W/cmp"))"
  else
    bad "$input graph differs from the plain one"; sed 's/^/  | /' "$W/cmp" | tail -5
  fi
  check "$input graph in openvino" 0 "$BIN/skd-eval" --model "$W/sub1.$input.onnx" --runtime openvino --data "$W/data" \
    "${T[@]}"
  same_top1 "$input graph: openvino = libtorch top-1" "$(top1 "$W/out")" "$folder_ref"
done
check "--mean for a graph that normalizes itself" 2 "$BIN/skd-eval" --model "$W/sub1.unit.onnx" --data "$W/data" \
  --mean 0.5 "${T[@]}"
expect_in "names --mean" "$W/err" "normalizes its input inside the graph"
check "int8 of a uint8 graph" 0 "$BIN/skd-export" --supernet "$W/super.safetensors" --op-code 1 --embed-normalize uint8 \
  --int8 --calibration "$W/data" --calibration-samples 24 --verify --out "$W/sub1.uint8.int8.onnx" "${T[@]}"
expect_in "uint8 int8: calibrated as the graph reads" "$W/out" "^int8: .*calibrated on 24 images"
check "the uint8 int8 graph evaluates" 0 "$BIN/skd-eval" --model "$W/sub1.uint8.int8.onnx" --data "$W/data" "${T[@]}"
q8u=$(top1 "$W/out")
awk -v a="$q8u" -v b="$folder_ref" 'BEGIN { exit !(a != "" && a + 5 >= b) }' && ok "uint8 int8 top-1 $q8u % (fp32 $folder_ref %)" ||
  bad "uint8 int8 top-1 '$q8u' % far below fp32 $folder_ref %"
python3 - "$W/super.safetensors" "$W/noentry.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
m = json.loads(h["__metadata__"]["skd_manifest"]); m.pop("preprocess")
h["__metadata__"]["skd_manifest"] = json.dumps(m)
t = json.dumps(h).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
check "--embed-normalize without a preprocess entry" 2 "$BIN/skd-export" --supernet "$W/noentry.safetensors" \
  --op-code 1 --embed-normalize unit --out "$W/bad7.onnx"
expect_in "says the normalization is unknown" "$W/err" "has no preprocess entry"
[ ! -e "$W/bad7.onnx" ] && ok "nothing written" || bad "bad7.onnx written"

# 5. The README's commands, as written (in $W/doc: the demo model's super-network and its 4/12 export).
doc_setup
cp "$W/super.safetensors" "$W/doc/super.safetensors"
check "README: the 4/12 export" 0 "$BIN/skd-export" --supernet "$W/doc/super.safetensors" --macs-ratio 4:12 \
  --out "$W/doc/sub4.onnx"
doc_cmd "README: .onnx accuracy" 0 '$B/skd-eval --model sub4.onnx --data fashion-mnist --limit 1000'
doc_cmd "README: OpenVINO latency" 0 '$B/skd-eval --model sub4.onnx --runtime openvino --latency 1,64'
doc_cmd "README: onnxruntime table" 0 '$B/skd-eval --model super.safetensors --latency-table --runtime onnxruntime --batch-sizes 1,64'
doc_cmd "README: select from it" 0 '$B/skd-extract --supernet super.safetensors --latency 2ms --runtime onnxruntime --out fast.safetensors'
doc_cmd "README: int8 export" 0 '$B/skd-export --supernet super.safetensors --macs-ratio 4:12 --int8 --calibration fashion-mnist --verify --out sub4.int8.onnx'
doc_cmd "README: int8 accuracy" 0 '$B/skd-eval --model sub4.int8.onnx --data fashion-mnist --limit 1000'
doc_cmd "README: normalization in the graph" 0 '$B/skd-export --supernet super.safetensors --macs-ratio 4:12 --embed-normalize uint8 --out sub4.u8.onnx'

# 6. Bad input.
check "runtime not installed" 1 "$BIN/skd-eval" --model "$W/sub1.onnx" --data "$W/data" --python /usr/bin/python3
expect_in "says how to install it" "$W/err" "setup_venv.sh --runtimes"
check ".onnx with --runtime libtorch" 2 "$BIN/skd-eval" --model "$W/sub1.onnx" --runtime libtorch --data "$W/data"
expect_in "names the flag" "$W/err" "--runtime onnxruntime or openvino"
"$PY" - "$W/two_channels.onnx" "$W/sub1.onnx" "$W/lying.onnx" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 8, 8])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])
w = numpy_helper.from_array(np.zeros((128, 10), np.float32), "w")
g = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                      "two_channels", [x], [y], [w])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
import json
m = onnx.load(sys.argv[2])
for p in m.metadata_props:
    if p.key == "skd_manifest":
        d = json.loads(p.value); d["config"]["img_size"] = 32; p.value = json.dumps(d)
onnx.save(m, sys.argv[3])
PY
check "an .onnx reading 2 channels" 2 "$BIN/skd-eval" --model "$W/two_channels.onnx" --data "$W/data"
expect_in "names the file and the channels" "$W/err" "two_channels.onnx' reads 2-channel images"
check "a manifest that disagrees with its graph" 1 "$BIN/skd-eval" --model "$W/lying.onnx" --data "$W/data"
expect_in "names the file" "$W/err" "lying.onnx': its manifest describes 1 channels of 32x32"
mkdir -p "$W/empty/train" "$W/broken/train/a"
printf 'not an image' >"$W/broken/train/a/x.png"
check "an empty calibration set" 2 "$BIN/skd-export" --supernet "$W/super.safetensors" --op-code 1 --int8 \
  --calibration "$W/empty" --out "$W/bad4.onnx"
expect_in "names --calibration" "$W/err" "--calibration"
check "an unreadable calibration set" 2 "$BIN/skd-export" --supernet "$W/super.safetensors" --op-code 1 --int8 \
  --calibration "$W/broken" --out "$W/bad5.onnx"
expect_in "says none could be read" "$W/err" "could be read"
check "--int8 without --calibration" 2 "$BIN/skd-export" --supernet "$W/super.safetensors" --int8 --out "$W/bad6.onnx"
check "--calibration without --int8" 2 "$BIN/skd-export" --supernet "$W/super.safetensors" --calibration "$W/data" \
  --out "$W/bad7.onnx"
left=$(ls "$W"/bad*.* 2>/dev/null)
[ -z "$left" ] && ok "no file left by a refused command" || bad "files left: $left"
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
