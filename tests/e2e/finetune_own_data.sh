#!/usr/bin/env bash
# End-to-end: fine-tuning an extracted sub-network on your own image folder.
#  - a generated 4-class image folder (RGB PNGs) feeds the embedded one-channel model's sub-network
#    (images converted as PIL's convert('L'))
#  - 10 -> 4 classes: skd-train gives it a new head (logged, recorded in the provenance), keeps
#    its widths, and it learns: train loss falls, test top-1 above chance (25 %)
#  - --new-head re-initialises the head even when the class count already matches
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR.
set -uo pipefail
source "$(dirname "$0")/common.bash"
# Class k: a bright square in quadrant k on a noisy background, in random colours (the colour says
# nothing about the class; the position does).
/usr/bin/python3 - "$W/data" <<'PY'
import os, random, sys
from PIL import Image
root = sys.argv[1]
rng = random.Random(0)
for split, n in (("train", 48), ("val", 16)):
    for k in range(4):
        d = os.path.join(root, split, f"class{k}")
        os.makedirs(d)
        for i in range(n):
            im = Image.new("RGB", (32, 32))
            px = im.load()
            fg = tuple(rng.randrange(150, 256) for _ in range(3))
            x0, y0 = (k % 2) * 16 + rng.randrange(1, 5), (k // 2) * 16 + rng.randrange(1, 5)
            for y in range(32):
                for x in range(32):
                    inside = x0 <= x < x0 + 10 and y0 <= y < y0 + 10
                    px[x, y] = fg if inside else tuple(rng.randrange(0, 90) for _ in range(3))
            im.save(os.path.join(d, f"{i:03d}.png"))
PY
[ -d "$W/data/train/class3" ] && ok "generated a 4-class image folder" || bad "image folder not generated"
WIDTHS="32:256,16:0,8:128,32:256,0:64,16:256"
check "extract a sub-network" 0 "$BIN/skd-extract" --model "$SRC/assets/vit_fmnist.safetensors" --widths "$WIDTHS" \
  --out "$W/sub.safetensors"
TRAIN=(--data "$W/data" --batch-size 32 --lr 1e-3 --unscale-lr --warmup-epochs 0 --min-lr 1e-5 --no-augment
       --mixup 0 --cutmix 0 --smoothing 0 --drop-path 0 --no-repeated-aug --threads 1 --workers 1)
check "fine-tune on 4 classes" 0 "$BIN/skd-train" --model "$W/sub.safetensors" --epochs 6 "${TRAIN[@]}" --run-dir "$W/ft"
expect_in "logs the new head" "$W/ft/train.log" "new classification head: 10 -> 4 classes"
expect_in "grayscale conversion in the data description" "$W/ft/train.log" "as grayscale"
M="$W/ft/model.safetensors"
got=$(manifest "$M" '" ".join(map(str, (m["config"]["num_classes"], m["config"]["in_chans"], m["provenance"]["new_head"]["replaced_num_classes"], m["provenance"]["new_head"]["init"])))')
[ "$got" = "4 1 10 trunc_normal(std=0.02), bias 0" ] && ok "manifest: 4 classes, 1 channel, new head recorded" || bad "manifest: $got"
[ "$(manifest "$M" 'm["widths"]')" = "$(manifest "$W/sub.safetensors" 'm["widths"]')" ] && ok "widths kept" \
  || bad "widths changed: $(manifest "$M" 'm["widths"]')"
# params: the head loses (64 + 1) x 6 parameters.
[ "$(( $(manifest "$W/sub.safetensors" 'm["macs"]["params"]') - $(manifest "$M" 'm["macs"]["params"]') ))" = 390 ] \
  && ok "params follow num_classes" || bad "params: $(manifest "$M" 'm["macs"]')"
python3 - "$W/ft/metrics.jsonl" >"$W/learned" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first, last = rows[0], rows[-1]
ok = last["train_loss"] < 0.7 * first["train_loss"] and last["top1"] > 40
print(("learned" if ok else "did not learn") + f": train loss {first['train_loss']:.3f} -> {last['train_loss']:.3f}, "
      f"test top-1 {first['top1']:.1f} -> {last['top1']:.1f} % (chance 25 %)")
PY
cat "$W/learned"
expect_in "loss falls, top-1 above chance" "$W/learned" "^learned"
check "evaluate the fine-tuned model on the folder" 0 "$BIN/skd-eval" --model "$M" --data "$W/data" --split val --threads 1
expect_in "64 val images" "$W/out" "images 64"
# A training checkpoint (optimizer state inside) of the fine-tuned 4-class, one-channel model loads in
# Python (python/skd_loader) with the logits skd-eval computes.
ckpt="$W/ft/checkpoints/$(cat "$W/ft/checkpoints/latest")"
/usr/bin/python3 -c "import sys, torch; sys.path.insert(0, '$SRC/python'); import skd_loader
skd_loader.save_file({'input': torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))}, '$W/in.safetensors')"
check "skd-eval on the checkpoint" 0 "$BIN/skd-eval" --model "$ckpt" --inputs "$W/in.safetensors" --save-outputs "$W/cpp.safetensors" --threads 1
/usr/bin/python3 -c "import sys, torch; sys.path.insert(0, '$SRC/python'); import skd_loader
m = skd_loader.load('$ckpt')
want = skd_loader.load_file('$W/cpp.safetensors')[0]['logits']
with torch.no_grad(): d = (m(skd_loader.load_file('$W/in.safetensors')[0]['input']) - want).abs().max().item()
print('max diff', d, tuple(want.shape)); sys.exit(0 if d <= 1e-5 else 1)" >"$W/py" 2>&1 && ok "Python loader on the checkpoint ($(cat "$W/py"))" || { bad "Python loader on the checkpoint"; cat "$W/py"; }
check "--new-head at the same class count" 0 "$BIN/skd-train" --model "$M" --new-head --epochs 1 "${TRAIN[@]}" --no-eval \
  --run-dir "$W/ft2"
expect_in "logs 4 -> 4" "$W/ft2/train.log" "new classification head: 4 -> 4 classes"
check "no new head without a reason" 0 "$BIN/skd-train" --model "$M" --epochs 1 "${TRAIN[@]}" --no-eval --run-dir "$W/ft3"
grep -q "new classification head" "$W/ft3/train.log" && bad "head replaced without need" || ok "head kept at the same class count"
[ "$(manifest "$W/ft3/model.safetensors" '"new_head" in m["provenance"]')" = "False" ] && ok "no new_head provenance" \
  || bad "new_head provenance without a new head"
check "--new-head without --model" 2 "$BIN/skd-train" --arch "$SRC/configs/models/vit_fmnist_demo.json" --new-head \
  --epochs 1 "${TRAIN[@]}" --no-eval
expect_in "names --new-head" "$W/err" "--new-head goes with --model"
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
