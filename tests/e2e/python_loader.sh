#!/usr/bin/env bash
# End-to-end: the Python loader (python/skd_loader) on artifacts written by the built apps. The
# embedded model, an extracted ViT sub-network with removed branches, a Swin fixture model and a
# Swin sub-network, a super-network sliced in Python by op code: logits, features and
# forward_features within 1e-5 of skd-eval --save-outputs (python/tests/test_loader.py).
# Runs under Debian's torch 1.13 (/usr/bin/python3, python3-torch) and, when it exists, under the
# cached torch 2.x environment of scripts/setup_venv.sh (SKD_VENV_PYTHON overrides its path).
# Env (set by ctest): SKD_BIN (apps folder), SKD_SOURCE_DIR, SKD_FIXTURES.
set -uo pipefail
source "$(dirname "$0")/common.bash"
: "${SKD_FIXTURES:?}"
export SKD_LOADER_WORK="$W/loader"
mkdir -p "$SKD_LOADER_WORK"
run_tests() {  # run_tests NAME PYTHON
  if (cd "$SRC/python" && "$2" -m unittest discover -s tests -v) >"$W/py.log" 2>&1; then
    ok "$1 ($(grep -E '^Ran ' "$W/py.log"))"
  else
    bad "$1"; sed 's/^/  | /' "$W/py.log" | tail -40
  fi
  grep -q "skipped" "$W/py.log" && grep -E "skipped" "$W/py.log" | sed 's/^/  note: /'
}
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  run_tests "skd_loader under $(/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)')" /usr/bin/python3
else
  bad "/usr/bin/python3 has no torch (install python3-torch: scripts/setup.sh)"
fi
VENV_PY="${SKD_VENV_PYTHON:-}"
if [ -z "$VENV_PY" ]; then
  for p in "${XDG_CACHE_HOME:-$HOME/.cache}"/skd/venv-*/bin/python; do [ -x "$p" ] && [ -f "${p%/bin/python}/.skd-complete" ] && VENV_PY=$p; done
fi
if [ -n "$VENV_PY" ] && "$VENV_PY" -c 'import torch' 2>/dev/null; then
  run_tests "skd_loader under $("$VENV_PY" -c 'import torch; print("torch", torch.__version__)')" "$VENV_PY"
else
  echo "note: no torch 2.x environment (scripts/setup_venv.sh); tested under torch 1.13 only"
fi
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
