#!/usr/bin/env python3
"""Compares float32 tensors of two safetensors files (stdlib only): max abs difference per key
(tensors of other dtypes must be byte-identical).

Usage: compare_outputs.py A.safetensors B.safetensors KEY[,KEY...]|ALL [--atol 1e-5]
ALL compares every key of A (B must hold the same keys). Exit 0 when every key is within atol,
1 otherwise.
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = blob[base + b:base + e]
        if info["dtype"] != "F32":  # other dtypes (indices, ...) must be byte-identical
            out[key] = (info["shape"], raw)
            continue
        out[key] = (info["shape"], struct.unpack(f"<{len(raw) // 4}f", raw))
    return out


def main():
    args = sys.argv[1:]
    atol = 1e-5
    if "--atol" in args:
        i = args.index("--atol")
        atol = float(args[i + 1])
        del args[i:i + 2]
    a, b = read(args[0]), read(args[1])
    keys = sorted(a) if args[2] == "ALL" else args[2].split(",")
    ok = True
    if args[2] == "ALL" and sorted(a) != sorted(b):
        print(f"key sets differ: {sorted(set(a) ^ set(b))}")
        ok = False
        keys = [k for k in keys if k in b]
    worst = 0.0
    for k in keys:
        (sa, va), (sb, vb) = a[k], b[k]
        if sa != sb:
            print(f"{k}: shape {sa} vs {sb}")
            ok = False
            continue
        if isinstance(va, bytes) or isinstance(vb, bytes):
            diff = 0.0 if va == vb else float("inf")
        else:
            diff = max(abs(x - y) for x, y in zip(va, vb)) if va else 0.0
        worst = max(worst, diff)
        if args[2] != "ALL" or diff > atol:
            print(f"{k}: max abs diff {diff:.3g}")
        ok = ok and diff <= atol
    if args[2] == "ALL":
        print(f"{len(keys)} tensors, max abs diff {worst:.3g}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
