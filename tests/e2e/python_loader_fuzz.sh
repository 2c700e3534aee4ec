#!/usr/bin/env bash
# End-to-end: the Python loader under hostile input (issue 25). python/tests/fuzz_loader.py mutates
# small valid artifacts thousands of times (seeded: SKD_FUZZ_SEED) and checks that skd_loader loads
# each mutant or raises only its own errors (no other exception, no hang, no allocation beyond what
# the file bounds), and that for a sample of the mutants the C++ reader (skd-eval --model FILE
# --summary) gives the same verdict. Runs once, under the torch 2.x environment of
# scripts/setup_venv.sh when present, else Debian's /usr/bin/python3 (about 20-30 s).
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR. SKD_FUZZ_CASES / SKD_FUZZ_SECONDS /
# SKD_FUZZ_CROSS / SKD_FUZZ_KEEP: see fuzz_loader.py.
set -uo pipefail
source "$(dirname "$0")/common.bash"
PY=/usr/bin/python3
VENV_PY="${SKD_VENV_PYTHON:-}"
if [ -z "$VENV_PY" ]; then
  for p in "${XDG_CACHE_HOME:-$HOME/.cache}"/skd/venv-*/bin/python; do [ -x "$p" ] && [ -f "${p%/bin/python}/.skd-complete" ] && VENV_PY=$p; done
fi
[ -n "$VENV_PY" ] && "$VENV_PY" -c 'import torch' 2>/dev/null && PY=$VENV_PY
if ! "$PY" -c 'import torch' 2>/dev/null; then
  bad "no Python with torch (install python3-torch: scripts/setup.sh)"
else
  export SKD_FUZZ_KEEP="${SKD_FUZZ_KEEP:-$W/disagreements}"
  if (cd "$SRC/python" && "$PY" tests/fuzz_loader.py) >"$W/fuzz.log" 2>&1; then
    ok "skd_loader fuzz under $("$PY" -c 'import torch; print("torch", torch.__version__)')"
    grep -E "^(fuzz:|cross-check)" "$W/fuzz.log" | sed 's/^/  note: /'
  else
    bad "skd_loader fuzz"; sed 's/^/  | /' "$W/fuzz.log" | tail -60
  fi
fi
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
