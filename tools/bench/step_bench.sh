#!/usr/bin/env bash
# Training-step and WPAC-statistics benchmark, CPU: the library's trainer (skd-bench-step: train::train, plain steps of the
# full network and PIAD steps of sampled sub-networks) on the LibTorch 2.x wheel build and on the
# Debian 1.13 build, next to timm's own training step (tools/bench/timm_step.py: timm's
# VisionTransformer, AdamW from timm.optim, timm's Mixup/CutMix + SoftTargetCrossEntropy) under the
# wheel's torch, same model, batch, threads, random images in memory. Rounds alternate the order of
# the implementations. Prints a Markdown table (median of the rounds) and keeps every JSON line.
#
# Usage: tools/bench/step_bench.sh [--rounds 3] [--threads 2] [--only step|wpac]
# Needs: build-torch2 and build configured with -DSKD_BUILD_BENCH=ON (skd-bench-step), the venv of
# scripts/setup_venv.sh (torch 2.11 + timm). Env OUT (default /tmp/skd_step_bench.XXXXXX).
source "$(dirname "$0")/../../scripts/lib/common.sh"
skd_cd_root
ROUNDS=3 THREADS=2 ONLY=""
skd_args --rounds ROUNDS --threads THREADS --only ONLY -- "$@"
VENV=$(bash scripts/setup_venv.sh)
T2=build-torch2/tools/bench/skd-bench-step
T1=build/tools/bench/skd-bench-step
for b in "$T2" "$T1"; do
  [ -x "$b" ] || { echo "step_bench.sh: $b missing: configure with -DSKD_BUILD_BENCH=ON and build" >&2; exit 1; }
done
OUT="${OUT:-$(mktemp -d /tmp/skd_step_bench.XXXXXX)}"
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: >"$RES"
export OMP_WAIT_POLICY=PASSIVE
# arch|batch|steps|warmup
CASES=("configs/models/vit_fmnist.json|128|20|5" "deit_tiny|32|6|2")
[ "$ONLY" = wpac ] && CASES=()
for ((r = 1; r <= ROUNDS; r++)); do
  for c in "${CASES[@]+"${CASES[@]}"}"; do
    IFS='|' read -r arch batch steps warm <<<"$c"
    runs=(skd2 skd1 timm)
    ((r % 2 == 0)) && runs=(timm skd1 skd2)
    for impl in "${runs[@]}"; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      case $impl in
        skd2) line=$("$T2" --arch "$arch" --batch "$batch" --steps "$steps" --warmup "$warm" --threads "$THREADS" 2>>"$OUT/log") ;;
        skd1) line=$("$T1" --arch "$arch" --batch "$batch" --steps "$steps" --warmup "$warm" --threads "$THREADS" 2>>"$OUT/log") ;;
        timm) line=$("$VENV/bin/python" tools/bench/timm_step.py --arch "$arch" --batch "$batch" --steps "$steps" --warmup "$warm" --threads "$THREADS" 2>>"$OUT/log") ;;
      esac
      while IFS= read -r l; do
        [ -n "$l" ] && echo "{\"round\": $r, \"build\": \"$impl\", \"load\": $load, \"result\": $l}" >>"$RES"
      done <<<"$line"
      echo "round $r $arch $impl: $(echo "$line" | tr '\n' ' ' | cut -c1-200)" >&2
    done
  done
