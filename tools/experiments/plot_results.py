#!/usr/bin/python3
"""Accuracy-vs-MACs plot (PNG, gnuplot) from results.json files written by tools/experiments/piad_results.sh.

Usage: tools/experiments/plot_results.py OUT.png TITLE FILE:COLUMN:LABEL [FILE:COLUMN:LABEL ...]
COLUMN is one of the file's result columns: piad, baseline, start or original. Writes OUT.dat and OUT.gp next
to the PNG (the plotted numbers and the gnuplot script) and runs gnuplot (Debian: gnuplot-nox)."""
import json
import os
import shutil
import subprocess
import sys

if len(sys.argv) < 4:
    sys.exit(__doc__)
out, title, curves = sys.argv[1], sys.argv[2], sys.argv[3:]
if not shutil.which("gnuplot"):
    sys.exit("plot_results.py: gnuplot not found (apt-get install gnuplot-nox)")
base = os.path.splitext(out)[0]
blocks, plots = [], []
images = 10000
for i, spec in enumerate(curves):
    path, column, label = spec.split(":", 2)
    rows = json.load(open(path))["rows"]
    images = rows[0].get("images", images)
    if column not in rows[0]:
        sys.exit(f"plot_results.py: {path} has no column '{column}' (has: {', '.join(k for k in rows[0])})")
    blocks.append(f"# {label}\n" + "\n".join(f"{r['macs_paper'] / 1e6:.4f} {r[column]:.2f}" for r in rows))
    dash = {"piad": 1, "baseline": 2, "start": 3}.get(column, 4)
    plots.append(f'"{base}.dat" index {i} using 1:2 with linespoints lw 2 dt {dash} pt {5 + 2 * i} title "{label}"')
with open(base + ".dat", "w") as f:
    f.write("\n\n\n".join(blocks) + "\n")
with open(base + ".gp", "w") as f:
    f.write(f"""set terminal pngcairo size 1000,650 noenhanced font ",11"
set output "{out}"
set title "{title}"
set xlabel "MACs (paper convention, millions)"
set ylabel "top-1 on {images} Fashion-MNIST test images (%)"
set key bottom right
set grid
plot {", ".join(plots)}
""")
subprocess.run(["gnuplot", base + ".gp"], check=True)
print(f"wrote {out}")
