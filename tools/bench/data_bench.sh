#!/usr/bin/env bash
# Data-pipeline benchmark (issue 3): skd-bench-data (C++) vs PIL + torchvision, images/s per core.
#
# Prerequisites on a fresh Debian 12 machine: scripts/setup.sh, then
#   apt-get install python3-torchvision python3-pil
# (this script runs that apt-get itself when Debian's /usr/bin/python3 cannot import them).
# Builds only skd-bench-data in build-bench/, writes a deterministic JPEG folder, then measures
# (round-robin, RUNS times):
#   C++ eval/train at 1 and 2 threads, PIL eval/train at 1 thread (torch.set_num_threads(1)),
# and prints the medians with the C++/PIL ratio per core, plus per-step and per-RandAugment-op profiles.
# Before each measurement it waits (up to WAIT_TRIES x 20 s) until other processes use < MAX_BUSY cores.
#
# Usage: tools/bench/data_bench.sh
# Env: BENCH_DIR (/tmp/skd_bench_jpegs), COUNT (200), RUNS (5), REPEAT (3), WARMUP (1),
#      MAX_BUSY (0.5), WAIT_TRIES (15), SKD_JOBS (build jobs, default nproc), OUT (results dir),
#      SUMMARY_ONLY=1 with OUT=<dir of an earlier run>: print its tables again without measuring.
source "$(dirname "$0")/../../scripts/lib/common.sh"
skd_cd_root

BENCH_DIR="${BENCH_DIR:-/tmp/skd_bench_jpegs}"
COUNT="${COUNT:-200}"
RUNS="${RUNS:-5}"
REPEAT="${REPEAT:-3}"
WARMUP="${WARMUP:-1}"
MAX_BUSY="${MAX_BUSY:-0.5}"
WAIT_TRIES="${WAIT_TRIES:-15}"
if [ -n "${SUMMARY_ONLY:-}" ] && [ -z "${OUT:-}" ]; then echo "SUMMARY_ONLY needs OUT" >&2; exit 2; fi
OUT="${OUT:-$(mktemp -d /tmp/skd_data_bench.XXXXXX)}"
PY=/usr/bin/python3  # Debian's python: the one python3-pil/python3-torchvision install into

summarize() {  # tables from the JSON files in $OUT
  "$PY" - "$OUT" <<'EOF'
import glob, json, os, statistics, sys

out = sys.argv[1]

def runs(impl, pipe, threads, prefix=""):
    rs = []
    for f in sorted(glob.glob(os.path.join(out, f"{prefix}{impl}_{pipe}_t{threads}_run*.json"))):
        with open(f) as fh:
            r = json.load(fh)
        with open(f + ".load") as fh:
            r["load"] = fh.read().strip()
        rs.append(r)
    return rs

def med(rs, key):
    return statistics.median(r[key]["images_per_s"] for r in rs)

def spread(rs, key):  # "median (min-max)": this machine is noisy, the range says how much
    v = [r[key]["images_per_s"] for r in rs]
    return f"{statistics.median(v):.1f} ({min(v):.0f}-{max(v):.0f})"

print("\n### images/s (median of %d runs; each run = %d timed passes over %d images after %d warm-up)\n"
      % (len(runs("cpp", "eval", 1)), runs("cpp", "eval", 1)[0]["repeat"], runs("cpp", "eval", 1)[0]["files"],
         runs("cpp", "eval", 1)[0]["warmup"]))
print("| pipeline | stage | C++ 1 thread (min-max) | PIL 1 thread (min-max) | C++/PIL per core "
      "| C++ 2 threads | 2-thread scaling |")
print("|---|---|---:|---:|---:|---:|---:|")
for pipe in ("eval", "train"):
    c1, c2, p1 = runs("cpp", pipe, 1), runs("cpp", pipe, 2), runs("pil", pipe, 1)
    for key, label in (("decode", "decode"), ("decode_transform", "decode + transform")):
        a, b, c = med(c1, key), med(p1, key), med(c2, key)
        print(f"| {pipe} | {label} | {spread(c1, key)} | {spread(p1, key)} | **{a / b:.2f}x** | {c:.1f} "
              f"| {c / a:.2f}x |")

nt = runs("cpp", "eval", 1, "notrim_")
print(f"\nDiagnostic, C++ eval 1 thread with glibc heap trimming off (GLIBC_TUNABLES): decode "
      f"{med(nt, 'decode'):.1f}, decode + transform {med(nt, 'decode_transform'):.1f} images/s")

print("\n### every run (decode+transform images/s, busy cores from other processes / 1-min load before it)\n")
for pipe in ("eval", "train"):
    for impl, t in (("cpp", 1), ("cpp", 2), ("pil", 1)):
        rs = runs(impl, pipe, t)
        cells = ", ".join(f"{r['decode_transform']['images_per_s']:.1f} ({r['load']})" for r in rs)
        print(f"- {impl} {pipe} {t}t: {cells}")

def profile(impl, pipe, key):
    rs = []
    for f in sorted(glob.glob(os.path.join(out, f"profile_{impl}_{pipe}_run*.json"))):
        with open(f) as fh:
            rs.append(json.load(fh)[key])
    return {k: statistics.median(r[k] for r in rs) for k in rs[0]}

print("\n### per-step profile, ms per image (1 thread, median of the profile runs)\n")
for pipe in ("eval", "train"):
    c, p = profile("cpp", pipe, "profile_ms_per_image"), profile("pil", pipe, "profile_ms_per_image")
    print(f"| {pipe} step | C++ ms | PIL ms | C++/PIL speed |")
    print("|---|---:|---:|---:|")
    for k in c:
        print(f"| {k} | {c[k]:.3f} | {p[k]:.3f} | {p[k] / c[k]:.2f}x |")
    tc, tp = sum(c.values()), sum(p.values())
    print(f"| total | {tc:.3f} | {tp:.3f} | {tp / tc:.2f}x |\n")

c, p = profile("cpp", "train", "augment_op_ms_per_image"), profile("pil", "train", "augment_op_ms_per_image")
print("### RandAugment ops alone at magnitude 9 on the 224x224 crops, ms per image (1 thread, median)\n")
print("| op | C++ ms | PIL ms | C++/PIL speed |")
print("|---|---:|---:|---:|")
for k in c:
    print(f"| {k} | {c[k]:.3f} | {p[k]:.3f} | {p[k] / c[k]:.2f}x |")
print(f"| mean (= expected cost of one applied op) | {sum(c.values()) / len(c):.3f} | "
      f"{sum(p.values()) / len(p):.3f} | {sum(p.values()) / sum(c.values()):.2f}x |")
EOF
}

