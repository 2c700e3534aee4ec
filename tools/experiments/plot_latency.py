#!/usr/bin/python3
"""Latency and MACs against the op code (PNG, gnuplot) from a latency table written by
skd-eval --latency-table: where the two curves part, MACs misjudge the speed of a sub-network.

Usage: tools/experiments/plot_latency.py TABLE.latency.json OUT.png [--batch B] [--title TEXT]
Both curves are relative to code 0 (= 1.0), so they share one axis; the latency curve carries its
p10-p90 band, and the key gives code 0's absolute median (ms). Writes OUT.dat and OUT.gp next to the PNG (the plotted
numbers and the gnuplot script) and runs gnuplot (Debian: gnuplot-nox)."""
import argparse
import json
import os
import shutil
import subprocess
import sys

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("table")
p.add_argument("out")
p.add_argument("--batch", type=int, default=None, help="batch size column (default: the table's first)")
p.add_argument("--title", default=None)
a = p.parse_args()
if not shutil.which("gnuplot"):
    sys.exit("plot_latency.py: gnuplot not found (apt-get install gnuplot-nox)")
t = json.load(open(a.table))
if t.get("format") != "skd-latency-table":
    sys.exit(f"plot_latency.py: {a.table} is not a latency table (skd-eval --latency-table)")
batch = a.batch if a.batch is not None else t["batch_sizes"][0]
if batch not in t["batch_sizes"]:
    sys.exit(f"plot_latency.py: {a.table} has batch sizes {t['batch_sizes']}, not {batch}")
col = t["batch_sizes"].index(batch)
codes = t["codes"]
m0, l0 = codes[0]["macs_paper"], codes[0]["latency"][col]["median_ms"]
base = os.path.splitext(a.out)[0]
with open(base + ".dat", "w") as f:
    f.write("# code macs_rel latency_rel p10_rel p90_rel median_ms p10_ms p90_ms macs_paper\n")
    for c in codes:
        lat = c["latency"][col]
        f.write(f"{c['code']} {c['macs_paper'] / m0:.5f} {lat['median_ms'] / l0:.5f} {lat['p10_ms'] / l0:.5f} "
                f"{lat['p90_ms'] / l0:.5f} {lat['median_ms']:.5f} {lat['p10_ms']:.5f} {lat['p90_ms']:.5f} "
                f"{c['macs_paper']}\n")
title = a.title or (f"{os.path.basename(t['model'])}: batch {batch}, {t['device']}, {t['threads']} threads, "
                    f"amp {t['amp']}")
with open(base + ".gp", "w") as f:
    f.write(f"""set terminal pngcairo size 1000,650 noenhanced font ",11"
set output "{a.out}"
set title "{title}"
set xlabel "op code (0 = full super-network)"
set ylabel "relative to code 0"
set yrange [0:*]
set key top right
set grid
plot "{base}.dat" using 1:2 with linespoints lw 2 pt 5 title "MACs (paper convention; code 0 = {m0 / 1e9:.2f} G)", \\
     "{base}.dat" using 1:3:4:5 with yerrorlines lw 2 pt 7 title "median latency, p10-p90 bars (code 0 = {l0:.1f} ms)"
""")
subprocess.run(["gnuplot", base + ".gp"], check=True)
print(f"wrote {a.out}")
