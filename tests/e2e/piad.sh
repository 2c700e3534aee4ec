#!/usr/bin/env bash
# End-to-end: skd-train --mode piad on the embedded Fashion-MNIST model (WPAC-converted first),
# then skd-extract --macs-ratio / --macs from the trained super-network.
#  - run dir: mask_table.json (official schema) and piad.jsonl per update; the artifact is a
#    super-network (its op-code table lists codes 0..K)
#  - extracted sub-networks evaluate; code 0 equals the super-network's full forward
#  - torchrun --no_python 2 processes: the same mask table and outputs as 1 process
#  - in-place distillation (--piad-distill frozen / progressive): recorded in the manifest, and 2
#    processes (each computing its own teacher logits) equal 1 process; bad values named before any work
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR.
set -uo pipefail
source "$(dirname "$0")/common.bash"

check "wpac" 0 "$BIN/skd-convert" --model "$SRC/assets/vit_fmnist.safetensors" --data fashion-mnist --proxy-samples 256 \
  --out "$W/wpac.safetensors" --threads 2
P=(--model "$W/wpac.safetensors" --data fashion-mnist --mode piad --epochs 2 --piad-progressive-epochs 2 --limit 512
   --lr 2e-4 --unscale-lr --warmup-epochs 0 --mixup 0 --cutmix 0 --drop-path 0 --no-eval --piad-proxy-samples 128
   --piad-proxy-batch 32 --workers 0 --log-every 0)
check "piad, 1 process, batch 64" 0 "$BIN/skd-train" "${P[@]}" --batch-size 64 --threads 2 --run-dir "$W/one"
expect_in "logs the updates" "$W/err" "PIAD epoch 1: +"
[ "$(wc -l <"$W/one/piad.jsonl")" = 2 ] && ok "piad.jsonl: 2 updates" || bad "piad.jsonl lines"
k=$(json "$W/one/mask_table.json" 'len(d["0.attn"]) - 2')
[ "$k" -gt 10 ] && ok "mask table has codes 0..$k" || bad "mask table codes: $k"
[ "$(json "$W/one/mask_table.json" 'list(d["3.mlp"])[:3]')" = "['0', '-1', '1']" ] && ok "official key order" \
  || bad "key order"
# Resuming from the epoch-1 checkpoint (as after a kill right after the second update) redoes that
# update: piad.jsonl and mask_table.json end as they were, not with the update twice.
cp "$W/one/piad.jsonl" "$W/piad_before.jsonl"
cp "$W/one/mask_table.json" "$W/table_before.json"
check "resume the PIAD run from its epoch-1 checkpoint" 0 "$BIN/skd-train" \
  --resume "$W/one/checkpoints/ckpt-e0001-s0000000.safetensors" --run-dir "$W/one" --threads 2 --out "$W/again.safetensors"
expect_in "drops the update made after the checkpoint" "$W/err" "piad.jsonl: dropped 1 update record"
python3 -c "import json,sys; a,b=([json.loads(l) for l in open(p)] for p in sys.argv[1:]); assert [r['codes'] for r in a]==[r['codes'] for r in b], (a,b)" \
  "$W/piad_before.jsonl" "$W/one/piad.jsonl" && ok "piad.jsonl: the same 2 updates" || bad "piad.jsonl after resume"
cmp -s "$W/table_before.json" "$W/one/mask_table.json" && ok "mask_table.json unchanged" || bad "mask_table.json changed"
check "list the super-network" 0 "$BIN/skd-extract" --supernet "$W/one/model.safetensors" --list
[ "$(grep -c '^ *[0-9]' "$W/out")" = "$((k + 1))" ] && ok "list has $((k + 1)) codes" || bad "list rows"
check "extract half the MACs" 0 "$BIN/skd-extract" --supernet "$W/one/model.safetensors" --macs-ratio 0.5 --out "$W/half.safetensors"
check "eval half" 0 "$BIN/skd-eval" --model "$W/half.safetensors" --data fashion-mnist --limit 500 --json "$W/half.json"
[ "$(json "$W/half.json" 'd["top1"] > 50')" = True ] && ok "half-MACs sub-network top-1 $(json "$W/half.json" 'd["top1"]')%" \
  || bad "half-MACs top-1 $(json "$W/half.json" 'd["top1"]')"
check "extract code 0" 0 "$BIN/skd-extract" --supernet "$W/one/model.safetensors" --op-code 0 --out "$W/full.safetensors"
check "eval code 0" 0 "$BIN/skd-eval" --model "$W/full.safetensors" --data fashion-mnist --limit 200 --save-outputs "$W/f.safetensors"
check "eval super-network" 0 "$BIN/skd-eval" --model "$W/one/model.safetensors" --data fashion-mnist --limit 200 \
  --save-outputs "$W/s.safetensors"
same_weights "code 0 == super-network outputs" "$W/f.safetensors" "$W/s.safetensors" 1e-5

if command -v "$TORCHRUN" >/dev/null; then
  check "piad, torchrun 2 processes x batch 32" 0 "$TORCHRUN" --no_python --nproc_per_node=2 --master_port="$(free_port)" \
    --redirects 9:1 --tee 9:1 "$BIN/skd-train" "${P[@]}" --batch-size 32 --threads 1 --run-dir "$W/two"
  if cmp -s "$W/one/mask_table.json" "$W/two/mask_table.json"; then ok "same mask table"; else bad "mask tables differ"; fi
  # Weights are compared through the outputs: AdamW turns gradients that are pure rounding noise (the
  # k bias -- softmax ignores it -- and dead MLP units) into full-size steps of random sign, so those
  # weights drift apart by ~lr per step between 1 and 2 processes while the function does not.
  check "eval 2-process model" 0 "$BIN/skd-eval" --model "$W/two/model.safetensors" --data fashion-mnist --limit 200 \
    --save-outputs "$W/t.safetensors"
  same_weights "2 processes compute what 1 process does (logits)" "$W/t.safetensors" "$W/s.safetensors" 1e-3
