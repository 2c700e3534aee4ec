#!/usr/bin/env bash
# Training-throughput benchmark: skd-train (C++/LibTorch) vs the same ViT training loop in PyTorch
# eager (tools/bench/train_py_loop.py), images/s on Fashion-MNIST.
#
# Prerequisites: a build (build/apps/skd-train) and Debian's python3-torch for /usr/bin/python3.
# This script installs nothing; it checks both and stops with a message when one is missing.
#
# Both sides: same architecture JSON, the first --limit training images, 1 epoch, batch --batch-size
# (drop_last), AdamW lr 5e-4 (cosine to min_lr 1e-5, no warmup), weight decay 0.05, label smoothing 0.1,
# no mixup/cutmix, no evaluation, --threads intra-op threads, OMP_WAIT_POLICY=PASSIVE, seed 0.
# The C++ and Python runs alternate --repeat times (odd rounds C++ first, even rounds Python first) so
# that both see the same machine drift. Reported: whole-epoch images/s of each run (C++ from
# RUN_DIR/metrics.jsonl, Python from its JSON line), the medians and the median of the per-round
# C++/Python ratios, the 1-minute load average before each run, and the machine.
# The rest of the environment passes through to both sides unchanged. On a busy 2-core machine the
# threading settings dominate: OMP_WAIT_POLICY=PASSIVE (set here) was worth ~3x for the Python loop, and
# OPENBLAS_NUM_THREADS (not set here; OpenBLAS-pthread keeps its own thread pool beside OpenMP's) moves
# both sides too, so the summary prints it.
#
# --data random (e.g. --arch deit_tiny, a named architecture of both sides) trains on --limit random
# images held in memory instead: the C++ side is then skd-bench-step --mode train (the same
# train::train; time per step = difference of a --warmup-step and a full run), the Python side the
# same loop on random images, and each reports its steps after the first --warmup (default 2).
#
# Usage (from the repo root, after a build):
#   tools/bench/train_bench.sh [--arch configs/models/vit_fmnist.json] [--limit 12800]
#                                [--batch-size 128] [--threads 2] [--repeat 3]
#                                [--data fashion-mnist|random] [--warmup 2]
# --arch defaults to configs/models/vit_fmnist.json, or configs/models/vit_fmnist_demo.json when that
# file does not exist.
# Env: OUT (folder for logs, run dirs and results; default a new /tmp/skd_train_bench.XXXXXX),
#      SKD_TRAIN (the C++ trainer, default build/apps/skd-train), SKD_BENCH_STEP (--data random's C++
#      side, default build/tools/bench/skd-bench-step), PY (default /usr/bin/python3; a venv's python
#      for its torch, with the matching build's binaries).
source "$(dirname "$0")/../../scripts/lib/common.sh"

die() { echo "train_bench.sh: $*" >&2; exit 1; }

ARCH="" LIMIT=12800 BATCH=128 THREADS=2 REPEAT=3 DATA=fashion-mnist WARMUP=2
skd_args --arch ARCH --limit LIMIT --batch-size BATCH --threads THREADS --repeat REPEAT --data DATA \
  --warmup WARMUP -- "$@"
[ "$DATA" = fashion-mnist ] || [ "$DATA" = random ] || die "--data must be fashion-mnist or random, got '$DATA'"
for pair in "--limit:$LIMIT" "--batch-size:$BATCH" "--threads:$THREADS" "--repeat:$REPEAT" "--warmup:$WARMUP"; do
  [[ "${pair#*:}" =~ ^[1-9][0-9]*$ ]] || die "${pair%%:*} must be a positive integer, got '${pair#*:}'"
done
[ "$LIMIT" -ge "$BATCH" ] || die "--limit ($LIMIT) is smaller than one batch (--batch-size $BATCH)"

# A user-given --arch is relative to the caller's directory; the defaults to the repo root. With
# --data random it may also be a name both sides know (deit_tiny, deit_small).
if [ -n "$ARCH" ] && [ "$DATA" = random ] && [[ "$ARCH" =~ ^deit_(tiny|small)$ ]]; then
  :
elif [ -n "$ARCH" ]; then
  [ -f "$ARCH" ] || die "--arch '$ARCH': no such file"
  ARCH="$(cd "$(dirname "$ARCH")" && pwd)/$(basename "$ARCH")"
