#!/usr/bin/env bash
# Training-step cost of PIAD's in-place distillation (piad_distill), CPU: skd-bench-step's PIAD step
# (a code sampled per step from a 12-code uniform table, random images in memory) once per mode, with
# and without the sandwich rule, rounds alternating the order. Prints a Markdown table (median of the
# rounds: ms per step, images/s, and the ratio to the paper's step, `none`, of the same rule) and
# keeps every JSON line in $OUT/steps.jsonl.
# Usage: tools/bench/distill_step_bench.sh [--rounds 3] [--threads 2] [--batch 128] [--steps 20]
#          [--arch configs/models/vit_fmnist.json]
# Needs: build configured with -DSKD_BUILD_BENCH=ON (build/tools/bench/skd-bench-step). Env OUT.
source "$(dirname "$0")/../../scripts/lib/common.sh"
skd_cd_root
ROUNDS=3 THREADS=2 BATCH=128 STEPS=20 ARCH=configs/models/vit_fmnist.json
skd_args --rounds ROUNDS --threads THREADS --batch BATCH --steps STEPS --arch ARCH -- "$@"
BENCH=${SKD_BENCH_STEP:-build/tools/bench/skd-bench-step}
[ -x "$BENCH" ] || { echo "distill_step_bench.sh: $BENCH missing: configure with -DSKD_BUILD_BENCH=ON and build" >&2; exit 1; }
OUT="${OUT:-$(mktemp -d /tmp/skd_distill_bench.XXXXXX)}"
mkdir -p "$OUT"
: >"$OUT/steps.jsonl"
export OMP_WAIT_POLICY=PASSIVE
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="none,frozen,full,progressive"; else order="progressive,full,frozen,none"; fi
  for sw in "" "--sandwich"; do
    # shellcheck disable=SC2086  # sw is empty or one flag
    "$BENCH" --arch "$ARCH" --mode piad --distill "$order" $sw --mixup 0 --cutmix 0 --batch "$BATCH" \
      --steps "$STEPS" --warmup 3 --threads "$THREADS" 2>/dev/null | tee -a "$OUT/steps.jsonl"
  done
done
python3 - "$OUT/steps.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault((r["sandwich"], r["distill"]), []).append(r["seconds_per_step"])
first = rows[0]
print(f"PIAD step of {first['arch']}, batch {first['batch']}, {first['threads']} threads, torch {first['torch']}, "
      f"median of {len(next(iter(by.values())))} rounds")
print()
print("| rule | piad_distill | ms / step | images/s | vs none |")
print("|---|---|---:|---:|---:|")
for sandwich in (False, True):
    base = statistics.median(by[(sandwich, "none")])
    for mode in ("none", "frozen", "full", "progressive"):
        s = statistics.median(by[(sandwich, mode)])
        print(f"| {'sandwich' if sandwich else 'one code'} | {mode} | {1000 * s:.1f} | {first['batch'] / s:.0f} | "
              f"{s / base:.2f}x |")
PY
