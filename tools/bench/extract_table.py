#!/usr/bin/python3
"""Reads extract_bench.sh's rows (name n wall extract.txt latency.json per line) from stdin, prints a
Markdown table per super-network (latency and MACs as ratios to 12:12) and writes the rows as JSON to
argv[1] when given."""
import json
import re
import sys

TIME = re.compile(r"read \+ sha256 ([\d.]+) s, select \+ slice ([\d.]+) s, write ([\d.]+) s")
rows = []
for line in sys.stdin:
    if not line.strip():
        continue
    name, n, wall, ext, lat = line.split()
    text = open(ext).read()
    t = dict(zip(["read", "slice", "write"], map(float, TIME.search(text).groups())))
    j = json.load(open(lat))
    rows.append({"supernet": name, "fraction": int(n), "op_code": int(re.search(r"op code (\d+)", text).group(1)),
                 "macs_paper": j["macs_paper"], "params": j["params"], "threads": j["threads"],
                 "device": j["device"], "extract_wall_s": float(wall), "extract_s": t,
                 "latency_ms": {str(r["batch_size"]): r["median_ms"] for r in j["latency"]}})
for name in dict.fromkeys(r["supernet"] for r in rows):
    rs = [r for r in rows if r["supernet"] == name]
    full = next(r for r in rs if r["fraction"] == 12)
    batches = sorted(full["latency_ms"], key=int)
    print(f"\n{name} ({full['device']}, {full['threads']} threads)\n")
    print("| budget | op code | MACs (paper) | MACs ratio | "
          + " | ".join(f"batch {b}: ms | ratio" for b in batches)
          + " | extract: read+sha256 / slice / write (s) | command wall (s) |")
    print("|---|---:|---:|---:|" + "---:|---:|" * len(batches) + "---|---:|")
    for r in rs:
        cells = []
        for b in batches:
            ms = r["latency_ms"].get(b)
            cells += [f"{ms:.2f}", f"{ms / full['latency_ms'][b]:.2f}"] if ms is not None else ["-", "-"]
        e = r["extract_s"]
        print(f"| {r['fraction']}:12 | {r['op_code']} | {r['macs_paper'] / 1e9:.4f} G | "
              f"{r['macs_paper'] / full['macs_paper']:.2f} | " + " | ".join(cells)
              + f" | {e['read']:.3f} / {e['slice']:.3f} / {e['write']:.3f} | {r['extract_wall_s']:.2f} |")
if len(sys.argv) > 1 and sys.argv[1]:
    json.dump(rows, open(sys.argv[1], "w"), indent=1)
