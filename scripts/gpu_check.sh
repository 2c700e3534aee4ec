#!/usr/bin/env bash
# The prepared GPU check: one run on a machine with one CUDA GPU, its own PyTorch 2.x (python3, e.g.
# 2.11+cu130), timm, CMake, ninja, nvcc and no network (the team's device tool; docs/gpu.md says how
# anyone runs it on their own GPU machine). It
#   0. prints a preflight first: compilers, CMake, ninja, nvcc, torch and whether it sees the GPU,
#      timm, NCCL, and the CUDA toolkit headers the NCCL unit needs;
#   1. takes the test and benchmark binaries from the prebuilt folder (scripts/gpu_prebuilt.sh,
#      made on a team machine from the wheel build, carried as .gpu-prebuilt) when they load and
#      answer --help there; otherwise builds them against that PyTorch and .gpu-deps/ (keep-going;
#      if the NCCL unit fails, again without NCCL, and it says so);
#   2. runs the CUDA tests (tests/cuda: CPU vs CUDA logits 1e-4 with TF32 off, WPAC on CUDA = CPU,
#      bf16 PIAD steps finite and learning, extract + eval on CUDA, a NCCL group of one rank); on a
#      GPU a skipped test is a failure (it means LibTorch saw no GPU or the build has no NCCL);
#   3. runs the benchmarks, which need no build for timm's side: bf16 training steps of DeiT-S and
#      DeiT-B (plain and PIAD) with batches already on the GPU, the loader's cost measured apart,
#      next to timm's eager step on the same GPU; WPAC of DeiT-B with 1024 proxy images; eval latency
#      at batch 1 and 64 for a few op codes.
# It always reports: a total budget (SKD_GPU_CHECK_BUDGET seconds, default 540) with a timeout on
# every stage, a failing stage prints its error tail and the next stage runs, and after every stage
# (and from an exit trap) it rewrites the three files of $OUT: summary.md, gpu_check.jsonl (every
# figure as a JSON line) and logs.tar.gz (every stage's log).
#
# On the device tool (from the repo root here):
#   bash scripts/gpu_prebuilt.sh      # once: .gpu-prebuilt (binaries + libraries) and .gpu-deps
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu-prebuilt", ".gpu-deps"], timeout_s=600)
# Env: OUT (default ./gpu_check_out), PY (default python3), SKD_JOBS (default nproc),
#      SKD_GPU_CHECK_BUDGET (540), SKD_GPU_PREBUILT (.gpu-prebuilt; "none" forces a build),
#      SKD_GPU_CHECK_QUICK=1 (small sizes: a rehearsal of the script itself, also on a CPU with
#      SKD_GPU_CHECK_DEVICE=cpu), SKD_PEAK_TFLOPS (MFU's peak, default 989: H100/H200 SXM dense bf16).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT="${OUT:-$ROOT/gpu_check_out}"
mkdir -p "$OUT"
PY="${PY:-python3}"
DEV="${SKD_GPU_CHECK_DEVICE:-cuda}"
QUICK="${SKD_GPU_CHECK_QUICK:-0}"
JOBS="${SKD_JOBS:-$(nproc)}"
BUDGET="${SKD_GPU_CHECK_BUDGET:-540}"
RESERVE=15  # seconds kept for the last summary
BUILD="${SKD_GPU_BUILD_DIR:-build-gpu}"
PRE="${SKD_GPU_PREBUILT:-.gpu-prebuilt}"
RESULTS="$OUT/gpu_check.jsonl"
LOGS=$(mktemp -d)
: >"$RESULTS"
start=$(date +%s)
STATUS=()     # "stage|status|seconds|detail" per stage, in order
FAILED=0
CHILD=""      # the running stage's timeout process