done
# arch|proxy images|batch
WCASES=("configs/models/vit_fmnist.json|1024|64" "deit_tiny|64|32")
[ "$ONLY" = step ] && WCASES=()
: >"$OUT/wpac.jsonl"
for ((r = 1; r <= ROUNDS; r++)); do
  for c in "${WCASES[@]+"${WCASES[@]}"}"; do
    IFS='|' read -r arch n batch <<<"$c"
    runs=(skd2 skd1 torch)
    ((r % 2 == 0)) && runs=(torch skd1 skd2)
    for impl in "${runs[@]}"; do
      case $impl in
        skd2) line=$("$T2" --arch "$arch" --mode none --wpac "$n" --batch "$batch" --threads "$THREADS" 2>>"$OUT/log") ;;
        skd1) line=$("$T1" --arch "$arch" --mode none --wpac "$n" --batch "$batch" --threads "$THREADS" 2>>"$OUT/log") ;;
        torch) line=$("$VENV/bin/python" tools/bench/wpac_stats_torch.py --arch "$arch" --samples "$n" --batch "$batch" --threads "$THREADS" 2>>"$OUT/log") ;;
      esac
      echo "{\"round\": $r, \"build\": \"$impl\", \"result\": $line}" >>"$OUT/wpac.jsonl"
      echo "round $r WPAC $arch $impl: $(echo "$line" | cut -c1-160)" >&2
    done
  done
done
"$VENV/bin/python" - "$RES" "$THREADS" "$OUT/wpac.jsonl" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys, platform
rows = [json.loads(l) for l in open(sys.argv[1])]
rounds = max([r["round"] for r in rows], default=0)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
archs = sorted({r["result"]["arch"] for r in rows})
print(f"\nCPU: {cpu}, {sys.argv[2]} threads, OMP_WAIT_POLICY=PASSIVE\n")
if rows: print(f"Training steps, images/s, median of {rounds} rounds\n")
if rows: print("| model | batch | timm step (torch 2.11) | skd plain, 2.11 wheel | skd plain, Debian 1.13 | skd PIAD, 2.11 | skd PIAD, 1.13 | skd plain / timm (2.11) |")
if rows: print("|---|---:|---:|---:|---:|---:|---:|---:|")
for a in archs:
    def med(build, mode):
        v = [r["result"]["images_per_s"] for r in rows if r["build"] == build and r["result"]["arch"] == a and r["result"]["mode"] == mode]
        return statistics.median(v) if v else float("nan")
    def ratios():
        out = []
        for rnd in {r["round"] for r in rows}:
            s = [r["result"]["images_per_s"] for r in rows if r["round"] == rnd and r["build"] == "skd2" and r["result"]["arch"] == a and r["result"]["mode"] == "train"]
            t = [r["result"]["images_per_s"] for r in rows if r["round"] == rnd and r["build"] == "timm" and r["result"]["arch"] == a]
            if s and t: out.append(s[0] / t[0])
        return out
    b = next(r["result"]["batch"] for r in rows if r["result"]["arch"] == a)
    rs = ratios()
    print(f"| {a} | {b} | {med('timm','train'):.1f} | {med('skd2','train'):.1f} | {med('skd1','train'):.1f} | "
          f"{med('skd2','piad'):.1f} | {med('skd1','piad'):.1f} | {statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f}) |")
w = [json.loads(l) for l in open(sys.argv[3])]
if w: print("\nWPAC statistics pass (seconds, median): skd = the report's statistics time, PyTorch = wpac_stats_torch.py\n")
if w: print("| model | proxy images | batch | PyTorch (2.11) | skd, 2.11 wheel | skd, Debian 1.13 | PyTorch / skd 2.11 |")
if w: print("|---|---:|---:|---:|---:|---:|---:|")
for a in sorted({r["result"]["arch"] for r in w}):
    def sec(build):
        v = [(r["result"]["report_seconds"]["statistics"] if r["build"] != "torch" else r["result"]["seconds"])
             for r in w if r["build"] == build and r["result"]["arch"] == a]
        return statistics.median(v) if v else float("nan")
    one = next(r["result"] for r in w if r["result"]["arch"] == a)
    print(f"| {a} | {one['proxy_images']} | {one['batch']} | {sec('torch'):.2f} | {sec('skd2'):.2f} | {sec('skd1'):.2f} | "
          f"{sec('torch') / sec('skd2'):.2f}x |")
PY
echo "(all results: $RES)" >&2
