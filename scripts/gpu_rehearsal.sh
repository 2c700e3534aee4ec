#!/usr/bin/env bash
# CI's rehearsal of the GPU check (scripts/gpu_check.sh) as it runs on the GPU machine, minus the GPU:
# from the prebuilt folder (scripts/gpu_prebuilt.sh), with the project's Python environment as the
# machine's python3, in a mount namespace where Debian's -dev headers, CMake package files and
# LibTorch 1.13 are not visible (the GPU image has none of them). Three runs:
#   1. the quick check on the CPU: every stage passes, the three result files come back;
#   2. a stage that hangs (a python3 whose timm step never answers) under a short budget: the stage is
#      killed at its timeout, the rest is skipped, and the summary still comes back;
#   3. the whole check killed with SIGTERM midway: the exit trap still writes the summary.
# Prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$(bash scripts/setup_venv.sh) || exit 1
bash scripts/gpu_prebuilt.sh || { echo "gpu_rehearsal: the prebuilt folder could not be made"; echo "0 passed, 1 failed"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# A python3 that hangs in timm's step benchmark and is the project's Python otherwise (run 2).
cat >"$W/hanging_python" <<PYEOF
#!/usr/bin/env bash
case "\$*" in *timm_step.py*) exec sleep 100000 ;; esac
exec "$VENV/bin/python" "\$@"
PYEOF
chmod +x "$W/hanging_python"

# The namespace: Debian's headers, package files and LibTorch 1.13 hidden, then the three runs.
ML=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
unshare --mount --propagation private bash -s "$ROOT" "$VENV" "$W" "$ML" <<'INNER'
set -uo pipefail
ROOT=$1 VENV=$2 W=$3 ML=$4
cd "$ROOT"
for d in /usr/include /usr/local/include "/usr/lib/$ML/cmake" /usr/share/cmake; do
  [ -d "$d" ] && mount -t tmpfs -o ro,size=4k skd-hidden "$d"
done
for f in /usr/lib/"$ML"/libtorch*.so* /usr/lib/"$ML"/libc10*.so* /usr/lib/"$ML"/libcaffe2*.so*; do
  [ -e "$f" ] && mount --bind /dev/null "$f"
done
pass=0 fails=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
has() { if grep -q -- "$3" "$2" 2>/dev/null; then ok "$1"; else bad "$1: '$3' not in $2"; sed 's/^/  | /' "$2" 2>/dev/null | tail -25; fi; }
if [ -e /usr/include/torch ] || [ -e /usr/include/nlohmann ]; then bad "Debian's headers still visible"; else ok "Debian's headers hidden"; fi
export SKD_GPU_CHECK_QUICK=1 SKD_GPU_CHECK_DEVICE=cpu PY="$VENV/bin/python" SKD_JOBS=2

# 1. the quick check, every stage
start=$(date +%s)
OUT="$W/run1" SKD_GPU_CHECK_BUDGET=400 bash scripts/gpu_check.sh >"$W/run1.log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
if [ "$rc" -eq 0 ]; then ok "quick check passes on the CPU from the prebuilt folder ($secs s)"
else bad "quick check: exit $rc"; tail -40 "$W/run1.log" | sed 's/^/  | /'; fi
n=$(ls "$W/run1" | wc -l)
if [ "$n" -le 4 ] && [ -f "$W/run1/summary.md" ] && [ -f "$W/run1/gpu_check.jsonl" ] && [ -f "$W/run1/logs.tar.gz" ]; then
  ok "$n files in OUT: summary.md, gpu_check.jsonl, logs.tar.gz"
else bad "OUT holds: $(ls "$W/run1" | tr '\n' ' ')"; fi
has "binaries came from the prebuilt folder" "$W/run1/summary.md" "binaries: prebuilt"
has "the skd PIAD step is measured" "$W/run1/summary.md" "| skd | piad |"
has "the loader's cost is shown apart from the step" "$W/run1/gpu_check.jsonl" '"loader_ms_per_batch"'
has "timm's step is measured" "$W/run1/summary.md" "| timm | train |"
has "WPAC is timed" "$W/run1/summary.md" "WPAC "
has "latency per op code" "$W/run1/summary.md" "| skd | configs/models/vit_fmnist.json | 6 |"
tar -tzf "$W/run1/logs.tar.gz" | grep -q preflight && ok "the logs are packed" || bad "logs.tar.gz lacks the preflight"

# 2. a stage that hangs: killed at its timeout, the others skipped, the summary still written
start=$(date +%s)
OUT="$W/run2" PY="$W/hanging_python" SKD_GPU_CHECK_BUDGET=45 bash scripts/gpu_check.sh >"$W/run2.log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ] && [ "$secs" -le 60 ]; then ok "a hanging stage: the check ends within its budget (exit $rc, $secs s)"
else bad "a hanging stage: exit $rc after $secs s"; fi
has "the hanging stage is reported as timed out" "$W/run2/summary.md" "TIMED OUT"
has "what did not fit is reported as skipped" "$W/run2/summary.md" "SKIPPED: budget spent"
has "the stages before it still report" "$W/run2/summary.md" "| CUDA tests | ok |"

# 3. killed from outside: the exit trap writes the summary
OUT="$W/run3" SKD_GPU_CHECK_BUDGET=400 bash scripts/gpu_check.sh >"$W/run3.log" 2>&1 &
pid=$!
for _ in $(seq 1 60); do grep -q "CUDA tests" "$W/run3.log" 2>/dev/null && break; sleep 1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
if [ "$rc" -ne 0 ]; then ok "SIGTERM ends the check (exit $rc)"; else bad "SIGTERM: exit 0"; fi
has "after SIGTERM the summary says it was interrupted" "$W/run3/summary.md" "interrupted"
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
INNER
