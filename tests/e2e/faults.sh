#!/usr/bin/env bash
# End-to-end fault injection (issue 8):
#  - skd-train killed with SIGKILL at random moments and resumed each time: every kill leaves a
#    loadable latest checkpoint at most one epoch behind the finished epochs, no temp files; the
#    finished run's weights and metrics.jsonl equal an uninterrupted run's (CPU: bit-identical)
#  - a read-only output directory: every app exits 1 naming the path, writes nothing
#  - a full output directory (small tmpfs): exit 1 naming the path, the previous file intact, no
#    temporary file left
# (SIGTERM -> checkpoint + 143, a file-size limit while saving and a dead peer in a 2-rank Gloo run
# are in e2e/train.sh.)
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR.
set -uo pipefail
source "$(dirname "$0")/common.bash"
MOUNTS=()
cleanup() {
  local m
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
MODEL="$SRC/assets/vit_fmnist.safetensors"

# --- SIGKILL at random moments, resume until done ---------------------------------------------
RUN=(--arch "$SRC/configs/models/vit_fmnist_demo.json" --data fashion-mnist --limit 1024 --batch-size 64 --epochs 8
     --no-eval --threads 2 --workers 0 --keep-last 1 --seed 3 --model-ema --model-ema-decay 0.9)
check "uninterrupted run" 0 "$BIN/skd-train" "${RUN[@]}" --log-every 0 --run-dir "$W/u"
epochs_done() { cat "$1/metrics.jsonl" 2>/dev/null | grep -c '}$'; }
steps_logged() { cat "$1/train.log" 2>/dev/null | grep -c ' step [0-9]*/'; }
latest_epoch() { sed -n 's/^ckpt-e0*\([0-9][0-9]*\)-s.*/\1/p' "$1/checkpoints/latest" 2>/dev/null; }
kills=0
finished=0
# Each round kills the (re)started process after a random number (4-30) of new training steps in
# train.log (an epoch is 16 steps) and a random 0-0.4 s more: in an epoch, in a checkpoint write, or
# between an epoch's metrics line and its checkpoint. Counting steps instead of seconds keeps the
# kill points spread whatever the machine's speed and load.
for round in 1 2 3 4 5 6 7 8 9 10; do
  if [ -f "$W/k/checkpoints/latest" ]; then args=(--resume "$W/k" --threads 2); else args=("${RUN[@]}" --run-dir "$W/k"); fi
  n0=$(steps_logged "$W/k")
  lines=$((4 + RANDOM % 27))
  "$BIN/skd-train" "${args[@]}" --log-every 1 >"$W/k$round.out" 2>&1 &
  pid=$!
  for ((t = 0; t < 1200; t++)); do
    kill -0 "$pid" 2>/dev/null || break
    [ "$(steps_logged "$W/k")" -ge $((n0 + lines)) ] && break
    sleep 0.05
  done
  delay="0.$((RANDOM % 5))"
  sleep "$delay"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"; rc=$?
    if [ "$rc" -eq 0 ]; then finished=1; break; fi
    bad "round $round: skd-train exited $rc before the kill"; tail -5 "$W/k$round.out"; break
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  kills=$((kills + 1))
  done_now=$(epochs_done "$W/k")
  ck=$(latest_epoch "$W/k")
  if [ -z "$ck" ]; then
    [ "$done_now" -eq 0 ] && ok "kill $kills ($lines steps + ${delay}s): no epoch finished, no checkpoint yet" \
      || bad "kill $kills: $done_now epochs finished but no checkpoint"
    continue
  fi
  [ "$ck" -ge $((done_now - 1)) ] && ok "kill $kills ($lines steps + ${delay}s): latest = epoch $ck, $done_now finished (<= 1 lost)" \
    || bad "kill $kills: latest checkpoint epoch $ck but $done_now epochs finished"
  loads=1
  for f in "$W/k/checkpoints"/*.safetensors; do
    "$BIN/skd-eval" --model "$f" --summary >/dev/null 2>"$W/err" || { loads=0; bad "kill $kills: $(basename "$f") does not load"; cat "$W/err"; }
  done
  [ "$loads" = 1 ] && ok "kill $kills: every checkpoint loads"
  tmps=$(ls -A "$W/k/checkpoints" "$W/k" | grep "\.tmp" || true)
  [ -n "$tmps" ] && bad "kill $kills: temporary files left: $tmps" || ok "kill $kills: no temporary files"
done
if [ "$finished" = 0 ]; then
  check "final resume" 0 "$BIN/skd-train" --resume "$W/k" --threads 2
fi
[ "$kills" -ge 2 ] && ok "$kills kills landed" || bad "only $kills kills landed (machine too fast for the delays?)"
same_weights "killed + resumed run == uninterrupted run (weights)" "$W/u/model.safetensors" "$W/k/model.safetensors" 0
same_weights "killed + resumed run == uninterrupted run (EMA)" "$W/u/model_ema.safetensors" "$W/k/model_ema.safetensors" 0
if python3 - "$W/u/metrics.jsonl" "$W/k/metrics.jsonl" >"$W/cmp" 2>&1 <<'ENDOFPY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
keys = ("epoch", "train_loss", "lr", "global_step", "skipped_steps")
assert [r["epoch"] for r in b] == list(range(1, len(a) + 1)), f"epochs {[r['epoch'] for r in b]}"
for x, y in zip(a, b):
    assert all(x[k] == y[k] for k in keys), f"{[(k, x[k], y[k]) for k in keys]}"
print(f"{len(a)} epochs")
ENDOFPY
then ok "metrics.jsonl equals the uninterrupted run's ($(cat "$W/cmp"))"; else bad "metrics.jsonl differs"; cat "$W/cmp"; fi

# --- read-only and full output directories ---------------------------------------------------------
# A read-only tmpfs when this shell may mount (root); otherwise an unwritable folder for an
# unprivileged user (setpriv), which fails the same way with EACCES instead of EROFS.
AS=()
mkdir -p "$W/ro"
if mount -t tmpfs -o ro,size=1m tmpfs "$W/ro" 2>/dev/null; then
  MOUNTS+=("$W/ro")
  RO_KIND="read-only tmpfs"
elif [ "$(id -u)" -ne 0 ]; then
  chmod 0555 "$W/ro"
  RO_KIND="folder without write permission"
elif command -v setpriv >/dev/null; then
  chmod 0555 "$W/ro"
  chmod 0755 "$W"
  AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  RO_KIND="folder without write permission (as nobody)"
else
  RO_KIND=""
fi
if [ -n "$RO_KIND" ]; then
  ro_case() {  # ro_case NAME OUTPUT CMD...
    local name=$1 out=$2
    shift 2
    check "$RO_KIND: $name exits 1" 1 "${AS[@]}" "$@"
    expect_in "$name names $out" "$W/err" "$out"
  }
  ro_case "skd-convert" "$W/ro/c.safetensors" "$BIN/skd-convert" --model "$MODEL" --out "$W/ro/c.safetensors" --threads 2
  ro_case "skd-extract" "$W/ro/h.safetensors" "$BIN/skd-extract" --model "$MODEL" --attn-keep 0.5 --out "$W/ro/h.safetensors" --threads 2
  ro_case "skd-eval --json" "$W/ro/e.json" "$BIN/skd-eval" --model "$MODEL" --summary --json "$W/ro/e.json"
  ro_case "skd-train --run-dir" "$W/ro/run" "$BIN/skd-train" --model "$MODEL" --data fashion-mnist --limit 128 \
    --batch-size 64 --epochs 1 --no-eval --threads 2 --workers 0 --run-dir "$W/ro/run"
  [ -z "$(ls -A "$W/ro")" ] && ok "nothing written to the read-only directory" || bad "files in $W/ro: $(ls -A "$W/ro")"
else
  echo "skip read-only output directory: cannot mount and no setpriv"
fi

mkdir -p "$W/full"
if mount -t tmpfs -o size=600k tmpfs "$W/full" 2>/dev/null; then
  MOUNTS+=("$W/full")
  head -c 200000 /dev/urandom >"$W/full/old.safetensors"
  sum=$(sha256sum <"$W/full/old.safetensors")
  check "full disk: skd-convert exits 1" 1 "$BIN/skd-convert" --model "$MODEL" --out "$W/full/old.safetensors" --threads 2
  expect_in "names the output" "$W/err" "$W/full/old.safetensors"
  expect_in "says why" "$W/err" "No space left on device"
  [ "$(sha256sum <"$W/full/old.safetensors")" = "$sum" ] && ok "previous file intact" || bad "previous file changed"
  check "full disk: skd-train exits 1" 1 "$BIN/skd-train" --model "$MODEL" --data fashion-mnist --limit 128 \
    --batch-size 64 --epochs 1 --no-eval --threads 2 --workers 0 --log-every 0 --run-dir "$W/full/run"
  expect_in "names the checkpoint" "$W/err" "$W/full/run/checkpoints/ckpt-e0001"
  find "$W/full" -name '*.tmp*' | grep -q . && bad "temporary files left: $(find "$W/full" -name '*.tmp*')" \
    || ok "no temporary files left"
else
  echo "skip full output directory: cannot mount a tmpfs (the file-size-limit case in e2e/train.sh still runs)"
fi
echo "faults e2e: $pass ok, $fails failed"
[ "$fails" -eq 0 ]
