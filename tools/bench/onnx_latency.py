#!/usr/bin/env python3
"""onnxruntime CPU forward latency of an exported model (skd-export), measured the way skd-eval
--latency measures the C++ forward: random input of the model's shape, `--warmup` untimed runs, then
`--repeats` timed runs; median and 10th/90th percentiles. One JSON line per batch size.
Usage: onnx_latency.py MODEL.onnx --batches 1,8 --threads 2 [--repeats 20] [--warmup 5]"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--batches", default="1")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--repeats", type=int, default=20)
p.add_argument("--warmup", type=int, default=5)
a = p.parse_args()
opts = ort.SessionOptions()
opts.intra_op_num_threads = a.threads
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0]
rng = np.random.default_rng(0)
for b in (int(x) for x in a.batches.split(",")):
    x = rng.standard_normal([b] + list(inp.shape[1:])).astype(np.float32)
    for _ in range(a.warmup):
        sess.run(None, {inp.name: x})
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        sess.run(None, {inp.name: x})
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * (len(times) - 1) + 0.5))]
    med = pick(0.5)  # the same rank rule as skd-eval --latency
    print(json.dumps({"batch": b, "median_ms": med, "p10_ms": pick(0.1), "p90_ms": pick(0.9),
                      "images_per_s": b / med * 1e3, "threads": a.threads, "onnxruntime": ort.__version__}))
