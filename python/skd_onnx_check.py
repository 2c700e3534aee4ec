#!/usr/bin/env python3
"""Parity check of an exported ONNX model (skd-export --verify runs it; it can be run by hand).

Usage: skd_onnx_check.py MODEL.onnx DATA.safetensors [--threads N]

DATA holds pairs of float32 tensors "input.<name>" [B, C, H, W] and "expected.<name>" [B, classes]
(the C++ forward's logits). Every input is run through onnxruntime (CPU); one JSON line goes to
stdout: {"max_abs_diff" (null when not finite), "per_input": {name: diff}, "inputs": {name: shape}, "onnxruntime", "numpy"}.
Exit codes: 0 ran (the caller judges the diff), 3 onnxruntime or numpy cannot be imported,
1 any other failure (message on stderr). Only numpy and onnxruntime are needed: the safetensors file
is read here directly (8-byte header length, JSON header, raw little-endian data).
"""
import argparse
import json
import struct
import sys


def read_safetensors(path, np):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtypes = {"F32": "<f4", "U8": "u1"}  # U8: the pixels of a graph with its normalization inside
        if info["dtype"] not in dtypes:
            raise ValueError(f"{path}: tensor '{key}' has dtype {info['dtype']}, expected F32 or U8")
        begin, end = info["data_offsets"]
        out[key] = np.frombuffer(body[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def main(argv):
    parser = argparse.ArgumentParser(description="onnxruntime parity of an exported SKD model")
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        print(f"{sys.executable}: cannot import {e.name or 'onnxruntime'} ({e})", file=sys.stderr)
        return 3
    model, data, threads = args.model, args.data, args.threads
    tensors = read_safetensors(data, np)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    input_name = sess.get_inputs()[0].name
    per_input, shapes = {}, {}
    for key in sorted(tensors):
        if not key.startswith("input."):
            continue
        name = key[len("input."):]
        expected = tensors.get("expected." + name)
        if expected is None:
            raise ValueError(f"{data}: 'input.{name}' has no 'expected.{name}'")
        (got,) = sess.run(None, {input_name: tensors[key]})
        if got.shape != expected.shape:
            raise ValueError(f"input {name}: onnxruntime returned shape {list(got.shape)}, "
                             f"the C++ forward {list(expected.shape)}")
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        # null for a non-finite difference: JSON has no Infinity (the C++ side reads null as +inf)
        per_input[name] = float(diff.max()) if np.isfinite(diff).all() else None
        shapes[name] = list(tensors[key].shape)
    if not per_input:
        raise ValueError(f"{data}: no 'input.*' tensors")
    finite = [v for v in per_input.values() if v is not None]
    worst = None if len(finite) < len(per_input) else max(finite)
    print(json.dumps({"max_abs_diff": worst, "per_input": per_input, "inputs": shapes,
                      "onnxruntime": ort.__version__, "numpy": np.__version__}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # one line for the C++ side's error message
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