fi
SKD_TRAIN="${SKD_TRAIN:-build/apps/skd-train}"
[ "${SKD_TRAIN#/}" != "$SKD_TRAIN" ] || [ ! -e "$SKD_TRAIN" ] || SKD_TRAIN="$PWD/$SKD_TRAIN"
SKD_BENCH_STEP="${SKD_BENCH_STEP:-build/tools/bench/skd-bench-step}"
[ "${SKD_BENCH_STEP#/}" != "$SKD_BENCH_STEP" ] || [ ! -e "$SKD_BENCH_STEP" ] || SKD_BENCH_STEP="$PWD/$SKD_BENCH_STEP"
STEPS=$((LIMIT / BATCH - WARMUP))
[ "$DATA" = fashion-mnist ] || [ "$STEPS" -ge 1 ] || die "--data random: --limit $LIMIT holds $((LIMIT / BATCH)) batch(es), not more than --warmup $WARMUP"
skd_cd_root
if [ -z "$ARCH" ]; then
  ARCH=configs/models/vit_fmnist.json
  [ -f "$ARCH" ] || { echo "note: $ARCH not found, using configs/models/vit_fmnist_demo.json" >&2
                      ARCH=configs/models/vit_fmnist_demo.json; }
  [ -f "$ARCH" ] || die "no architecture file ($ARCH)"
fi

PY="${PY:-/usr/bin/python3}"
CPP_BIN="$SKD_TRAIN"  # the C++ side's binary (the summary names its LibTorch)
[ "$DATA" = random ] && CPP_BIN="$SKD_BENCH_STEP"
if [ "$DATA" = random ]; then
  [ -x "$CPP_BIN" ] || die "$CPP_BIN not found: configure with -DSKD_BUILD_BENCH=ON and build"
else
  [ -x "$CPP_BIN" ] || die "$CPP_BIN not found or not executable: build first (scripts/build.sh)"
fi
[ -x "$PY" ] || die "$PY not found: this benchmark needs Debian's python3 with torch (install python3-torch)"
TORCH_PY="$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)" \
  || die "$PY cannot import torch: install python3-torch (apt-get install python3-torch)"
"$PY" -c 'import numpy' 2>/dev/null || die "$PY cannot import numpy: install python3-numpy"

export OMP_WAIT_POLICY=PASSIVE
OUT="${OUT:-$(mktemp -d /tmp/skd_train_bench.XXXXXX)}"
mkdir -p "$OUT"

load1() { cut -d' ' -f1 /proc/loadavg; }
fail_run() {  # $1 = what, $2 = log
  echo "train_bench.sh: $1; last lines of $2:" >&2
  tail -n 20 "$2" >&2
  exit 1
}

run_cpp() {  # $1 = round; appends "round load images_per_s" to $OUT/cpp.tsv
  local dir="$OUT/cpp_run$1" log="$OUT/cpp_run$1.log" load ips
  rm -rf "$dir"
  load="$(load1)"
  if [ "$DATA" = random ]; then
    CPP_CMD=("$SKD_BENCH_STEP" --arch "$ARCH" --mode train --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP"
             --threads "$THREADS" --mixup 0 --cutmix 0 --drop-path 0)
    "${CPP_CMD[@]}" >"$log" 2>&1 || fail_run "C++ run $1 failed: ${CPP_CMD[*]}" "$log"
    ips="$("$PY" -c 'import json, sys
print([json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]["images_per_s"])' "$log")" \
      || fail_run "C++ run $1: no JSON result line" "$log"
  else
    CPP_CMD=("$SKD_TRAIN" --arch "$ARCH" --data fashion-mnist --epochs 1 --limit "$LIMIT" --batch-size "$BATCH"
             --threads "$THREADS" --no-eval --mixup 0 --cutmix 0 --smoothing 0.1 --lr 5e-4 --unscale-lr
             --warmup-epochs 0 --drop-path 0 --no-augment --workers 1 --run-dir "$dir" --log-every 0)
    "${CPP_CMD[@]}" >"$log" 2>&1 || fail_run "C++ run $1 failed: ${CPP_CMD[*]}" "$log"
    [ -s "$dir/metrics.jsonl" ] || fail_run "C++ run $1 wrote no $dir/metrics.jsonl" "$log"
    ips="$("$PY" -c 'import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
print(json.loads(lines[-1])["images_per_s"])' "$dir/metrics.jsonl")" \
      || fail_run "C++ run $1: no images_per_s in the last line of $dir/metrics.jsonl" "$log"
  fi
  echo "$1 $load $ips" >>"$OUT/cpp.tsv"
  echo "  round $1 C++:    $ips images/s (load $load)" >&2
}

