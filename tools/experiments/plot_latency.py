#!/usr/bin/python3
"""Latency and MACs against the op code (PNG, gnuplot) from latency tables written by
skd-eval --latency-table: where the curves part, MACs misjudge the speed of a sub-network in that
runtime.

Usage: tools/experiments/plot_latency.py TABLE.json [TABLE.json ...] OUT.png [--batch B] [--title TEXT]
         [--points FILE LABEL]
One table: latency and MACs relative to code 0 (= 1.0) on one axis, the latency with its p10-p90 band.
Several tables (e.g. one per runtime, skd-eval --latency-table --runtime ...): each table's median
latency in ms (log scale) with its p10-p90 band, labelled by its runtime and version, and the MACs on
the right axis. --points adds measured points from a file of "code median_ms" lines (e.g. the int8
sub-networks of tools/bench/runtime_bench.sh). Writes OUT.dat (one per table: OUT.N.dat) and OUT.gp
next to the PNG and runs gnuplot (Debian: gnuplot-nox)."""
import argparse
import json
import os
import shutil
import subprocess
import sys

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("files", nargs="+", help="latency tables, then the output PNG")
p.add_argument("--batch", type=int, default=None, help="batch size column (default: the first table's first)")
p.add_argument("--title", default=None)
p.add_argument("--points", nargs=2, action="append", default=[], metavar=("FILE", "LABEL"))
a = p.parse_args()
if len(a.files) < 2:
    sys.exit("plot_latency.py: give at least one table and the output PNG")
tables, out = a.files[:-1], a.files[-1]
if not shutil.which("gnuplot"):
    sys.exit("plot_latency.py: gnuplot not found (apt-get install gnuplot-nox)")
loaded = []
for path in tables:
    t = json.load(open(path))
    if t.get("format") != "skd-latency-table":
        sys.exit(f"plot_latency.py: {path} is not a latency table (skd-eval --latency-table)")
    loaded.append(t)
batch = a.batch if a.batch is not None else loaded[0]["batch_sizes"][0]
for path, t in zip(tables, loaded):
    if batch not in t["batch_sizes"]:
        sys.exit(f"plot_latency.py: {path} has batch sizes {t['batch_sizes']}, not {batch}")
base = os.path.splitext(out)[0]
single = len(loaded) == 1 and not a.points
dats = []
for i, t in enumerate(loaded):
    col = t["batch_sizes"].index(batch)
    codes = t["codes"]
    m0, l0 = codes[0]["macs_paper"], codes[0]["latency"][col]["median_ms"]
    dat = base + (".dat" if single else f".{i}.dat")
    with open(dat, "w") as f:
        f.write("# code macs_rel latency_rel p10_rel p90_rel median_ms p10_ms p90_ms macs_paper\n")
        for c in codes:
            lat = c["latency"][col]
            f.write(f"{c['code']} {c['macs_paper'] / m0:.5f} {lat['median_ms'] / l0:.5f} {lat['p10_ms'] / l0:.5f} "
                    f"{lat['p90_ms'] / l0:.5f} {lat['median_ms']:.5f} {lat['p10_ms']:.5f} {lat['p90_ms']:.5f} "
                    f"{c['macs_paper']}\n")
    dats.append((dat, t, m0, l0))
t0 = loaded[0]
name = lambda t: f"{t.get('runtime', 'libtorch')} {t.get('runtime_version') or t.get('torch_version', '')}".strip()
if single:
    dat, t, m0, l0 = dats[0]
    title = a.title or (f"{os.path.basename(t['model'])}: batch {batch}, {name(t)} on {t['device']}, "
                        f"{t['threads']} threads, amp {t['amp']}")
    plot = f"""set ylabel "relative to code 0"
set yrange [0:*]
plot "{dat}" using 1:2 with linespoints lw 2 pt 5 title "MACs (paper convention; code 0 = {m0 / 1e9:.2f} G)", \\
     "{dat}" using 1:3:4:5 with yerrorlines lw 2 pt 7 title "median latency, p10-p90 bars (code 0 = {l0:.1f} ms)"
"""
else:
    title = a.title or f"{os.path.basename(t0['model'])}: batch {batch}, {t0['threads']} threads"
    lines = [f'"{dat}" using 1:6:7:8 with yerrorlines lw 2 pt 7 ps 0.5 title "{name(t)} (median, p10-p90)"'
             for dat, t, _, _ in dats]
    lines += [f'"{f}" using 1:2 with points pt 9 ps 1.5 title "{label}"' for f, label in a.points]
    lines.append(f'"{dats[0][0]}" using 1:($9/1e6) axes x1y2 with lines lw 2 dt 2 lc rgb "gray40" '
                 f'title "MACs (paper convention, right axis, M)"')
    plot = """set ylabel "median latency (ms)"
set logscale y
set y2label "MACs (M)"
set y2range [0:*]
set ytics nomirror
set y2tics
plot """ + ", \\\n     ".join(lines) + "\n"
with open(base + ".gp", "w") as f:
    f.write(f"""set terminal pngcairo size 1000,650 noenhanced font ",11"
set output "{out}"
set title "{title}"
set xlabel "op code (0 = full super-network)"
set key top right
set grid
""" + plot)
subprocess.run(["gnuplot", base + ".gp"], check=True)
print(f"wrote {out}")
