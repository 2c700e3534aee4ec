#!/usr/bin/env bash
# The structural measures of issue 15, for any checkout: lines of each app (file and main()), the
# longest functions outside src/io/, includes of skd/train/ from the algorithm areas, "--flag" string
# literals in src/. Function lengths come from lizard (a C/C++ function-length analyser), installed
# once into a small cached virtual environment (~/.cache/skd/tools-venv).
# Usage: tools/dev/architecture_measures.sh [checkout (default: this one)]
set -euo pipefail
ROOT="$(cd "${1:-$(dirname "$0")/../..}" && pwd)"
VENV="${SKD_TOOLS_VENV:-$HOME/.cache/skd/tools-venv}"
if [ ! -x "$VENV/bin/lizard" ]; then
  python3 -m venv "$VENV" >/dev/null
  "$VENV/bin/pip" install -q 'lizard==1.24.3' >&2
fi
cd "$ROOT"
echo "== apps: file lines, lines of main() (lambdas inside main count)"
"$VENV/bin/lizard" -l cpp apps --csv 2>/dev/null | python3 -c '
import csv, sys, subprocess
rows = [r for r in csv.reader(sys.stdin) if r[7] == "main"]
for r in sorted(rows, key=lambda r: r[6]):
    lines = sum(1 for _ in open(r[6]))
    print(f"  {r[6]:28s} file {lines:4d}  main {r[4]:>4s}")'
echo "== longest functions outside src/io/ (lines, name, file)"
"$VENV/bin/lizard" -l cpp src apps include --csv 2>/dev/null | python3 -c '
import csv, sys
rows = [r for r in csv.reader(sys.stdin) if not r[6].startswith("src/io/")]
rows.sort(key=lambda r: -int(r[4]))
for r in rows[:8]:
    print(f"  {int(r[4]):4d}  {r[7]}  {r[6]}")
print(f"  functions over 120 lines: {sum(1 for r in rows if int(r[4]) > 120)}")'
areas=""
for a in importance wpac piad extract; do [ -d "include/skd/$a" ] && areas="$areas include/skd/$a"; [ -d "src/$a" ] && areas="$areas src/$a"; done
echo "== #include \"skd/train/ in importance/wpac/piad/extract: $( (grep -rn '#include "skd/train/' $areas || true) | wc -l)"
echo "== \"--flag\" string literals in src/: $( (grep -rnoE '"[^"]*--[a-z][a-z0-9-]*' src || true) | wc -l) in $( (grep -rlE '"[^"]*--[a-z][a-z0-9-]*' src || true) | wc -l) file(s)"
echo "== comments citing 'reference §': $( (grep -rn 'reference §' src include apps || true) | wc -l)"
