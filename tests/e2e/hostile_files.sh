#!/usr/bin/env bash
# End-to-end: hostile files, outputs and resume (issue 25; docs/reliability.md, "Hostile input").
#  1 --resume DIR writes into DIR (a moved run, resumed from another working directory)
#  2 an output that is an input (same path, symlink, hard link, other spelling) is refused, the input intact
#  3 FIFOs and device nodes: refused as outputs (never replaced) and inputs (no blocking), also in image folders
#  4 output locations checked before any work (a missing folder: no training happens)
#  5 a stale temp file of a killed write is removed by the next write of the same output
#  6 a 100000x1 PNG in an image folder: a bad image (skip / fail), no 20 GB allocation
#  7 unreadable training images counted and reported; all unreadable: said, with an example file
#  8 a truncated latest checkpoint: the error names the newest intact earlier one
#  9 skd-export --verify with a checker printing nonsense / never answering: an error, no temp folder left
# Inputs are made here (mkfifo, ln, PNGs written by Python's zlib/struct, truncated files, fake checkers).
# Env (set by ctest): SKD_BIN, SKD_SOURCE_DIR, SKD_FIXTURES.
set -uo pipefail
source "$(dirname "$0")/common.bash"
BIN=$(realpath "$BIN")  # the resume case runs from other working directories
FIX="${SKD_FIXTURES:-$SRC/tests/fixtures}/timm"
MICRO="$FIX/vit_micro_32.safetensors"
MODEL="$SRC/assets/vit_fmnist.safetensors"
ARCH="$SRC/configs/models/vit_fmnist_demo.json"
T=(--threads 2)
sha() { sha256sum "$1" | cut -d' ' -f1; }
not_there() { if [ -e "$2" ]; then bad "$1: '$2' exists"; else ok "$1"; fi; }
within() {  # within NAME SECONDS EXPECTED_EXIT CMD...: check, and it must not hang
  local name=$1 secs=$2 want=$3
  shift 3
  check "$name" "$want" timeout -k 5 "$secs" "$@"
}

# --- images ------------------------------------------------------------------------------------
python3 - "$W" <<'ENDOFPY'
import os, struct, sys, zlib
w = sys.argv[1]
def png(width, height, seed=0):
    raw = b"".join(b"\x00" + bytes((x * 7 + y * 13 + seed) % 256 for x in range(3 * width)) for y in range(height))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
for split in ("train", "val"):
    for c in ("cat", "dog"):
        os.makedirs(f"{w}/imgs/{split}/{c}")
        for i in range(3 if c == "cat" else 4):  # 8 training images with broken.jpg: 4 batches of 2
            open(f"{w}/imgs/{split}/{c}/{i}.png", "wb").write(png(40, 36, i + len(c)))
open(f"{w}/imgs/train/cat/broken.jpg", "wb").write(b"\xff\xd8\xff\xe0" + bytes(200))
os.makedirs(f"{w}/degenerate/val/cat")
open(f"{w}/degenerate/val/cat/ok.png", "wb").write(png(40, 36))
open(f"{w}/degenerate/val/cat/line.png", "wb").write(png(100000, 1))
for c in ("cat", "dog"):
    os.makedirs(f"{w}/unreadable/train/{c}")
    for i in range(2):
        open(f"{w}/unreadable/train/{c}/{i}.jpg", "wb").write(b"\xff\xd8\xff\xe0" + bytes(100))
ENDOFPY
echo "line.png: $(stat -c %s "$W/degenerate/val/cat/line.png") bytes"
EVAL=("$BIN/skd-eval" --model "$MICRO" --arch vit_micro_32 "${T[@]}")

