#!/usr/bin/env bash
# The prepared GPU check: one run, under 8 minutes, on a machine with one CUDA GPU, its own PyTorch 2.x
# (python3, e.g. 2.11+cu130), timm, CMake, ninja, nvcc and no network (the team's device tool). It
#   1. builds the LibTorch 2.x + CUDA + NCCL configuration against that PyTorch and the dependencies
#      carried in .gpu-deps/ (scripts/gpu_deps.sh, run beforehand on a team machine; no OpenCV, no
#      Gloo there: this build decodes no image folders and uses NCCL);
#   2. runs the CUDA tests (tests/cuda: CPU vs CUDA logits 1e-4 fp32, WPAC on CUDA = CPU, bf16 PIAD
#      steps finite and learning, extract + eval on CUDA, a NCCL group of one rank) and the fused
#      attention / optimizer equality tests;
#   3. runs the GPU benchmarks: bf16 training steps of DeiT-S and DeiT-B (plain and PIAD) next to
#      timm's eager step on the same GPU, WPAC of DeiT-B with 1024 proxy images, eval latency and
#      throughput at batch 1 and 64 for DeiT-S and DeiT-B;
# and writes every figure as JSON lines to $OUT/gpu_check.jsonl (plus the logs), then a summary with
# MFU (training FLOPs = 3 x forward FLOPs, forward FLOPs = 2 x the "full" MACs count, both attention
# matmuls included; peak = SKD_PEAK_TFLOPS, default 989 dense bf16 TFLOP/s for H100/H200 SXM).
#
# On the device tool (from the repo root here):  bash scripts/gpu_deps.sh   # once, fills .gpu-deps
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu-deps"], timeout_s=540)
# Env: OUT (default ./gpu_check_out), PY (default python3), SKD_JOBS (default nproc),
#      SKD_GPU_CHECK_QUICK=1 (small sizes: a rehearsal of the script itself, also on a CPU with
#      SKD_GPU_CHECK_DEVICE=cpu).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
PY="${PY:-python3}"
DEV="${SKD_GPU_CHECK_DEVICE:-cuda}"
JOBS="${SKD_JOBS:-$(nproc)}"
BUILD="${SKD_GPU_BUILD_DIR:-build-gpu}"
RESULTS="$OUT/gpu_check.jsonl"
: >"$RESULTS"
start=$(date +%s)
stage() { echo "== [$(( $(date +%s) - start )) s] $*" | tee -a "$OUT/stages.log"; }
note() { printf '{"note": %s}\n' "$("$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1")" >>"$RESULTS"; }

stage "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  "$PY" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
  nproc; command -v nvcc cmake ninja; } | tee "$OUT/machine.txt"
TORCH_DIR=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))') || { echo "no torch in $PY"; exit 1; }
[ -d .gpu-deps ] || { echo "gpu_check: .gpu-deps missing: run scripts/gpu_deps.sh here and carry .gpu-deps"; exit 1; }

stage "configure + build ($JOBS jobs)"
NCCL=ON
[ "$DEV" = cpu ] && NCCL=OFF
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_DIR/share/cmake;$PWD/.gpu-deps" -DTORCH_LIBRARY="$TORCH_DIR/lib/libtorch.so" \
  -DSKD_WITH_OPENCV=OFF -DSKD_WITH_NCCL=$NCCL -DSKD_BUILD_BENCH=ON >"$OUT/configure.log" 2>&1 \
  || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" --target skd_test_cuda skd_test_models skd_test_train skd-bench-step \
  >"$OUT/build.log" 2>&1 || { grep -m5 -A5 "error" "$OUT/build.log"; tail -20 "$OUT/build.log"; exit 1; }

stage "CUDA tests"
"$BUILD/tests/skd_test_cuda" --gtest_output="json:$OUT/cuda_tests.json" 2>&1 | tee "$OUT/cuda_tests.log"
cuda_rc=${PIPESTATUS[0]}
"$BUILD/tests/skd_test_models" --gtest_filter='FusedAttention*:Elastic*' 2>&1 | tail -3
"$BUILD/tests/skd_test_train" --gtest_filter='AdamW.*' 2>&1 | tail -3
note "skd_test_cuda exit code $cuda_rc"

