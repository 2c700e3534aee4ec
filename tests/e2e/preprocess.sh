#!/usr/bin/env bash
# End-to-end: artifacts carry their preprocessing (issue 27).
#  - skd-convert records the "preprocess" entry: the architecture's defaults (the official DeiT/Swin
#    evaluation: bicubic, crop_pct 0.875, ImageNet mean/std) or what --crop-pct etc. say
#  - one converted with --crop-pct 0.9 is evaluated with 0.9 from then on without the flag: by skd-eval,
#    after skd-train (fine-tuning on an image folder), after WPAC with proxy data and after skd-extract
#    (the inputs skd-eval saves equal those of an explicit --crop-pct 0.9, and differ from 0.875's)
#  - skd-eval logs the values and where they came from; --json records them; flags override
#  - the embedded model's entry holds Fashion-MNIST's mean and std; its accuracy is unchanged (90.23 %)
#  - an artifact without the entry keeps the defaults and says so; a malformed entry is refused naming
#    the key (skd-eval, skd-extract, skd-train, skd-convert); bad flags name the flag
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR, SKD_FIXTURES.
set -uo pipefail
source "$(dirname "$0")/common.bash"
FIX="${SKD_FIXTURES:?}"
T=(--threads 2)

# A 2-class image folder of 48x40 RGB images (train and val), so the crop percentage matters.
/usr/bin/python3 - "$W/data" <<'PY'
import os, random, sys
from PIL import Image
rng = random.Random(0)
for split, n in (("train", 16), ("val", 6)):
    for k in range(2):
        d = os.path.join(sys.argv[1], split, f"c{k}")
        os.makedirs(d)
        for i in range(n):
            im = Image.new("RGB", (48, 40))
            im.putdata([tuple(rng.randrange(0, 256) if (x // 8 + y // 8 + k) % 2 else rng.randrange(0, 64)
                              for _ in range(3)) for y in range(40) for x in range(48)])
            im.save(os.path.join(d, f"{i:02d}.png"))
PY
entry() { manifest "$1" 'json.dumps(m.get("preprocess"), sort_keys=True)'; }
crop() { manifest "$1" 'm["preprocess"]["crop_pct"]'; }

# skd-convert: the defaults, or the flags
check "convert a timm checkpoint (format only)" 0 "$BIN/skd-convert" --model "$FIX/timm/vit_micro_32.pth" \
  --arch "$FIX/timm/vit_micro_32.json" --out "$W/a.safetensors"
want='{"crop_mode": "center", "crop_pct": 0.875, "input_size": [3, 32, 32], "interpolation": "bicubic", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}'
[ "$(entry "$W/a.safetensors")" = "$want" ] && ok "entry: the official DeiT/Swin evaluation" \
  || bad "entry: $(entry "$W/a.safetensors")"
expect_in "convert logs the source" "$W/err" "the architecture's defaults"
check "convert with --crop-pct 0.9" 0 "$BIN/skd-convert" --model "$FIX/timm/vit_micro_32.pth" \
  --arch "$FIX/timm/vit_micro_32.json" --out "$W/b.safetensors" --crop-pct 0.9
[ "$(crop "$W/b.safetensors")" = 0.9 ] && ok "entry: crop_pct 0.9" || bad "crop_pct $(crop "$W/b.safetensors")"

# skd-eval uses the entry, a flag overrides it, and the log and --json say which and from where
EV=(--data "$W/data" --split val --save-inputs "${T[@]}")
check "eval a (entry 0.875)" 0 "$BIN/skd-eval" --model "$W/a.safetensors" "${EV[@]}" --save-outputs "$W/a.out" \
  --json "$W/a.json"
expect_in "logs the values and the entry" "$W/err" "crop_pct 0.875, mean \[0.485, 0.456, 0.406\].*(from the preprocess entry of"
[ "$(json "$W/a.json" 'd["preprocess"]["crop_pct"]')" = 0.875 ] && ok "--json records the preprocessing" \
  || bad "json: $(cat "$W/a.json")"
check "eval b (entry 0.9)" 0 "$BIN/skd-eval" --model "$W/b.safetensors" "${EV[@]}" --save-outputs "$W/b.out"
expect_in "logs crop_pct 0.9" "$W/err" "crop_pct 0.9,"
check "eval a with --crop-pct 0.9" 0 "$BIN/skd-eval" --model "$W/a.safetensors" "${EV[@]}" --crop-pct 0.9 \
  --save-outputs "$W/a09.out"
expect_in "logs the flag" "$W/err" "--crop-pct given"
inputs_equal() {  # inputs_equal A.out B.out: the images the model got are the same
  python3 "$SRC/tools/dev/compare_outputs.py" "$1" "$2" inputs --atol 0 >/dev/null 2>&1
}
inputs_equal "$W/b.out" "$W/a09.out" && ok "b's inputs = a's with --crop-pct 0.9" || bad "b's inputs differ from --crop-pct 0.9"
inputs_equal "$W/b.out" "$W/a.out" && bad "crop_pct 0.9 and 0.875 give the same inputs" \
  || ok "crop_pct 0.875 gives other inputs"

# carried through training (on the image folder), WPAC with proxy data and extraction
check "fine-tune b on the image folder" 0 "$BIN/skd-train" --model "$W/b.safetensors" --data "$W/data" --epochs 1 \
  --batch-size 16 --no-augment --mixup 0 --cutmix 0 --warmup-epochs 0 --workers 0 "${T[@]}" --run-dir "$W/run" \
  --log-every 0
expect_in "train logs the entry" "$W/run/train.log" "crop_pct 0.9,.*(from the preprocess entry of"
[ "$(entry "$W/run/model.safetensors")" = "$(entry "$W/b.safetensors")" ] && ok "skd-train carries the entry" \
  || bad "after training: $(entry "$W/run/model.safetensors")"
ck=$(ls "$W/run/checkpoints"/ckpt-*.safetensors | head -1)
[ "$(entry "$ck")" = "$(entry "$W/b.safetensors")" ] && ok "checkpoints carry it" || bad "checkpoint: $(entry "$ck")"
check "WPAC of the fine-tuned model (proxy: the image folder)" 0 "$BIN/skd-convert" --model "$W/run/model.safetensors" \
  --data "$W/data" --proxy-samples 16 --batch-size 8 --out "$W/wpac.safetensors"
[ "$(entry "$W/wpac.safetensors")" = "$(entry "$W/b.safetensors")" ] && ok "skd-convert carries the entry" \
  || bad "after WPAC: $(entry "$W/wpac.safetensors")"
check "extract" 0 "$BIN/skd-extract" --model "$W/wpac.safetensors" --widths 8:128,16:256,16:64,4:256 \
  --out "$W/sub.safetensors"
[ "$(entry "$W/sub.safetensors")" = "$(entry "$W/b.safetensors")" ] && ok "skd-extract carries the entry" \
  || bad "after extraction: $(entry "$W/sub.safetensors")"
check "eval the sub-network (no flag)" 0 "$BIN/skd-eval" --model "$W/sub.safetensors" "${EV[@]}" --save-outputs "$W/s.out"
inputs_equal "$W/s.out" "$W/a09.out" && ok "the sub-network is evaluated at crop_pct 0.9" || bad "sub-network inputs"

check "--summary shows the entry" 0 "$BIN/skd-eval" --model "$W/sub.safetensors" --summary --json "$W/sum.json"
expect_in "summary line" "$W/out" "^preprocess     3x32x32, bicubic, crop_pct 0.9, mean \[0.485, 0.456, 0.406\]"
[ "$(json "$W/sum.json" 'd["preprocess"]["crop_pct"]')" = 0.9 ] && ok "--summary --json records it" \
  || bad "summary json: $(cat "$W/sum.json")"

# the embedded model: Fashion-MNIST's values, accuracy unchanged
E="$SRC/assets/vit_fmnist.safetensors"
[ "$(manifest "$E" '(m["preprocess"]["mean"], m["preprocess"]["std"], m["preprocess"]["input_size"])')" = \
  "([0.286], [0.353], [1, 28, 28])" ] && ok "embedded model: Fashion-MNIST's mean and std" || bad "embedded: $(entry "$E")"
check "embedded model on Fashion-MNIST" 0 "$BIN/skd-eval" --model "$E" --data fashion-mnist "${T[@]}"
expect_in "90.23 % top-1, as before the entry" "$W/out" "top-1 90.23%"

# an artifact without the entry: the defaults, said so
python3 - "$W/a.safetensors" "$W/old.safetensors" "$W/bad.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
def write(path, change):
    m = json.loads(h["__metadata__"]["skd_manifest"])
    change(m)
    hh = dict(h, __metadata__=dict(h["__metadata__"], skd_manifest=json.dumps(m)))
    t = json.dumps(hh).encode()
    open(path, "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
write(sys.argv[2], lambda m: m.pop("preprocess"))
write(sys.argv[3], lambda m: m["preprocess"].update(crop_pct=1.5))
PY
check "eval an artifact without the entry" 0 "$BIN/skd-eval" --model "$W/old.safetensors" "${EV[@]}" \
  --save-outputs "$W/old.out"
expect_in "says it uses the defaults" "$W/err" "no preprocess entry"
inputs_equal "$W/old.out" "$W/a.out" && ok "the defaults are today's (crop_pct 0.875)" || bad "defaults differ"

# a malformed entry is refused naming the key
for app in "skd-eval --data $W/data --split val" "skd-extract --widths 8:128,16:256,16:64,4:256 --out $W/x.safetensors" \
  "skd-train --data $W/data --epochs 1 --run-dir $W/xr" "skd-convert --out $W/x2.safetensors"; do
  name=${app%% *}
  # shellcheck disable=SC2086
  check "$name refuses crop_pct 1.5" 1 "$BIN/$name" --model "$W/bad.safetensors" ${app#* } "${T[@]}"
  expect_in "$name names preprocess.crop_pct" "$W/err" "bad.safetensors: manifest key 'preprocess.crop_pct' is 1.5"
done

# bad flags name the flag
EV=(--data "$W/data" --split val "${T[@]}")
check "--crop-pct 1.5 refused" 2 "$BIN/skd-eval" --model "$W/a.safetensors" "${EV[@]}" --crop-pct 1.5
expect_in "names --crop-pct" "$W/err" "--crop-pct must be in"
check "--mean of 1 value for 3 channels refused" 2 "$BIN/skd-eval" --model "$W/a.safetensors" "${EV[@]}" --mean 0.5
expect_in "names --mean" "$W/err" "--mean must be 3 number"
check "--interpolation lanczos refused" 2 "$BIN/skd-eval" --model "$W/a.safetensors" "${EV[@]}" \
  --interpolation lanczos
expect_in "names --interpolation" "$W/err" "--interpolation: unknown value 'lanczos'"
check "--crop-pct without --data refused" 2 "$BIN/skd-eval" --model "$W/a.safetensors" --latency 1 --crop-pct 0.9
expect_in "says they go with --data" "$W/err" "go with --data"
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