# --- 2. output = input ---------------------------------------------------------------------------
cp "$MODEL" "$W/m.safetensors"
ln "$W/m.safetensors" "$W/hard.safetensors"
ln -s "$W/m.safetensors" "$W/soft.safetensors"
before=$(sha "$W/m.safetensors")
check "export --out = --model" 2 "$BIN/skd-export" --model "$W/m.safetensors" --out "$W/m.safetensors"
expect_in "export: message names --out and the input" "$W/err" "same file as the input"
check "export --out = a hard link of --model" 2 "$BIN/skd-export" --model "$W/m.safetensors" --out "$W/hard.safetensors"
check "export --out = a symlink to --model" 2 "$BIN/skd-export" --model "$W/soft.safetensors" --out "$W/m.safetensors"
check "export --out = --model, other spelling" 2 "$BIN/skd-export" --model "$W/m.safetensors" --out "$W/./imgs/../m.safetensors"
check "convert --out = --model" 2 "$BIN/skd-convert" --model "$W/m.safetensors" --out "$W/hard.safetensors" "${T[@]}"
check "convert --report = --out" 2 "$BIN/skd-convert" --model "$W/m.safetensors" --out "$W/c.safetensors" \
  --report "$W/./c.safetensors" --data fashion-mnist --proxy-samples 8 "${T[@]}"
check "extract --out = --model" 2 "$BIN/skd-extract" --model "$W/m.safetensors" --attn-keep 0.5 --out "$W/soft.safetensors"
check "eval --json = --model" 2 "$BIN/skd-eval" --model "$W/m.safetensors" --summary --json "$W/hard.safetensors"
check "train --out = --model" 2 "$BIN/skd-train" --model "$W/m.safetensors" --data fashion-mnist --limit 64 --epochs 1 \
  --no-eval --out "$W/soft.safetensors" "${T[@]}"
[ "$(sha "$W/m.safetensors")" = "$before" ] && [ -L "$W/soft.safetensors" ] && ok "the input is intact" || bad "the input changed"

# --- 3. special files ----------------------------------------------------------------------------
mkfifo "$W/pipe.onnx" "$W/pipe.safetensors"
ln -s /dev/null "$W/null.onnx"
within "export --out FIFO" 60 2 "$BIN/skd-export" --model "$MODEL" --out "$W/pipe.onnx"
expect_in "export --out FIFO: said" "$W/err" "named pipe"
within "export --out symlink to /dev/null" 60 2 "$BIN/skd-export" --model "$MODEL" --out "$W/null.onnx"
within "extract --out /dev/null" 60 2 "$BIN/skd-extract" --model "$MODEL" --attn-keep 0.5 --out /dev/null
[ -p "$W/pipe.onnx" ] && [ -L "$W/null.onnx" ] && [ -c /dev/null ] && ok "special outputs left as they were" \
  || bad "a special output was replaced"
within "eval --model FIFO does not block" 60 1 "$BIN/skd-eval" --model "$W/pipe.safetensors" --summary
expect_in "eval --model FIFO: said" "$W/err" "not a regular file"
within "extract --mask-table FIFO does not block" 60 1 "$BIN/skd-extract" --model "$MODEL" --mask-table "$W/pipe.onnx" \
  --op-code 1 --out "$W/x.safetensors"
within "eval --config FIFO does not block" 60 2 "$BIN/skd-eval" --config "$W/pipe.safetensors" --model "$MODEL" --summary
expect_in "eval --config FIFO: said" "$W/err" "not a regular file"
mkdir -p "$W/fifo_imgs/val/cat"
cp "$W/imgs/val/cat/0.png" "$W/fifo_imgs/val/cat/"
mkfifo "$W/fifo_imgs/val/cat/pipe.png"
within "FIFO in an image folder: no blocking" 120 0 "${EVAL[@]}" --data "$W/fifo_imgs"
expect_in "FIFO in an image folder: not listed as an image" "$W/out" "images 1 "

# --- 4. output locations checked before any work -------------------------------------------------
check "train --out in a missing folder" 1 "$BIN/skd-train" --arch "$ARCH" --data fashion-mnist --limit 64 --epochs 1 \
  --no-eval --out "$W/missing/x.safetensors" "${T[@]}"