B="$BUILD/scripts/bench/skd-bench-step"
bench() {  # label, command...: JSON lines of the command go to the results
  local label=$1; shift
  stage "$label"
  "$@" 2>>"$OUT/bench.log" | tee -a "$RESULTS" || note "$label failed (exit $?)"
}
if [ "${SKD_GPU_CHECK_QUICK:-0}" = 1 ]; then
  S_ARCH=configs/models/vit_fmnist.json B_ARCH=configs/models/vit_fmnist.json S_BATCH=16 B_BATCH=16 STEPS=4 WARM=2
  WPAC_N=64 AMP=none
else
  S_ARCH=deit_small B_ARCH=deit_base S_BATCH=256 B_BATCH=128 STEPS=30 WARM=10 WPAC_N=1024 AMP=bf16
fi
[ "$DEV" = cpu ] && AMP=none
TH=$(nproc)
bench "train DeiT-S skd" "$B" --arch $S_ARCH --batch $S_BATCH --steps $STEPS --warmup $WARM --device "$DEV" --amp $AMP --threads "$TH"
bench "train DeiT-S timm" "$PY" scripts/bench/timm_step.py --arch $S_ARCH --batch $S_BATCH --steps $STEPS --warmup $WARM --device "$DEV" --amp $AMP --threads "$TH"
bench "train DeiT-B skd" "$B" --arch $B_ARCH --batch $B_BATCH --steps $STEPS --warmup $WARM --device "$DEV" --amp $AMP --threads "$TH"
bench "train DeiT-B timm" "$PY" scripts/bench/timm_step.py --arch $B_ARCH --batch $B_BATCH --steps $STEPS --warmup $WARM --device "$DEV" --amp $AMP --threads "$TH"
bench "WPAC DeiT-B, $WPAC_N proxy images" "$B" --arch $B_ARCH --mode none --batch 32 --wpac $WPAC_N --device "$DEV" --threads "$TH"
for a in $S_ARCH $B_ARCH; do
  bench "latency $a fp32" "$B" --arch $a --mode none --latency 1,64 --device "$DEV" --threads "$TH"
  [ "$AMP" = none ] || bench "latency $a $AMP" "$B" --arch $a --mode none --latency 1,64 --device "$DEV" --amp $AMP --threads "$TH"
done

stage "summary"
"$PY" - "$RESULTS" "${SKD_PEAK_TFLOPS:-989}" <<'PYEOF' | tee "$OUT/summary.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peak = float(sys.argv[2]) * 1e12
print("| what | arch | images/s | step s | MFU (3 x 2 x MACs_full) |")
print("|---|---|---:|---:|---:|")
macs = {r["arch"]: r["macs_full"] for r in rows if "macs_full" in r}  # timm's rows: the same model's count
for r in rows:
    if r.get("mode") in ("train", "piad"):
        mfu = ""
        if r["arch"] in macs and r["mode"] == "train":
            mfu = f"{100 * r['images_per_s'] * 6 * macs[r['arch']] / peak:.1f} %"
        print(f"| {r['impl']} {r['mode']} | {r['arch']} | {r['images_per_s']:.0f} | {r['seconds_per_step']:.4f} | {mfu} |")
for r in rows:
    if r.get("mode") == "wpac":
        print(f"\nWPAC {r['arch']}: {r['proxy_images']} proxy images in {r['seconds']:.1f} s ({r['report_seconds']})")
    if r.get("mode") == "latency":
        print(f"latency {r['arch']} {r['amp']} batch {r['batch']}: median {r['median_ms']:.2f} ms "
              f"(p10 {r['p10_ms']:.2f}, p90 {r['p90_ms']:.2f}), {r['images_per_s']:.0f} images/s")
    if "note" in r:
        print("note:", r["note"])
PYEOF
stage "done"
exit "$cuda_rc"
