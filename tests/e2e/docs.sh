#!/usr/bin/env bash
# End-to-end: the documented commands that run on the fixtures and the embedded model, as the docs
# write them (doc_cmd: same text, same flags; files a user would bring are fixtures linked under the
# names the docs use), then tools/dev/doc_commands.py: every command in README.md and docs/*.md is
# run by a test or marked as needing ImageNet, a GPU, root, a download or minutes of compute.
source "$(dirname "$0")/common.bash"
FIX="${SKD_FIXTURES:?}"
doc_setup
doc_cmd "summary" 0 '$B/skd-eval --arch deit_small --summary'
expect_in "DeiT-S MACs (paper convention)" "$W/out" "4,256,878,312\|4256878312"
# The user's DeiT-Ti checkpoint and inputs: timm's DeiT-Ti and its input from the fixtures.
ln -s "$FIX/timm/deit_tiny_patch16_224.pth" "$W/doc/deit_tiny_patch16_224.pth"
ln -s "$FIX/timm/deit_tiny_patch16_224.input.safetensors" "$W/doc/input.safetensors"
doc_cmd "foreign checkpoint on given inputs" 0 '$B/skd-eval --model deit_tiny_patch16_224.pth --arch deit_tiny --inputs input.safetensors --save-outputs out.safetensors'
same_weights "its logits are timm's" "$W/doc/out.safetensors" "$FIX/timm/deit_tiny_patch16_224.output.safetensors" 1e-4
doc_cmd "accuracy on Fashion-MNIST" 0 '$B/skd-eval --model assets/vit_fmnist.safetensors --data fashion-mnist --json eval.json'
top1=$(json "$W/doc/eval.json" 'round(d["top1"], 2)')
[ "$top1" = 90.23 ] && ok "top-1 90.23 as README says" || bad "top-1 $top1, README says 90.23"
doc_cmd "WPAC on the embedded model" 0 '$B/skd-convert --model assets/vit_fmnist.safetensors --data fashion-mnist --out wpac.safetensors'
[ -f "$W/doc/wpac.report.json" ] && ok "wpac.report.json written" || bad "no wpac.report.json"
doc_cmd "leading quarter of every head" 0 '$B/skd-eval --model wpac.safetensors --data fashion-mnist --attn-keep 0.25'
doc_cmd "a baseline criterion" 0 '$B/skd-convert --model assets/vit_fmnist.safetensors --data fashion-mnist --criterion taylor --out taylor.safetensors'
check "every documented command is run or marked" 0 python3 "$SRC/tools/dev/doc_commands.py" "$SRC"
grep "^FAIL\|^PEND" "$W/out" | sed 's/^/  | /' | head -40
echo "docs e2e: $pass ok, $fails failed"
[ "$fails" -eq 0 ]