expect_in "train: message names --out and the folder" "$W/err" "out '$W/missing/x.safetensors': folder '$W/missing' does not exist"
if grep -q "training " "$W/err" "$W/out"; then bad "train started before the output check"; else ok "no training happened"; fi
check "train --run-dir is a file" 2 "$BIN/skd-train" --arch "$ARCH" --data fashion-mnist --limit 64 --epochs 1 \
  --no-eval --run-dir "$W/m.safetensors" "${T[@]}"
check "convert --out in a missing folder" 1 "$BIN/skd-convert" --model "$MODEL" --out "$W/missing/c.safetensors"
expect_in "convert: names --out" "$W/err" "\-\-out"
check "eval --json in a missing folder" 1 "${EVAL[@]}" --data "$W/imgs" --json "$W/missing/e.json"
expect_in "eval: names --json" "$W/err" "\-\-json '$W/missing/e.json'"
check "eval --json is a directory" 2 "${EVAL[@]}" --data "$W/imgs" --json "$W/imgs"
check "extract --out in a missing folder" 1 "$BIN/skd-extract" --model "$MODEL" --attn-keep 0.5 --out "$W/missing/s.safetensors"
not_there "nothing created" "$W/missing"

# --- 5. stale temp file of a killed write --------------------------------------------------------
mkdir -p "$W/ex"
dead=$(bash -c 'echo $$')
head -c 100000 /dev/zero >"$W/ex/.sub.safetensors.tmp-$dead-4242"
head -c 100 /dev/zero >"$W/ex/.sub.safetensors.tmp-$$-1"  # this script still runs: not stale
check "extract after a killed write" 0 "$BIN/skd-extract" --model "$MODEL" --attn-keep 0.5 --out "$W/ex/sub.safetensors"
not_there "stale temp file removed" "$W/ex/.sub.safetensors.tmp-$dead-4242"
[ -e "$W/ex/.sub.safetensors.tmp-$$-1" ] && ok "a live writer's temp file kept" || bad "a live writer's temp file removed"

# --- 6. degenerate image shape -------------------------------------------------------------------
within "100000x1 PNG, skip" 120 0 "${EVAL[@]}" --data "$W/degenerate"
expect_in "100000x1 PNG skipped and named" "$W/out" "skipped 1 unreadable image(s), e.g. $W/degenerate/val/cat/line.png"
within "100000x1 PNG, --on-bad-image fail" 120 1 "${EVAL[@]}" --data "$W/degenerate" --on-bad-image fail
expect_in "100000x1 PNG: the file and the reason" "$W/err" "line.png': 100000x1 pixels, an aspect ratio beyond 64:1"

# --- 7. unreadable training images ---------------------------------------------------------------
TRAIN_IMGS=("$BIN/skd-train" --model "$MICRO" --arch vit_micro_32 --epochs 1 --batch-size 2 --no-eval --no-repeated-aug --workers 0 "${T[@]}")
check "train with one unreadable image" 0 "${TRAIN_IMGS[@]}" --data "$W/imgs" --run-dir "$W/ti"
expect_in "train: skipped image logged" "$W/ti/train.log" "skipped 1 unreadable training image(s), e.g. '$W/imgs/train/cat/broken.jpg'"
expect_in "train: skipped images in metrics" "$W/ti/metrics.jsonl" '"skipped_images":1'
expect_in "train: summary says it" "$W/out" "skipped 1 unreadable training image(s)"
check "train with every image unreadable" 1 "${TRAIN_IMGS[@]}" --data "$W/unreadable" --out "$W/tu.safetensors"
expect_in "train: none readable, with an example" "$W/err" "none of the training images could be read (4 unreadable image(s) skipped in epoch 1, e.g. '$W/unreadable/train/"

# --- 1. resume writes into DIR -------------------------------------------------------------------
mkdir -p "$W/cwd1" "$W/cwd2"
RUN=("$BIN/skd-train" --arch "$ARCH" --data fashion-mnist --limit 256 --batch-size 64 --epochs 2 --no-eval --workers 0
     --keep-last 5 "${T[@]}")
