#!/usr/bin/env bash
# End-to-end: bad inputs a user can feed the apps (files from the internet, typos), each run through
# the app that reads it. Every case must end with exit 1 (bad file / I/O) or 2 (bad usage or value),
# never a signal, with a message that names the file, key or flag, and must leave no output file.
# With SKD_BAD_INPUTS_TABLE=FILE the observed behaviour is also written as the Markdown table of
# docs/reliability.md (temporary paths shown as <tmp>).
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR.
set -uo pipefail
source "$(dirname "$0")/common.bash"
MODEL="$SRC/assets/vit_fmnist.safetensors"
FIX="${SKD_FIXTURES:-$SRC/tests/fixtures}/timm"
MICRO="$FIX/vit_micro_32.safetensors"
TABLE="${SKD_BAD_INPUTS_TABLE:-}"
[ -n "$TABLE" ] && printf '| input | command | exit | message |\n|---|---|---:|---|\n' >"$TABLE"

# case NAME EXPECTED_EXIT MUST_MENTION APP ARGS...   (output always goes to $W/o; it must not exist after)
case_() {
  local name=$1 want=$2 mention=$3 app=$4
  shift 4
  rm -f "$W/o"
  "$BIN/$app" "$@" >"$W/out" 2>"$W/err"
  local rc=$?
  local msg
  msg=$(grep -v -e '^\s*$' -e '^Run with --help' -e '^\[[0-9:.]*\] ' "$W/err" | tr '\n' ' ' | sed "s#$W#<tmp>#g; s#$FIX#<fixtures>#g; s#$SRC/##g; s/ *$//")
  if [ "$rc" -ne "$want" ]; then
    bad "$name: exit $rc, expected $want"; sed 's/^/  | /' "$W/err" | tail -5
  elif ! grep -qF -- "$mention" "$W/err"; then
    bad "$name: message does not mention '$mention'"; sed 's/^/  | /' "$W/err" | tail -5
  elif [ -e "$W/o" ]; then
    bad "$name: wrote $W/o"
  else
    ok "$name: exit $rc, $msg"
  fi
  if [ -n "$TABLE" ]; then
    local shown="$app $*"
    shown=${shown//$W/<tmp>}
    shown=${shown//$SRC\//}
    shown=${shown//$FIX/<fixtures>}
    printf '| %s | `%s` | %s | %s |\n' "$name" "$shown" "$rc" "${msg//|/\\|}" >>"$TABLE"
  fi
}

# --- weight files ---------------------------------------------------------------------------------
python3 - "$W" "$MODEL" <<'ENDOFPY'
import json, struct, sys, zipfile, io, pickle
w, model = sys.argv[1], sys.argv[2]
b = open(model, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
data = b[8 + n:]
def st(h, d=data, name=None):
    hb = json.dumps(h).encode()
    open(f"{w}/{name}", "wb").write(struct.pack("<Q", len(hb)) + hb + d)
open(f"{w}/empty.safetensors", "wb").write(b"")
open(f"{w}/random.safetensors", "wb").write(bytes((i * 7919 + 13) % 251 for i in range(4096)))
open(f"{w}/huge_header.safetensors", "wb").write(struct.pack("<Q", 100 * 10**9) + b"{}")
open(f"{w}/truncated.safetensors", "wb").write(b[: len(b) // 2])
open(f"{w}/not_json.safetensors", "wb").write(struct.pack("<Q", 8) + b"{nope!!}" + data)
h = json.loads(json.dumps(header)); k = next(k for k in h if k != "__metadata__")
h[k]["data_offsets"] = [0, 100 * 10**9]; st(h, name="offsets_past_end.safetensors")
h = json.loads(json.dumps(header)); h[k]["dtype"] = "Q4"; st(h, name="unknown_dtype.safetensors")
h = json.loads(json.dumps(header)); h[k]["shape"] = [10**6, 10**6]; st(h, name="shape_vs_bytes.safetensors")
h = json.loads(json.dumps(header)); h["__metadata__"]["skd_manifest"] = "{broken"; st(h, name="manifest_not_json.safetensors")
m = json.loads(header["__metadata__"]["skd_manifest"])
m2 = dict(m, format_version=99); h = json.loads(json.dumps(header)); h["__metadata__"]["skd_manifest"] = json.dumps(m2)
st(h, name="manifest_version.safetensors")
cfg = dict(m["config"], embed_dim=1 << 20, depth=4096, widths=[[1 << 19, 1 << 22]] * 4096)
h = json.loads(json.dumps(header)); h["__metadata__"]["skd_manifest"] = json.dumps(dict(m, config=cfg, widths=cfg["widths"]))
st(h, name="manifest_giant_model.safetensors")
cfg = dict(m["config"], embed_dim=4096, num_heads=32, depth=64, widths=[[128, 16384]] * 64)
h = json.loads(json.dumps(header)); h["__metadata__"]["skd_manifest"] = json.dumps(dict(m, config=cfg, widths=cfg["widths"]))
st(h, name="manifest_big_model.safetensors")
h = json.loads(json.dumps(header)); del h[k]; st(h, name="missing_key.safetensors")
# NaN in one weight: the first float of the first tensor
h = header; off = h[k]["data_offsets"][0]; d = bytearray(data); d[off:off + 4] = struct.pack("<f", float("nan"))
st(h, bytes(d), name="nan_weight.safetensors")
# .pth files: a zip whose data.pkl is garbage, a pickle that asks for os.system, a truncated zip
def zwrite(name, entries):
    with zipfile.ZipFile(f"{w}/{name}", "w") as z:
        for n_, c in entries.items(): z.writestr(n_, c)
zwrite("garbage_pickle.pth", {"archive/data.pkl": b"\x80\x02garbage", "archive/version": b"3\n"})
evil = b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00touch PWNDq\x01\x85q\x02Rq\x03."
zwrite("evil_pickle.pth", {"archive/data.pkl": evil, "archive/version": b"3\n"})
good = io.BytesIO()
with zipfile.ZipFile(good, "w") as z: z.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
open(f"{w}/truncated_zip.pth", "wb").write(good.getvalue()[:-30])
# mask tables
blocks = m["config"]["depth"]
ok_tab = {f"{i}.{t}": {"0": 32 if t == "attn" else 256, "-1": 8 if t == "attn" else 64, "1": 8 if t == "attn" else 64}
          for i in range(blocks) for t in ("attn", "mlp")}
json.dump(ok_tab, open(f"{w}/table_ok.json", "w"))
t = json.loads(json.dumps(ok_tab)); t["0.attn"]["1"] = 40; t["0.attn"]["-1"] = 40
json.dump(t, open(f"{w}/table_grows.json", "w"))
t = json.loads(json.dumps(ok_tab)); del t["3.mlp"]; json.dump(t, open(f"{w}/table_missing.json", "w"))
open(f"{w}/table_not_json.json", "w").write('{"0.attn": {"0": 32,')
# IDX folders
import gzip, os
for name, img, lab in [("idx_magic", b"\x00\x00\x08\x04" + struct.pack(">III", 1, 28, 28) + bytes(784), None),
                       ("idx_truncated", None, None), ("idx_huge", None, None)]:
    pass
os.makedirs(f"{w}/idx_bad_magic"); os.makedirs(f"{w}/idx_truncated"); os.makedirs(f"{w}/idx_huge")
lab = b"\x00\x00\x08\x01" + struct.pack(">I", 2) + bytes(2)
for d, img in [("idx_bad_magic", b"\x00\x00\x09\x03" + struct.pack(">III", 2, 28, 28) + bytes(2 * 784)),
               ("idx_truncated", b"\x00\x00\x08\x03" + struct.pack(">III", 2, 28, 28) + bytes(784)),
               ("idx_huge", b"\x00\x00\x08\x03" + struct.pack(">III", 4_000_000_000, 60000, 60000) + bytes(16))]:
    for split in ("t10k", "train"):
        open(f"{w}/{d}/{split}-images-idx3-ubyte", "wb").write(img)
        open(f"{w}/{d}/{split}-labels-idx1-ubyte", "wb").write(lab)
os.makedirs(f"{w}/gz_corrupt")
for split in ("t10k", "train"):
    open(f"{w}/gz_corrupt/{split}-images-idx3-ubyte.gz", "wb").write(gzip.compress(bytes(1000))[:-20] + b"\xff" * 20)
    open(f"{w}/gz_corrupt/{split}-labels-idx1-ubyte.gz", "wb").write(gzip.compress(lab))
# image folders: empty; corrupt JPEG; PNG header claiming 100000 x 100000
os.makedirs(f"{w}/imgs_empty/val/cat")
os.makedirs(f"{w}/imgs_bad/val/cat")
open(f"{w}/imgs_bad/val/cat/broken.jpg", "wb").write(b"\xff\xd8\xff\xe0" + bytes(200))
import zlib
def png_chunk(t, c): return struct.pack(">I", len(c)) + t + c + struct.pack(">I", zlib.crc32(t + c) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) + \
      png_chunk(b"IDAT", zlib.compress(bytes(100))) + png_chunk(b"IEND", b"")
os.makedirs(f"{w}/imgs_huge/val/cat")
open(f"{w}/imgs_huge/val/cat/huge.png", "wb").write(png)
# recipes
open(f"{w}/recipe_typo.json", "w").write('{"epochz": 3}')
open(f"{w}/recipe_type.json", "w").write('{"epochs": "three"}')
ENDOFPY

for f in empty random huge_header truncated not_json offsets_past_end unknown_dtype shape_vs_bytes; do
  case_ "safetensors: $f" 1 "$f.safetensors" skd-eval --model "$W/$f.safetensors" --summary --json "$W/o"
done
case_ "artifact: manifest not JSON" 1 "manifest_not_json.safetensors" skd-eval --model "$W/manifest_not_json.safetensors" --summary --json "$W/o"
case_ "artifact: format_version 99" 1 "format_version" skd-eval --model "$W/manifest_version.safetensors" --summary --json "$W/o"
case_ "artifact: manifest asks for a 4096-block, 2^20-wide model" 2 "embed_dim" skd-extract --model "$W/manifest_giant_model.safetensors" --attn-keep 0.5 --out "$W/o"
case_ "artifact: manifest asks for a 13-billion-parameter model (file holds 0.3 M)" 1 "refused before building" skd-extract --model "$W/manifest_big_model.safetensors" --attn-keep 0.5 --out "$W/o"
case_ "artifact: a weight missing" 1 "missing_key.safetensors" skd-extract --model "$W/missing_key.safetensors" --attn-keep 0.5 --out "$W/o"
case_ "artifact: a NaN weight" 1 "non-finite" skd-convert --model "$W/nan_weight.safetensors" --out "$W/o"
case_ ".pth: garbage pickle" 1 "garbage_pickle.pth" skd-convert --model "$W/garbage_pickle.pth" --arch deit_tiny --out "$W/o"
case_ ".pth: pickle calling os.system" 1 "evil_pickle.pth" skd-convert --model "$W/evil_pickle.pth" --arch deit_tiny --out "$W/o"
[ -e PWND ] || [ -e "$W/PWND" ] && bad "the pickle's os.system ran" || ok "the pickle's os.system did not run"
case_ ".pth: truncated zip" 1 "truncated_zip.pth" skd-convert --model "$W/truncated_zip.pth" --arch deit_tiny --out "$W/o"
case_ "foreign checkpoint without --arch" 2 "--arch" skd-convert --model "$FIX/vit_micro_32.safetensors" --out "$W/o"

# --- mask tables ------------------------------------------------------------------------------------
case_ "mask table: not JSON" 1 "table_not_json.json" skd-extract --model "$MODEL" --mask-table "$W/table_not_json.json" --op-code 1 --out "$W/o"
case_ "mask table: a width grows with the code" 1 "table_grows.json" skd-extract --model "$MODEL" --mask-table "$W/table_grows.json" --op-code 1 --out "$W/o"
case_ "mask table: a module missing" 1 "3.mlp" skd-extract --model "$MODEL" --mask-table "$W/table_missing.json" --op-code 1 --out "$W/o"
case_ "op code beyond the table" 2 "--op-code" skd-extract --model "$MODEL" --mask-table "$W/table_ok.json" --op-code 7 --out "$W/o"
case_ "MACs budget below the smallest code" 2 "--macs" skd-extract --model "$MODEL" --mask-table "$W/table_ok.json" --macs 1K --out "$W/o"
case_ "MACs budget not a number" 2 "--macs" skd-extract --model "$MODEL" --mask-table "$W/table_ok.json" --macs lots --out "$W/o"
case_ "--macs on a model without a mask table" 2 "mask" skd-extract --model "$MODEL" --macs 5M --out "$W/o"

# --- datasets ---------------------------------------------------------------------------------------
case_ "IDX: wrong magic" 1 "idx_bad_magic" skd-eval --model "$MODEL" --data "$W/idx_bad_magic" --json "$W/o"
case_ "IDX: fewer bytes than the header says" 1 "idx_truncated" skd-eval --model "$MODEL" --data "$W/idx_truncated" --json "$W/o"
case_ "IDX: header claims 4e9 images of 60000x60000" 1 "idx_huge" skd-eval --model "$MODEL" --data "$W/idx_huge" --json "$W/o"
case_ "IDX: corrupt gzip" 1 "gz_corrupt" skd-eval --model "$MODEL" --data "$W/gz_corrupt" --json "$W/o"
case_ "image folder: a class folder without images" 2 "imgs_empty/val/cat" skd-eval --model "$MICRO" --arch vit_micro_32 --data "$W/imgs_empty" --json "$W/o"
case_ "image folder: a corrupt JPEG, --on-bad-image fail" 1 "broken.jpg" skd-eval --model "$MICRO" --arch vit_micro_32 --data "$W/imgs_bad" --on-bad-image fail --json "$W/o"
case_ "image folder: every image unreadable (skip mode)" 1 "none of its 1 images" skd-eval --model "$MICRO" --arch vit_micro_32 --data "$W/imgs_bad" --json "$W/o"
case_ "image folder: a PNG claiming 100000 x 100000 pixels, --on-bad-image fail" 1 "huge.png" skd-eval --model "$MICRO" --arch vit_micro_32 --data "$W/imgs_huge" --on-bad-image fail --json "$W/o"
case_ "data folder that does not exist" 2 "nowhere" skd-eval --model "$MODEL" --data "$W/nowhere" --json "$W/o"

# --- flags and recipes ------------------------------------------------------------------------------
case_ "--threads 0" 2 "--threads" skd-eval --model "$MODEL" --summary --threads 0 --json "$W/o"
case_ "--device cuda on a machine without CUDA" 2 "cuda" skd-eval --model "$MODEL" --data fashion-mnist --limit 10 --device cuda --json "$W/o"
case_ "unknown --arch" 2 "deit_huge" skd-eval --arch deit_huge --summary --json "$W/o"
case_ "recipe with an unknown key" 2 "epochz" skd-train --config "$W/recipe_typo.json" --model "$MODEL" --data fashion-mnist --out "$W/o"
case_ "recipe with a wrong type" 2 "epochs" skd-train --config "$W/recipe_type.json" --model "$MODEL" --data fashion-mnist --out "$W/o"
case_ "--resume of a folder that is not a run" 2 "imgs_empty" skd-train --resume "$W/imgs_empty" --out "$W/o"
case_ "model classes != dataset classes" 2 "classes" skd-train --arch deit_tiny --data "$W/imgs_huge" --epochs 1 --out "$W/o"
echo "bad inputs e2e: $pass ok, $fails failed"
[ "$fails" -eq 0 ]
