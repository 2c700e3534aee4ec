#!/usr/bin/env bash
# End-to-end: skd-eval on an ImageNet-style folder (PNG, JPEG, PPM, a corrupt file, a non-image),
# outputs with file paths, bad-image policies, latency, and device/AMP errors.
set -uo pipefail
BIN="${SKD_BIN:?}"
FIX="${SKD_FIXTURES:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fails=0
pass=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; sed 's/^/  | /' "$W/out" "$W/err" 2>/dev/null | tail -15; fails=$((fails + 1)); }
run() {  # run NAME EXPECTED_EXIT CMD...
  local name=$1 want=$2
  shift 2
  "$@" >"$W/out" 2>"$W/err"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"; else bad "$name (exit $rc, expected $want)"; fi
}
has() { if grep -q -- "$3" "$2"; then ok "$1"; else bad "$1: '$3' not in $2"; fi; }

D="$W/data/val"
mkdir -p "$D/cat" "$D/dog"
cp "$FIX/transforms/landscape_500x375.png" "$D/cat/a.png"
cp "$FIX/transforms/photo_640x480.jpg" "$D/cat/b.JPG"
cp "$FIX/transforms/gray_320x240.png" "$D/dog/c.png"
cp "$FIX/transforms/small_64x48.png" "$D/dog/d.png"
printf 'P6\n4 3\n255\n' >"$D/dog/e.ppm"
head -c 36 /dev/urandom >>"$D/dog/e.ppm"
head -c 5000 "$FIX/transforms/photo_640x480.jpg" >"$D/dog/truncated.jpg"
echo "readme" >"$D/dog/README.txt"

M="$FIX/timm/vit_micro_32.safetensors"
A="$FIX/timm/vit_micro_32.json"
run "eval folder (skip bad)" 0 "$BIN/skd-eval" --model "$M" --arch "$A" --data "$W/data" --split val --workers 2 \
  --batch-size 2 --json "$W/e.json" --save-outputs "$W/logits.safetensors"
has "5 images evaluated" "$W/e.json" '"images": 5'
has "1 bad image counted" "$W/e.json" '"bad_images": 1'
has "skipped message" "$W/out" "skipped 1 unreadable"
has "outputs list paths" "$W/logits.safetensors" "cat/b.JPG"
run "eval folder (fail on bad)" 1 "$BIN/skd-eval" --model "$M" --arch "$A" --data "$W/data" --split val \
  --on-bad-image fail
has "fail names the file" "$W/err" "truncated.jpg"
run "bad policy value" 2 "$BIN/skd-eval" --model "$M" --arch "$A" --data "$W/data" --on-bad-image maybe
run "missing folder" 2 "$BIN/skd-eval" --model "$M" --arch "$A" --data "$W/nowhere"
mkdir -p "$W/empty/val/cls"
run "empty class folder" 2 "$BIN/skd-eval" --model "$M" --arch "$A" --data "$W/empty" --split val
has "empty class named" "$W/err" "cls"

run "latency" 0 "$BIN/skd-eval" --model "$M" --arch "$A" --latency 1,4 --latency-repeats 3 --json "$W/l.json"
has "latency rows" "$W/l.json" '"median_ms"'
run "bad latency sizes" 2 "$BIN/skd-eval" --model "$M" --arch "$A" --latency 1,x
if ! "$BIN/skd-eval" --help | grep -q -- "--device"; then bad "help lists --device"; else ok "help lists --device"; fi
run "amp on cpu refused" 2 "$BIN/skd-eval" --model "$M" --arch "$A" --latency 1 --amp bf16
run "unknown device" 2 "$BIN/skd-eval" --model "$M" --arch "$A" --latency 1 --device tpu

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