cd "$W/cwd1" && "${RUN[@]}" --run-dir run --max-steps 2 >"$W/r1.out" 2>&1
[ -f "$W/cwd1/run/checkpoints/latest" ] && ok "a relative run stopped at --max-steps" || bad "no checkpoint in cwd1/run"
mv "$W/cwd1/run" "$W/moved"
cd "$W/cwd2" && check "resume a moved run from another directory" 0 "$BIN/skd-train" --resume "$W/moved" "${T[@]}"
cd "$W"
[ -f "$W/moved/model.safetensors" ] && ok "the model went into DIR" || bad "no model.safetensors in DIR"
[ "$(grep -c '"epoch"' "$W/moved/metrics.jsonl")" = 2 ] && ok "metrics.jsonl in DIR holds epochs 1..2" || bad "metrics"
expect_in "train.log in DIR" "$W/moved/train.log" "resumed from"
not_there "no run re-created in the old place" "$W/cwd1/run"
not_there "no run created in the working directory" "$W/cwd2/run"

# --- 8. truncated latest checkpoint --------------------------------------------------------------
latest="$W/moved/checkpoints/$(cat "$W/moved/checkpoints/latest")"
truncate -s 5000 "$latest"
check "resume from a truncated checkpoint" 1 "$BIN/skd-train" --resume "$W/moved" "${T[@]}"
expect_in "truncated: names the file" "$W/err" "cannot resume from '$latest'"
expect_in "truncated: names the intact earlier one" "$W/err" "newest intact earlier checkpoint is '$W/moved/checkpoints/ckpt-e0001"
for f in "$W/moved/checkpoints"/ckpt-*; do truncate -s 100 "$f"; done
check "resume with no intact checkpoint" 1 "$BIN/skd-train" --resume "$W/moved" "${T[@]}"
expect_in "truncated: none intact said" "$W/err" "no intact earlier checkpoint"

# --- 9. export checker: nonsense and silence -----------------------------------------------------
if [ -x "$BIN/skd-export" ]; then
  mkdir -p "$W/tmp"
  printf '#!/bin/sh\necho '"'"'{"max_abs_diff": 0, "onnxruntime": "fake", "inputs": {"b2": []}}'"'"'\n' >"$W/fake_empty.sh"
  printf '#!/bin/sh\necho not json at all\n' >"$W/fake_garbage.sh"
  printf '#!/bin/sh\nsleep 301 &\nsleep 302\n' >"$W/fake_silent.sh"  # a child too: the group is killed
  chmod +x "$W"/fake_*.sh
  for f in empty garbage; do
    within "checker printing $f output" 60 1 env TMPDIR="$W/tmp" "$BIN/skd-export" --model "$MODEL" --verify \
      --python "$W/fake_$f.sh" --out "$W/v_$f.onnx"
    expect_in "checker $f: FormatError naming the checker" "$W/err" "the onnxruntime parity check ($W/fake_$f.sh skd_onnx_check.py) printed an unexpected result"
  done
  start=$SECONDS
  within "checker that never answers" 60 1 env TMPDIR="$W/tmp" SKD_ONNX_CHECK_TIMEOUT=3 "$BIN/skd-export" \
    --model "$MODEL" --verify --python "$W/fake_silent.sh" --out "$W/v_silent.onnx"
  expect_in "checker timeout said" "$W/err" "did not finish within 3 s and was killed"
  [ $((SECONDS - start)) -lt 40 ] && ok "timed out in $((SECONDS - start)) s" || bad "took $((SECONDS - start)) s"
  sleep 0.5
  if pgrep -f "$W/fake_silent.sh|^sleep 30[12]$" >/dev/null; then bad "the checker's process group survived"; else ok "checker killed"; fi
  [ -z "$(ls -A "$W/tmp")" ] && ok "no temporary folder left" || bad "left: $(ls "$W/tmp")"
  not_there "no ONNX file written" "$W/v_silent.onnx"
fi

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
