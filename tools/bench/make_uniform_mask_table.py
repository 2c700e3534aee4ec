#!/usr/bin/python3
"""Writes a mask_table.json (official schema) that shrinks every block of a DeiT-shaped model in equal
steps: code k keeps the fraction f = 1 - k (1 - min) / K of every head's dims (in units of 8) and of
every MLP (in units of hidden/32). For benchmarks of extraction and latency on models with random
weights, where a PIAD table would only reflect noise; a trained super-network's table comes from
skd-train --mode piad."""
import argparse
import json

DIMS = {"deit_tiny": (192, 3), "deit_small": (384, 6), "deit_base": (768, 12)}

p = argparse.ArgumentParser()
p.add_argument("--arch", choices=sorted(DIMS), required=True)
p.add_argument("--out", required=True)
p.add_argument("--codes", type=int, default=12, help="K, the last code")
p.add_argument("--min", type=float, default=0.25, help="width fraction at code K")
a = p.parse_args()
C, heads = DIMS[a.arch]
head_dim, hidden, depth = C // heads, 4 * C, 12
unit = hidden // 32


def cut(full, step, f):
    return max(step, int(full * f / step) * step)


table = {}
for b in range(depth):
    for part, full, step in (("attn", head_dim, 8), ("mlp", hidden, unit)):
        widths = [cut(full, step, 1 - k * (1 - a.min) / a.codes) for k in range(a.codes + 1)]
        entry = {"0": widths[0], "-1": widths[-1]}
        entry.update({str(k): widths[k] for k in range(1, a.codes + 1)})
        table[f"{b}.{part}"] = entry
with open(a.out, "w") as f:
    json.dump(table, f, indent=1)