else
  bad "$TORCHRUN not found (scripts/setup.sh installs python3-torch)"
fi

# An extracted sub-network is a standalone model: skd-train fine-tunes it with no other file.
check "fine-tune the half-MACs sub-network" 0 "$BIN/skd-train" --model "$W/half.safetensors" --data fashion-mnist \
  --limit 256 --epochs 1 --batch-size 64 --mixup 0 --cutmix 0 --no-eval --workers 0 --threads 2 --log-every 0 \
  --out "$W/half_ft.safetensors"
check "summary of the fine-tuned sub-network" 0 "$BIN/skd-eval" --model "$W/half_ft.safetensors" --summary --json "$W/ft.json"
check "summary of the sub-network" 0 "$BIN/skd-eval" --model "$W/half.safetensors" --summary --json "$W/h.json"
[ "$(json "$W/ft.json" 'd["macs_paper"]')" = "$(json "$W/h.json" 'd["macs_paper"]')" ] \
  && ok "fine-tuning keeps the sub-network's widths" || bad "fine-tuned MACs differ from the sub-network's"

# Sandwich rule: three sub-networks per step (on 128 images: the --limit 512 of P becomes 128); the
# setting is recorded in the run's config.
check "piad --piad-sandwich" 0 "$BIN/skd-train" "${P[@]/#512/128}" --batch-size 64 --threads 2 --piad-sandwich \
  --run-dir "$W/sw"
[ "$(json "$W/sw/config.json" 'd["piad_sandwich"]')" = True ] && ok "config records piad_sandwich" \
  || bad "piad_sandwich not in config.json"
check "sandwich super-network extracts" 0 "$BIN/skd-extract" --supernet "$W/sw/model.safetensors" --op-code -1 \
  --out "$W/sw_small.safetensors"

# In-place distillation: the frozen teacher (one extra forward per step) and the progressive chain
# without the sandwich rule (a forward of a larger code); 1 process x 64 = 2 processes x 32.
D=("${P[@]/#512/256}")
for mode in frozen progressive; do
  check "piad --piad-distill $mode, 1 process" 0 "$BIN/skd-train" "${D[@]}" --piad-distill "$mode" \
    --piad-distill-temperature 2 --batch-size 64 --threads 2 --run-dir "$W/kd1-$mode"
  expect_in "logs the distillation ($mode)" "$W/err" "PIAD distillation: $mode, weight 1, temperature 2"
  [ "$(manifest "$W/kd1-$mode/model.safetensors" 'm["piad"]["distill"]')" = "$mode" ] \
    && ok "manifest records piad distill $mode" || bad "manifest piad.distill ($mode)"
  if command -v "$TORCHRUN" >/dev/null; then
    check "piad --piad-distill $mode, torchrun 2 processes x 32" 0 "$TORCHRUN" --no_python --nproc_per_node=2 \
      --master_port="$(free_port)" --redirects 9:1 --tee 9:1 "$BIN/skd-train" "${D[@]}" --piad-distill "$mode" \
      --piad-distill-temperature 2 --batch-size 32 --threads 1 --run-dir "$W/kd2-$mode"
    cmp -s "$W/kd1-$mode/mask_table.json" "$W/kd2-$mode/mask_table.json" && ok "same mask table ($mode)" \
      || bad "mask tables differ ($mode)"
    for n in 1 2; do
      check "eval the $n-process $mode model" 0 "$BIN/skd-eval" --model "$W/kd$n-$mode/model.safetensors" \
        --data fashion-mnist --limit 200 --save-outputs "$W/kd$n-$mode.safetensors"
    done
    same_weights "2 processes distil what 1 process does ($mode, logits)" "$W/kd2-$mode.safetensors" \
      "$W/kd1-$mode.safetensors" 1e-3
  fi
done
check "unknown --piad-distill" 2 "$BIN/skd-train" "${D[@]}" --piad-distill teacher --out "$W/x.safetensors"
expect_in "names the flag and the modes" "$W/err" "--piad-distill: unknown value 'teacher' (expected one of none, frozen, full, progressive)"
check "negative --piad-distill-weight" 2 "$BIN/skd-train" "${D[@]}" --piad-distill full --piad-distill-weight -1 \
  --out "$W/x.safetensors"
expect_in "names the weight flag" "$W/err" "--piad-distill-weight"
check "zero --piad-distill-temperature" 2 "$BIN/skd-train" "${D[@]}" --piad-distill full \
  --piad-distill-temperature 0 --out "$W/x.safetensors"
expect_in "names the temperature flag" "$W/err" "--piad-distill-temperature"
check "--piad-distill in plain training" 2 "$BIN/skd-train" --model "$W/wpac.safetensors" --data fashion-mnist \
  --mode train --piad-distill progressive --out "$W/x.safetensors"
expect_in "says distillation needs a mask table" "$W/err" "no table"
echo '{"mode": "piad", "piad_distill": "progresive"}' >"$W/kd.json"
check "misspelt piad_distill in --config" 2 "$BIN/skd-train" --config "$W/kd.json" --model "$W/wpac.safetensors" \
  --out "$W/x.safetensors"
expect_in "names the file and the key" "$W/err" "piad_distill"
[ ! -e "$W/x.safetensors" ] && ok "nothing written on bad distillation input" || bad "an artifact was written"

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
