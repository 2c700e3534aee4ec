#!/usr/bin/env python3
"""The deployment-runtime worker of the SKD toolkit (skd-eval --runtime, skd-export --int8 run it; the
C++ side, src/deploy/runtime.cpp, embeds this file, writes it into a temporary folder and talks to it
over stdin/stdout).

Usage: skd_runtime.py --runtime onnxruntime|openvino [--threads N]

On start it prints one JSON line: {"ok": true, "runtime", "version", "python"}; exit 3 (message on
stderr) when the runtime or numpy cannot be imported. Then it answers requests, one JSON line each,
optionally followed by "bytes" raw bytes; every answer is one JSON line {"ok": true, ...} (followed by
"bytes" raw bytes when it says so) or {"ok": false, "error": "..."}:
  load     {"path"}                      -> {"input": {name, shape, type}, "output": {...}, "metadata"}
  run      {"shape": [B,C,H,W], "bytes"} -> {"shape": [B,K], "bytes"}  (float32 little-endian, C order)
  time     {"batch", "warmup", "repeats"} -> {"median_ms", "p10_ms", "p90_ms", "images_per_s"}
  quantize {"model", "out", "calibration", "shape", "per_channel", "reduce_range", "method", "batch",
            "fixed_batch", "metadata"} -> {"nodes": {op type: count}, "onnx", "float_matmuls"}
           (onnxruntime only; calibration: raw float32 [N, C, H, W], fed in batches of "batch", the
           last one padded for a fixed-batch graph)
  quit
Dynamic dimensions are -1 in shapes. Timing is the runtime's own call on a fixed random input (numpy
seed 0): untimed runs until both `warmup` runs and `warmup_s` seconds are done (and, before the
process's first timing, `settle_s` seconds: a CPU that was idle runs slower for a while), then
`repeats` timed ones; percentiles by the rank rule of skd-eval --latency (index round(q * (n - 1))).
"""
import argparse
import json
import sys
import time


def fail_import(e, name):
    print(f"{sys.executable}: cannot import {e.name or name} ({e})", file=sys.stderr)
    sys.exit(3)


def percentiles(times_ms):
    times_ms = sorted(times_ms)
    pick = lambda q: times_ms[min(len(times_ms) - 1, int(q * (len(times_ms) - 1) + 0.5))]
    return pick(0.5), pick(0.1), pick(0.9)


def dims(shape):
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, threads):
        import onnxruntime as ort
        self.ort = ort
        self.version = ort.__version__
        self.threads = threads
        self.session = None

    def load(self, path):
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = self.ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        i, o = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input = i.name
        meta = self.session.get_modelmeta().custom_metadata_map
        return {"input": {"name": i.name, "shape": dims(i.shape), "type": i.type},
                "output": {"name": o.name, "shape": dims(o.shape), "type": o.type},
                "metadata": dict(meta)}

    def run(self, x):
        (y,) = self.session.run(None, {self.input: x})
        return y

    def timer(self, x):
        feed = {self.input: x}
        run = self.session.run
        return lambda: run(None, feed)


class OpenVino:
    name = "openvino"

    def __init__(self, threads):
        import openvino as ov
        self.ov = ov
        self.version = ov.__version__.split("-")[0]
        self.core = ov.Core()
        self.threads = threads
        self.compiled = {}

    def compile(self, model):
        # fp32 inference (no bf16 down-conversion where the CPU has it): the numbers match the export
        config = {"INFERENCE_NUM_THREADS": self.threads, "PERFORMANCE_HINT": "LATENCY",
                  "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}
        return self.core.compile_model(model, "CPU", config)

    def load(self, path):
        self.path = path
        self.model = self.core.read_model(path)
        self.compiled = {}
        i, o = self.model.inputs[0], self.model.outputs[0]
        self.input_shape = [d.get_length() if d.is_static else -1 for d in i.get_partial_shape()]
        output_shape = [d.get_length() if d.is_static else -1 for d in o.get_partial_shape()]
        meta = {}
        try:  # the metadata_props of the ONNX file (OpenVINO does not expose them)
            import onnx
            meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        except ImportError:
            pass
        return {"input": {"name": i.get_any_name(), "shape": self.input_shape,
                          "type": str(i.get_element_type())},
                "output": {"name": o.get_any_name(), "shape": output_shape,
                           "type": str(o.get_element_type())},
                "metadata": meta}

    def request(self, batch):
        # one compiled model per batch size, reshaped to it (static shapes are OpenVINO's fast path)
        if batch not in self.compiled:
            model = self.core.read_model(self.path)
            if self.input_shape and self.input_shape[0] == -1:
                model.reshape({model.inputs[0]: [batch] + self.input_shape[1:]})
            self.compiled[batch] = self.compile(model).create_infer_request()
        return self.compiled[batch]

    def run(self, x):
        req = self.request(x.shape[0])
        req.infer({0: x})
        return req.get_output_tensor(0).data.copy()

    def timer(self, x):
        req = self.request(x.shape[0])
        req.set_input_tensor(0, self.ov.Tensor(x))
        return req.infer


def quantize(req, np):
    """Static post-training int8 quantization with onnxruntime's tools (QDQ, per-channel weights)."""
    from onnxruntime import quantization as q
    import onnx
    c, h, w = req["shape"][1:]
    data = np.fromfile(req["calibration"], dtype="<f4").reshape([-1, c, h, w])
    if data.shape[0] == 0:
        raise ValueError("no calibration images")

    batch = int(req.get("batch", 32))
    if req.get("fixed_batch") and data.shape[0] % batch:  # a fixed-batch graph: pad the last batch
        pad = batch - data.shape[0] % batch
        data = np.concatenate([data, np.repeat(data[-1:], pad, axis=0)])

    class Reader(q.CalibrationDataReader):
        def __init__(self, name):
            self.items = iter([{name: data[i:i + batch]} for i in range(0, data.shape[0], batch)])

        def get_next(self):
            return next(self.items, None)

    model = onnx.load(req["model"])
    input_name = model.graph.input[0].name
    if model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8:
        data = data.astype(np.uint8)  # pixels 0..255 (skd-export --embed-normalize uint8), exact in float32
    # Only the MatMuls of a weight (the Linear layers): attention's activation x activation MatMuls stay
    # float (both operands would need run-time scales, for little gain; docs/decisions.md)
    weights = {i.name for i in model.graph.initializer}
    activation_matmuls = [n.name for n in model.graph.node
                          if n.op_type == "MatMul" and not any(i in weights for i in n.input)]
    methods = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
               "entropy": q.CalibrationMethod.Entropy}
    extra = {"CalibMovingAverage": False}
    if req["method"] == "percentile":
        extra["CalibPercentile"] = float(req.get("percentile", 99.999))
    q.quantize_static(req["model"], req["out"], Reader(input_name), quant_format=q.QuantFormat.QDQ,
                      activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                      per_channel=bool(req["per_channel"]), reduce_range=bool(req["reduce_range"]),
                      op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=activation_matmuls,
                      calibrate_method=methods[req["method"]], extra_options=extra)
    out = onnx.load(req["out"])
    del out.metadata_props[:]
    for key, value in req.get("metadata", {}).items():
        p = out.metadata_props.add()
        p.key, p.value = key, value
    onnx.save(out, req["out"])
    nodes = {}
    for n in out.graph.node:
        nodes[n.op_type] = nodes.get(n.op_type, 0) + 1
    return {"nodes": nodes, "onnx": onnx.__version__, "float_matmuls": len(activation_matmuls)}