run_py() {  # $1 = round; appends "round load images_per_s images_per_s_after_warmup" to $OUT/py.tsv
  local log="$OUT/py_run$1.log" load line
  load="$(load1)"
  PY_CMD=("$PY" tools/bench/train_py_loop.py --arch "$ARCH" --data "$DATA" --epochs 1 --limit "$LIMIT"
          --batch-size "$BATCH" --threads "$THREADS" --smoothing 0.1 --lr 5e-4 --warmup-epochs 0)
  [ "$DATA" = random ] && PY_CMD+=(--warmup-steps "$WARMUP")
  "${PY_CMD[@]}" >"$log" 2>&1 || fail_run "Python run $1 failed: ${PY_CMD[*]}" "$log"
  line="$("$PY" -c 'import json, sys
r = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
# --data random compares steady-state steps (the C++ side leaves its warm-up out too).
first = r["images_per_s_after_warmup"] if sys.argv[2] == "random" else r["images_per_s"]
print(first, r["images_per_s_after_warmup"])' "$log" "$DATA")" \
    || fail_run "Python run $1: no JSON result line" "$log"
  echo "$1 $load $line" >>"$OUT/py.tsv"
  echo "  round $1 Python: ${line%% *} images/s (load $load)" >&2
}

: >"$OUT/cpp.tsv"; : >"$OUT/py.tsv"
echo "train_bench: arch $ARCH, data $DATA, $LIMIT images, batch $BATCH, $THREADS thread(s), $REPEAT round(s); logs in $OUT" >&2
for ((r = 1; r <= REPEAT; r++)); do
  if ((r % 2)); then run_cpp "$r"; run_py "$r"; else run_py "$r"; run_cpp "$r"; fi
done

# ---- machine ----
CPU_MODEL="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" || CPU_MODEL=unknown
TORCH_LIB="$(ldd "$CPP_BIN" 2>/dev/null | awk '/libtorch_cpu/ {print $3; exit}')" || TORCH_LIB=""
TORCH_CPP="unknown"
if [ -n "$TORCH_LIB" ]; then
  real="$(readlink -f "$TORCH_LIB")"
  pkg="$( (dpkg -S "$real" 2>/dev/null || dpkg -S "/usr${real#/usr}" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null) \
          | head -n1 | cut -d: -f1)" || true
  if [ -n "$pkg" ]; then
    TORCH_CPP="$pkg $(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ($(basename "$real"))"
  else
    TORCH_CPP="$(basename "$real")"
  fi
fi
PY_PKG=""
[ "$PY" = /usr/bin/python3 ] && PY_PKG="$(dpkg-query -W -f='${Version}' python3-torch 2>/dev/null || true)"

{
  echo "CPP_CMD: ${CPP_CMD[*]}"
  echo "PY_CMD: ${PY_CMD[*]}"
} >"$OUT/commands.txt"

"$PY" - "$OUT" "$ARCH $DATA" "$LIMIT" "$BATCH" "$THREADS" "$(nproc)" "$CPU_MODEL" "$TORCH_CPP" \
  "$TORCH_PY${PY_PKG:+ (python3-torch $PY_PKG)}" <<'EOF' | tee "$OUT/summary.md"
import os, statistics, sys

out, arch, limit, batch, threads, nproc, cpu, torch_cpp, torch_py = sys.argv[1:]

def rows(name):
    with open(os.path.join(out, name)) as f:
        return {int(p[0]): p[1:] for p in (l.split() for l in f if l.strip())}

cpp, py = rows("cpp.tsv"), rows("py.tsv")
print(f"\n### Training throughput: {arch}, {limit} images, batch {batch}, {threads} thread(s), 1 epoch\n")
print("| run | C++ img/s | Python img/s | C++/Python | load before (C++ / Python) |")
print("|---:|---:|---:|---:|---|")
ratios = []
for r in sorted(cpp):
    c, p = float(cpp[r][1]), float(py[r][1])
    ratios.append(c / p)
    print(f"| {r} | {c:.1f} | {p:.1f} | {c / p:.2f}x | {cpp[r][0]} / {py[r][0]} |")
mc = statistics.median(float(v[1]) for v in cpp.values())
mp = statistics.median(float(v[1]) for v in py.values())
print(f"| median | {mc:.1f} | {mp:.1f} | **{statistics.median(ratios):.2f}x** | |")
print(f"\nMedian C++/Python ratio (per round): **{statistics.median(ratios):.2f}x**"
      f" (range {min(ratios):.2f}x-{max(ratios):.2f}x)")
aw = [v[2] for v in py.values() if v[2] != "None"]
if aw:
    print(f"Python images/s leaving out its warm-up steps (median): {statistics.median(map(float, aw)):.1f}")
print(f"\nMachine: {nproc} cores (nproc), CPU: {cpu}")
print(f"LibTorch (C++): {torch_cpp}; PyTorch (Python): {torch_py}")
print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
      f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} (BLAS is OpenBLAS via Debian's libblas.so.3)")
EOF
echo "(commands in $OUT/commands.txt, logs and run dirs in $OUT)" >&2