if [ -n "${SUMMARY_ONLY:-}" ]; then  # re-print the tables of an earlier run
  summarize
  exit 0
fi

# ---- Dependencies.
if ! "$PY" -c 'import PIL, torchvision, numpy' >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "bench: installing python3-pil python3-torchvision"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    python3-pil python3-torchvision python3-numpy >/dev/null
fi

# ---- Build (only the benchmark target and what it links).
GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
if [ ! -f build-bench/CMakeCache.txt ]; then
  cmake -S . -B build-bench "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DSKD_BUILD_BENCH=ON -DSKD_BUILD_TESTS=OFF
else
  cmake -S . -B build-bench -DSKD_BUILD_BENCH=ON -DSKD_BUILD_TESTS=OFF >/dev/null
fi
cmake --build build-bench --target skd-bench-data -j "${SKD_JOBS:-$(nproc)}"
BIN=build-bench/tools/bench/skd-bench-data

# ---- Images (deterministic; regenerated only when the count differs).
have=0
if [ -d "$BENCH_DIR" ]; then have=$(find "$BENCH_DIR" -name '*.jpg' | wc -l); fi
if [ "$have" -ne "$COUNT" ]; then
  rm -rf "$BENCH_DIR"
  "$PY" tools/bench/make_jpeg_folder.py --out "$BENCH_DIR" --count "$COUNT"
fi

# Cores kept busy by everything running now, from two /proc/stat samples 2 s apart. The load average
# is not enough on its own: our previous measurement keeps it up for a minute after it ended.
busy_cores() {
  local a b
  a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  awk -v t="$total" -v i="$idle" -v n="$(nproc)" 'BEGIN { printf "%.2f", (t > 0 ? n * (t - i) / t : 0) }'
}

wait_quiet() {  # prints "busy=<cores> load1=<loadavg>" for the record
  local tries=0 busy
  while :; do
    busy=$(busy_cores)
    if awk -v b="$busy" -v m="$MAX_BUSY" 'BEGIN { exit !(b <= m) }'; then break; fi
    if [ "$tries" -ge "$WAIT_TRIES" ]; then break; fi  # measure anyway; the load is recorded
    tries=$((tries + 1))
    echo "bench: other processes keep $busy cores busy, waiting (try $tries/$WAIT_TRIES)" >&2
    sleep 20
  done
  echo "busy=$busy load1=$(cut -d' ' -f1 /proc/loadavg)"
}

CONFIGS=("cpp eval 1" "cpp eval 2" "pil eval 1" "cpp train 1" "cpp train 2" "pil train 1")
run_one() {  # impl pipeline threads [extra args]
  local impl=$1 pipe=$2 threads=$3
  shift 3
  if [ "$impl" = cpp ]; then
    "$BIN" --folder "$BENCH_DIR" --pipeline "$pipe" --threads "$threads" --repeat "$REPEAT" \
      --warmup "$WARMUP" "$@"
  else
    "$PY" tools/bench/pil_pipeline_bench.py --folder "$BENCH_DIR" --pipeline "$pipe" --repeat "$REPEAT" \
      --warmup "$WARMUP" "$@"
  fi
}

mkdir -p "$OUT"
echo "bench: results in $OUT"
for run in $(seq 1 "$RUNS"); do
  for cfg in "${CONFIGS[@]}"; do
    read -r impl pipe threads <<<"$cfg"
    cond=$(wait_quiet)
    f="$OUT/${impl}_${pipe}_t${threads}_run${run}.json"
    run_one "$impl" "$pipe" "$threads" >"$f"
    echo "$cond" >"$f.load"
    echo "bench: run $run $impl $pipe threads=$threads ($cond)"
  done
done
for run in $(seq 1 "$RUNS"); do
  for cfg in "cpp eval 1" "pil eval 1" "cpp train 1" "pil train 1"; do
    read -r impl pipe threads <<<"$cfg"
    cond=$(wait_quiet)
    f="$OUT/profile_${impl}_${pipe}_run${run}.json"
    run_one "$impl" "$pipe" 1 --profile --repeat 1 >"$f"
    echo "$cond" >"$f.load"
  done
  echo "bench: profile run $run done"
done
# Diagnostic: the C++ decode-only loop frees and re-allocates ~1 MB per image, which glibc keeps
# returning to the kernel (heap trim), so every image pays fresh page faults. The same run with
# trimming off shows how much of the decode-only figure that is.
for run in $(seq 1 "$RUNS"); do
  cond=$(wait_quiet)
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=268435456 \
    run_one cpp eval 1 >"$OUT/notrim_cpp_eval_t1_run${run}.json"
  echo "$cond" >"$OUT/notrim_cpp_eval_t1_run${run}.json.load"
done

summarize
