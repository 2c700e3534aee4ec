#!/usr/bin/env python3
"""Markdown tables of tools/bench/runtime_bench.sh's rows.jsonl: per budget, top-1 (LibTorch,
onnxruntime fp32, int8) and median latency per runtime, thread count and batch size; the latency
table against fresh timings; the issue-26 goals checked against the numbers.
Usage: runtime_table.py ROWS.jsonl [--points PREFIX THREADS BATCH]
  --points: also writes PREFIX.onnxruntime.dat and PREFIX.openvino.dat, "code median_ms" of the int8
  sub-networks at THREADS threads and batch BATCH (points for tools/experiments/plot_latency.py)"""
import argparse
import json

ap = argparse.ArgumentParser()
ap.add_argument("rows")
ap.add_argument("--points", nargs=3, metavar=("PREFIX", "THREADS", "BATCH"))
args = ap.parse_args()
rows = [json.loads(line) for line in open(args.rows) if line.strip()]
acc = {(r["budget"], r["variant"]): r for r in rows if r["kind"] == "accuracy"}
lat = {}
for r in rows:
    if r["kind"] == "latency":
        for x in r["latency"]:
            lat[(r["budget"], r["variant"], r["threads"], x["batch_size"])] = x["median_ms"]
budgets = sorted({b for b, _ in acc})
variants = ["libtorch", "onnxruntime", "openvino", "onnxruntime-int8", "openvino-int8"]
names = {"libtorch": "LibTorch eager", "onnxruntime": "onnxruntime", "openvino": "OpenVINO",
         "onnxruntime-int8": "int8 (onnxruntime)", "openvino-int8": "int8 (OpenVINO)"}
versions = {r["variant"]: f'{r["runtime"]} {r["runtime_version"]}' for r in rows if r["kind"] == "latency"}
print("Runtimes: " + ", ".join(sorted(set(versions.values()))) + "\n")
print("| budget | MACs (paper) | top-1 LibTorch | top-1 onnxruntime fp32 | top-1 int8 (onnxruntime) | top-1 int8 (OpenVINO) |")
print("|---|---|---|---|---|---|")
for b in budgets:
    lt = acc[(b, "libtorch")]
    cells = [f'{acc[(b, v)]["top1"]:.2f}' if (b, v) in acc else "–"
             for v in ("libtorch", "onnxruntime", "onnxruntime-int8", "openvino-int8")]
    print(f"| {b}/12 | {lt['macs_paper'] / 1e6:.2f} M | " + " | ".join(cells) + " |")
threads = sorted({k[2] for k in lat})
batches = sorted({k[3] for k in lat})
for t in threads:
    for bs in batches:
        print(f"\nMedian latency, {t} thread(s), batch {bs} (ms):\n")
        print("| budget | " + " | ".join(names[v] for v in variants) + " |")
        print("|---|" + "---|" * len(variants))
        for b in budgets:
            cells = [f"{lat[(b, v, t, bs)]:.3f}" if (b, v, t, bs) in lat else "–" for v in variants]
            print(f"| {b}/12 | " + " | ".join(cells) + " |")
tv = [r for r in rows if r["kind"] == "table_vs_fresh"]
if tv:
    print("\nonnxruntime latency table vs a fresh timing of the sub-network it selects (median ms):\n")
    print("| batch | budget | code | table | fresh | fresh / table |")
    print("|---|---|---|---|---|---|")
    for r in tv:
        fresh = r["latency"][0]["median_ms"]
        print(f'| {r["batch"]} | {r["budget_text"]} | {r["code"]} | {r["table_median_ms"]:.3f} | {fresh:.3f} | '
              f'{fresh / r["table_median_ms"]:.3f} |')
print("\nGoals:")
worst = max((abs(acc[(b, "onnxruntime")]["top1"] - acc[(b, "onnxruntime-int8")]["top1"]), b)
            for b in budgets if (b, "onnxruntime-int8") in acc)
print(f"- int8 top-1 within 1.0 point of fp32 at every budget: largest gap {worst[0]:.2f} points (budget {worst[1]}/12)"
      f" -> {'met' if worst[0] <= 1.0 else 'NOT met'}")
full = max(budgets)
for t in threads:
    key8, key32 = (full, "onnxruntime-int8", t, max(batches)), (full, "onnxruntime", t, max(batches))
    if key8 in lat and key32 in lat:
        ratio = lat[key8] / lat[key32]
        print(f"- int8 / fp32 onnxruntime at {full}/12, batch {max(batches)}, {t} thread(s): {ratio:.2f}"
              f" -> {'met' if ratio <= 0.7 else 'NOT met'} (goal <= 0.7)")
if tv:
    dev = max(abs(r["latency"][0]["median_ms"] / r["table_median_ms"] - 1) for r in tv)
    print(f"- table vs fresh timing: largest difference {100 * dev:.1f} % -> {'met' if dev <= 0.10 else 'NOT met'}"
          " (goal within 10 %)")
if args.points:
    prefix, t, bs = args.points[0], int(args.points[1]), int(args.points[2])
    for rt in ("onnxruntime", "openvino"):
        with open(f"{prefix}.{rt}.dat", "w") as f:
            for r in rows:
                if r["kind"] == "latency" and r["variant"] == f"{rt}-int8" and r["threads"] == t:
                    for x in r["latency"]:
                        if x["batch_size"] == bs:
                            f.write(f'{r["code"]} {x["median_ms"]}\n')