elapsed() { echo $(( $(date +%s) - start )); }
json_str() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1" 2>/dev/null || printf '"%s"' "${1//\"/\'}"; }
note() { printf '{"note": %s}\n' "$(json_str "$1")" >>"$RESULTS"; echo "note: $1"; }
slug() { echo "$1" | tr -c 'A-Za-z0-9_.-' '_' | cut -c1-60; }

# summary.md and logs.tar.gz from what is there now; cheap, so after every stage and at exit.
snapshot() {
  {
    echo "# GPU check ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(elapsed) s of a $BUDGET s budget)"
    echo
    [ -f "$LOGS/preflight.txt" ] && { echo '```'; cat "$LOGS/preflight.txt"; echo '```'; echo; }
    echo "| stage | status | seconds | detail |"
    echo "|---|---|---:|---|"
    local s
    for s in "${STATUS[@]}"; do
      IFS='|' read -r a b c d <<<"$s"
      echo "| $a | $b | $c | $d |"
    done
    echo
    "$PY" - "$RESULTS" "${SKD_PEAK_TFLOPS:-989}" 2>/dev/null <<'PYEOF' || echo "(no figures: $PY could not read $RESULTS)"
import json, sys
rows = []
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if isinstance(r, dict):
        rows.append(r)
peak = float(sys.argv[2]) * 1e12
macs = {r["arch"]: r["macs_full"] for r in rows if "macs_full" in r}
steps = [r for r in rows if r.get("mode") in ("train", "piad")]
if steps:
    print("| impl | mode | arch | amp | batch | images/s | step ms | loader ms/batch | MFU (6 x MACs_full) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for r in steps:
        mfu = ""
        if r["arch"] in macs and r["mode"] == "train":
            mfu = "%.1f %%" % (100 * r["images_per_s"] * 6 * macs[r["arch"]] / peak)
        loader = r.get("loader_ms_per_batch")
        print("| %s | %s | %s | %s | %s | %.0f | %.2f | %s | %s |" % (
            r.get("impl"), r["mode"], r["arch"], r.get("amp", ""), r.get("batch", ""), r["images_per_s"],
            1000 * r["seconds_per_step"], "" if loader is None else "%.2f" % loader, mfu))
for r in rows:
    if r.get("mode") == "wpac":
        print("\nWPAC %s: %s proxy images in %.1f s (%s)" % (r["arch"], r["proxy_images"], r["seconds"], r.get("report_seconds")))
lat = [r for r in rows if r.get("mode") == "latency"]
if lat:
    print("\n| latency | arch | op code | amp | batch | median ms | p10 | p90 | images/s |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for r in lat:
        print("| %s | %s | %s | %s | %s | %.3f | %.3f | %.3f | %.0f |" % (
            r.get("impl"), r["arch"], r.get("op_code", 0), r.get("amp"), r["batch"], r["median_ms"], r["p10_ms"],
            r["p90_ms"], r["images_per_s"]))
notes = [r["note"] for r in rows if "note" in r]
if notes:
    print()
    for n in notes:
        print("- note:", n)
PYEOF
  } >"$OUT/summary.md.tmp" 2>/dev/null && mv "$OUT/summary.md.tmp" "$OUT/summary.md"
  tar -czf "$OUT/logs.tar.gz.tmp" -C "$LOGS" . 2>/dev/null && mv "$OUT/logs.tar.gz.tmp" "$OUT/logs.tar.gz"
}
finish() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${CHILD:-}" ] && kill -TERM "$CHILD" 2>/dev/null
  [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ] && STATUS+=("script|interrupted (exit $rc)|$(elapsed)|")
  snapshot
  echo "== [$(elapsed) s] done: $OUT/summary.md"
  cat "$OUT/summary.md"
  rm -rf "$LOGS"
  if [ "$FAILED" -ne 0 ]; then exit 3; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# stage NAME LIMIT CMD...: runs CMD with at most LIMIT seconds (less if the budget is short), its
# output to the stage's log, its JSON lines to the results; a failure prints the log's tail.
stage() {
  local name=$1 limit=$2
  shift 2
  local left=$(( BUDGET - RESERVE - $(elapsed) ))
  [ "$left" -lt "$limit" ] && limit=$left
  local log
  log="$LOGS/$(printf '%02d' ${#STATUS[@]})_$(slug "$name").log"
  if [ "$limit" -lt 5 ]; then
    STATUS+=("$name|SKIPPED: budget spent|0|")
    FAILED=1
    echo "== [$(elapsed) s] $name: skipped, the budget of $BUDGET s is spent"
    snapshot
    return 1
  fi
  echo "== [$(elapsed) s] $name (at most $limit s)"
  local t0 rc
  t0=$(date +%s)
  # In the background and waited for, so that a signal to this script is handled at once (bash runs
  # traps only between foreground commands); a function of this script runs in a child bash.
  if declare -F "$1" >/dev/null; then
    timeout -k 10 "$limit" bash -c '"$@"' stage "$@" >"$log" 2>&1 &
  else
    timeout -k 10 "$limit" "$@" >"$log" 2>&1 &
  fi
  CHILD=$!
  wait "$CHILD"
  rc=$?
  CHILD=""
  local secs=$(( $(date +%s) - t0 ))
  grep '^{' "$log" >>"$RESULTS" 2>/dev/null
  if [ "$rc" -eq 0 ]; then
    STATUS+=("$name|ok|$secs|")
  else
    local why="exit $rc"
    { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && why="TIMED OUT after $limit s"
    STATUS+=("$name|FAILED: $why|$secs|$(grep -m1 -iE 'error|fail|what\(\)' "$log" | cut -c1-160 | tr '|' '/')")
    FAILED=1
    echo "-- $name failed ($why); last lines of its log:"
    tail -n 25 "$log" | sed 's/^/   | /'
  fi
  snapshot
  return "$rc"
}

# --- 0. preflight ---------------------------------------------------------------------------------
preflight() {
  echo "device wanted: $DEV; quick: $QUICK; budget: $BUDGET s; cores: $(nproc)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
  for t in c++ cmake ninja nvcc; do
    if command -v "$t" >/dev/null 2>&1; then echo "$t: $("$t" --version 2>&1 | grep -m1 -E '[0-9]+\.[0-9]+' )"; else echo "$t: MISSING"; fi
  done
  "$PY" - <<'PYEOF' 2>&1 || echo "python: $PY cannot import torch"
import importlib, os, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
try:
    print("nccl", ".".join(map(str, torch.cuda.nccl.version())) if torch.cuda.is_available() else "- (no GPU)")
except Exception as e:
    print("nccl: unavailable (%s)" % e)
try:
    import timm
    print("timm", timm.__version__)
except Exception as e:
    print("timm: MISSING (%s)" % e)
print("torch dir", os.path.dirname(torch.__file__))
PYEOF
  # The NCCL unit (src/distributed/communicator.cpp) includes c10d's NCCL headers, which pull in cuBLAS,
  # cuSPARSE and cuSOLVER headers from the CUDA toolkit or the nvidia-* wheels.
  local dirs=() d h found
  for d in "${CUDA_HOME:-/usr/local/cuda}/include" /usr/local/cuda/include /usr/include; do dirs+=("$d"); done
  while IFS= read -r d; do dirs+=("$d"); done < <("$PY" -c 'import glob, os, nvidia; [print(p) for p in glob.glob(os.path.join(os.path.dirname(nvidia.__file__) if nvidia.__file__ else list(nvidia.__path__)[0], "*", "include"))]' 2>/dev/null)
  for h in cublas_v2.h cusparse.h cusolverDn.h nccl.h; do
    found=""
    for d in "${dirs[@]}"; do [ -f "$d/$h" ] && { found=$d; break; }; done
    echo "header $h: ${found:-MISSING}"
  done
  echo "prebuilt: $([ -d "$PRE/bin" ] && echo "$PRE ($(ls "$PRE/bin" | tr '\n' ' '))" || echo none)"
}
preflight >"$LOGS/preflight.txt" 2>&1
cat "$LOGS/preflight.txt"
STATUS+=("preflight|ok|$(elapsed)|")
TORCH_DIR=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
if [ -z "$TORCH_DIR" ]; then
  STATUS+=("torch|FAILED: $PY has no torch|0|")
  FAILED=1
  exit 3
fi
if [ "$DEV" = cuda ] && ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  STATUS+=("gpu|FAILED: torch sees no CUDA device|0|")
  FAILED=1
fi
snapshot

# --- 1. binaries: prebuilt when they run here, else built ------------------------------------------
T_CUDA="" B_STEP=""
export ROOT PRE TORCH_DIR DEV BUILD JOBS
# The prebuilt binaries find LibTorch here through the library path: this machine's torch/lib and the
# nvidia-* wheels' lib folders (NCCL, cuBLAS, ...) beside it, after the carried libraries.
NV_LIBS=$("$PY" -c 'import glob, os, torch; site = os.path.dirname(os.path.dirname(torch.__file__)); print(":".join(sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))))' 2>/dev/null)
export NV_LIBS
probe_prebuilt() {
  "$PRE/bin/skd_test_cuda" --gtest_list_tests >/dev/null && "$PRE/bin/skd-bench-step" --help >/dev/null
}
export -f probe_prebuilt
LD_BEFORE="${LD_LIBRARY_PATH:-}"
export LD_LIBRARY_PATH="$ROOT/$PRE/lib:$TORCH_DIR/lib${NV_LIBS:+:$NV_LIBS}${LD_BEFORE:+:$LD_BEFORE}"
if [ "$PRE" != none ] && [ -x "$PRE/bin/skd_test_cuda" ] && [ -x "$PRE/bin/skd-bench-step" ] \
   && stage "prebuilt binaries load and answer --help" 60 probe_prebuilt; then
  T_CUDA="$ROOT/$PRE/bin/skd_test_cuda" B_STEP="$ROOT/$PRE/bin/skd-bench-step"
  note "binaries: prebuilt ($(tr '\n' ';' <"$PRE/BUILT_FROM" 2>/dev/null || echo "no BUILT_FROM"))"
else
  export LD_LIBRARY_PATH="$LD_BEFORE"  # built binaries find their libraries themselves
  NCCL=ON
  [ "$DEV" = cpu ] && NCCL=OFF
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
  configure() {
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSKD_BUILD_TESTS=ON -DSKD_BUILD_APPS=OFF \
      -DCMAKE_PREFIX_PATH="$TORCH_DIR/share/cmake;$ROOT/.gpu-deps" -DTORCH_LIBRARY="$TORCH_DIR/lib/libtorch.so" \
      -Dc10_LIBRARY="$TORCH_DIR/lib/libc10.so" -DSKD_WITH_OPENCV=OFF -DSKD_WITH_NCCL="$1" -DSKD_BUILD_BENCH=ON
  }
  build() { cmake --build "$BUILD" -j "$JOBS" --target skd_test_cuda skd-bench-step -- -k 0; }
  export -f configure build
  if [ ! -d .gpu-deps ]; then
    note "no .gpu-deps and no usable prebuilt folder: run scripts/gpu_prebuilt.sh here and carry both"
  fi
  if stage "configure (NCCL $NCCL)" 120 configure "$NCCL" && ! stage "build ($JOBS jobs, NCCL $NCCL)" 420 build \
     && [ "$NCCL" = ON ] && grep -q 'communicator\.cpp' "$LOGS"/*build*.log; then
    note "the NCCL unit did not compile here (see the build log): rebuilt without NCCL, so the NCCL test skips"
    stage "configure (NCCL OFF)" 120 configure OFF && stage "build without NCCL" 300 build
  fi
  [ -x "$BUILD/tests/skd_test_cuda" ] && T_CUDA="$ROOT/$BUILD/tests/skd_test_cuda"
  [ -x "$BUILD/tools/bench/skd-bench-step" ] && B_STEP="$ROOT/$BUILD/tools/bench/skd-bench-step"
fi

# --- 2. CUDA tests --------------------------------------------------------------------------------
cuda_tests() {
  local out rc skipped
  out=$("$T_CUDA" --gtest_brief=0 2>&1)
  rc=$?
  echo "$out"
  [ "$rc" -eq 0 ] || return "$rc"
  skipped=$(echo "$out" | grep -oE '^\[  SKIPPED \] [0-9]+ test' | grep -oE '[0-9]+' | head -1)
  if [ "$DEV" = cuda ] && [ "${skipped:-0}" -gt 0 ]; then
    echo "FAIL: $skipped CUDA test(s) skipped on a GPU machine (LibTorch saw no GPU, or the build has no NCCL)"
    return 1
  fi
}
export -f cuda_tests
if [ -n "$T_CUDA" ]; then
  export T_CUDA
  stage "CUDA tests" 180 cuda_tests
else
  STATUS+=("CUDA tests|FAILED: no test binary (build failed)|0|")
  FAILED=1
fi

# --- 3. benchmarks --------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
  S_ARCH=configs/models/vit_fmnist.json B_ARCH=configs/models/vit_fmnist.json S_BATCH=16 B_BATCH=16 STEPS=4 WARM=2
  WPAC_N=64 AMP=none CODES=0,6
else
  S_ARCH=deit_small B_ARCH=deit_base S_BATCH=256 B_BATCH=128 STEPS=30 WARM=10 WPAC_N=1024 AMP=bf16 CODES=0,4,8,12
fi
[ "$DEV" = cpu ] && AMP=none
TH=$(nproc)
COMMON=(--device "$DEV" --threads "$TH")
# timm's side first: it needs no build, so it reports even when the build failed.
TIMM=("$PY" tools/bench/timm_step.py --steps $STEPS --warmup $WARM --amp $AMP --data device "${COMMON[@]}")
stage "timm step DeiT-S" 90 "${TIMM[@]}" --arch $S_ARCH --batch $S_BATCH
stage "timm step DeiT-B" 90 "${TIMM[@]}" --arch $B_ARCH --batch $B_BATCH
if [ -n "$B_STEP" ]; then
  stage "skd step DeiT-S (plain + PIAD)" 120 "$B_STEP" --arch $S_ARCH --batch $S_BATCH --steps $STEPS --warmup $WARM --amp $AMP --data device "${COMMON[@]}"
  stage "skd step DeiT-B (plain + PIAD)" 120 "$B_STEP" --arch $B_ARCH --batch $B_BATCH --steps $STEPS --warmup $WARM --amp $AMP --data device "${COMMON[@]}"
  stage "WPAC DeiT-B, $WPAC_N proxy images" 90 "$B_STEP" --arch $B_ARCH --mode none --batch 32 --wpac $WPAC_N "${COMMON[@]}"
  stage "latency DeiT-S, op codes $CODES" 60 "$B_STEP" --arch $S_ARCH --mode none --latency 1,64 --op-codes $CODES --amp $AMP "${COMMON[@]}"
  stage "latency DeiT-B, op codes $CODES" 60 "$B_STEP" --arch $B_ARCH --mode none --latency 1,64 --op-codes $CODES --amp $AMP "${COMMON[@]}"
else
  STATUS+=("skd benchmarks|FAILED: no benchmark binary (build failed)|0|")
  FAILED=1
fi
# Last, as it may not fit: timm's step through torch.compile (its compile time is untimed).
[ "$DEV" = cuda ] && stage "timm step DeiT-S, torch.compile" 150 "${TIMM[@]}" --arch $S_ARCH --batch $S_BATCH --compile
exit 0