def main(argv):
    parser = argparse.ArgumentParser(description="SKD deployment-runtime worker")
    parser.add_argument("--runtime", required=True, choices=["onnxruntime", "openvino"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        import numpy as np
    except ImportError as e:
        fail_import(e, "numpy")
    try:
        rt = OnnxRuntime(args.threads) if args.runtime == "onnxruntime" else OpenVino(args.threads)
    except ImportError as e:
        fail_import(e, args.runtime)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def answer(obj, payload=b""):
        if payload:
            obj["bytes"] = len(payload)
        stdout.write(json.dumps(obj).encode() + b"\n")
        if payload:
            stdout.write(payload)
        stdout.flush()

    settled = False  # the first timing of the process waits for the CPU to settle
    uint8_input = False  # the loaded graph reads uint8 pixels (skd-export --embed-normalize uint8)
    answer({"ok": True, "runtime": rt.name, "version": rt.version, "python": sys.executable,
            "numpy": np.__version__})
    while True:
        line = stdin.readline()
        if not line:
            return 0
        req = json.loads(line)
        payload = stdin.read(req["bytes"]) if req.get("bytes") else b""
        if len(payload) != req.get("bytes", 0):
            raise EOFError("request payload cut short")
        cmd = req.get("cmd")
        try:
            if cmd == "quit":
                answer({"ok": True})
                return 0
            if cmd == "load":
                info = rt.load(req["path"])
                uint8_input = "uint8" in info["input"]["type"] or info["input"]["type"] == "u8"
                answer({"ok": True, **info})
            elif cmd == "run":
                x = np.frombuffer(payload, dtype="<f4").reshape(req["shape"])
                if uint8_input:  # pixels 0..255 sent as float32 (exact): the graph reads uint8
                    x = x.astype(np.uint8)
                y = np.ascontiguousarray(rt.run(x), dtype="<f4")
                answer({"ok": True, "shape": list(y.shape)}, y.tobytes())
            elif cmd == "time":
                shape = [req["batch"]] + req["shape"][1:]
                if uint8_input:
                    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
                else:
                    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
                call = rt.timer(x)
                spin = req.get("warmup_s", 0.0) + (0.0 if settled else req.get("settle_s", 0.0))
                settled = True
                t0, runs = time.perf_counter(), 0
                while runs < req["warmup"] or time.perf_counter() - t0 < spin:
                    call()
                    runs += 1
                times = []
                for _ in range(req["repeats"]):
                    t0 = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - t0) * 1e3)
                med, p10, p90 = percentiles(times)
                answer({"ok": True, "median_ms": med, "p10_ms": p10, "p90_ms": p90,
                        "images_per_s": req["batch"] / med * 1e3})
            elif cmd == "quantize":
                if rt.name != "onnxruntime":
                    raise ValueError("quantize needs the onnxruntime worker")
                answer({"ok": True, **quantize(req, np)})
            else:
                raise ValueError(f"unknown request {cmd!r}")
        except Exception as e:  # the C++ side turns this into its error, naming the file or flag
            answer({"ok": False, "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
