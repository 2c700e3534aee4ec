#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/*_fuzz.cpp) into OUT/<target>/, from the
test fixtures (tests/fixtures), assets/vit_fmnist.safetensors, the Fashion-MNIST IDX files and small files made
here. Every seed stays small (a few KB): libFuzzer mutates short inputs much faster, and what
matters is that each seed walks a different valid path through the parser.
Usage: make_corpus.py OUT [--fixtures DIR]   (default $SKD_FIXTURES, else tests/fixtures, as the
tests; needs numpy, torch, PIL: python3-torch, python3-pil)"""
import argparse
import collections
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--fixtures", default=os.environ.get("SKD_FIXTURES", os.path.join(ROOT, "tests", "fixtures")))
p.add_argument("--fmnist", default="/usr/share/datasets/fashion-mnist")
a = p.parse_args()


def put(target, name, data):
    d = os.path.join(a.out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# safetensors: small files covering every dtype, zero-size tensors, metadata, an empty header.
def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    for k, (dtype, shape, raw) in tensors.items():
        header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob


f32 = np.arange(6, dtype=np.float32)
put("safetensors", "mixed", safetensors({
    "w": ("F32", [2, 3], f32.tobytes()), "i": ("I64", [2], np.array([1, -2], np.int64).tobytes()),
    "b": ("BOOL", [3], bytes([1, 0, 1])), "h": ("F16", [2], np.ones(2, np.float16).tobytes()),
    "bf": ("BF16", [1], b"\x80\x3f"), "u": ("U8", [], b"\x07")}, {"format": "pt", "note": "seed"}))
put("safetensors", "empty_header", safetensors({}))
put("safetensors", "zero_size", safetensors({"z": ("F32", [0, 4], b""), "s": ("I8", [2], b"\x01\x02"),
                                             "d": ("F64", [1], np.ones(1).tobytes())}))
put("safetensors", "i32_i16", safetensors({"a": ("I32", [2, 1], np.ones(2, np.int32).tobytes()),
                                           "b": ("I16", [1, 1, 1], b"\x02\x00")}))

# torch.save: the zip format and the legacy pickle stream; wrappers, views, shared storages.
base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
dicts = {
    "model": {"model": collections.OrderedDict(w=base, b=torch.ones(4), idx=torch.arange(3))},
    "views": {"state_dict": {"t": base.t(), "row": base[1], "step": base[:, ::2], "h": base.half(),
                             "bf": base.bfloat16()[0], "flag": torch.tensor([True, False])}},
    "raw": {"a.weight": torch.zeros(2, 2, dtype=torch.float64), "n": torch.tensor(3, dtype=torch.int8),
            "meta": {"epoch": 3, "lr": 0.5, "name": "x", "tags": ("a", None, b"bytes")}},
}
for name, obj in dicts.items():
    buf = io.BytesIO()
    torch.save(obj, buf)
    put("pth", f"{name}.zip.pth", buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        for n in z.namelist():
            if n.endswith("/data.pkl"):
                put("pickle", f"{name}.pkl", z.read(n))
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    put("pth", f"{name}.legacy.pth", buf.getvalue())
    for proto in (0, 2):  # text and binary opcodes
        buf = io.BytesIO()
        torch.save(obj, buf, pickle_protocol=proto, _use_new_zipfile_serialization=True)
        with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
            for n in z.namelist():
                if n.endswith("/data.pkl"):
                    put("pickle", f"{name}.p{proto}.pkl", z.read(n))

# IDX: the real Fashion-MNIST headers with the counts cut to a few items, plain and gzipped.
for fname, keep in (("t10k-images-idx3-ubyte.gz", 2), ("t10k-labels-idx1-ubyte.gz", 16)):
    path = os.path.join(a.fmnist, fname)
    if not os.path.exists(path):
        sys.exit(f"make_corpus: {path} is missing (Debian package dataset-fashion-mnist)")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = list(struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim]))
    per_item = int(np.prod(dims[1:])) if ndim > 1 else 1
    dims[0] = keep
    cut = raw[:4] + struct.pack(">" + "I" * ndim, *dims) + raw[4 + 4 * ndim:4 + 4 * ndim + keep * per_item]
    stem = fname.split("-")[1]
    put("idx", f"{stem}.idx", cut)
    put("idx", f"{stem}.idx.gz", gzip.compress(cut, mtime=0))

# Manifests: the shipped artifact's, and small ViT/Swin ones (built for real by the target), one
# with a super-network mask table.
with open(os.path.join(ROOT, "assets", "vit_fmnist.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    shipped = json.loads(f.read(n))["__metadata__"]["skd_manifest"]
put("manifest", "vit_fmnist.json", shipped.encode())
tiny_vit = {"family": "vit", "name": "tiny", "img_size": 8, "patch_size": 4, "in_chans": 1, "num_classes": 3,
            "embed_dim": 8, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0, "widths": [[4, 16], [2, 8]]}
tiny_swin = {"family": "swin", "img_size": 8, "patch_size": 2, "in_chans": 1, "num_classes": 3, "embed_dim": 8,
             "depths": [1, 1], "num_heads": [2, 2], "window_size": 2, "mlp_ratio": 1.0}
mask = {}
for b in range(2):
    mask[f"{b}.attn"] = {"0": [4, 2][b], "-1": 1, "1": 2, "2": 1}
    mask[f"{b}.mlp"] = {"0": [16, 8][b], "-1": 0, "1": 4, "2": 0}
for name, cfg, extra in (("tiny_vit", tiny_vit, {}), ("tiny_swin", tiny_swin, {}),
                         ("tiny_supernet", tiny_vit, {"mask_table": mask})):
    m = {"format": "skd-artifact", "format_version": 1, "family": cfg["family"], "config": cfg}
    m.update(extra)
    put("manifest", f"{name}.json", json.dumps(m).encode())

# Mask tables: the benchmark's uniform DeiT-Tiny tables, and one with irregular steps.
for codes in (1, 4, 12):
    out = os.path.join(a.out, "mask_table", f"uniform_{codes}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench", "make_uniform_mask_table.py"),
                    "--arch", "deit_tiny", "--codes", str(codes), "--out", out], check=True)
irregular = {}
for b in range(12):
    irregular[f"{b}.attn"] = {"0": 64, "-1": 0 if b % 3 == 0 else 16, "1": 64 if b % 2 else 32,
                              "2": 0 if b % 3 == 0 else 16}
    irregular[f"{b}.mlp"] = {"0": 768, "-1": 96 * (b % 4), "1": 384, "2": 96 * (b % 4)}
put("mask_table", "irregular.json", json.dumps(irregular, indent=1).encode())

# JSON (issue 25): the bounded parser's edges (200 levels, under the 256 limit; a duplicate key; the
# numbers options refuse), configs of each app, and a latency table of two codes at two batch sizes.
put("json", "nested_200.json", ("[" * 200 + "]" * 200).encode())
put("json", "objects_200.json", ('{"a":' * 200 + "1" + "}" * 200).encode())
put("json", "duplicate.json", b'{"lr": 0.1, "lr": 5}')
put("json", "numbers.json", b'[0, -1, 18446744073709551615, 4294967313, 1.5, 1e308, -0.0, "010", "0x10"]')
put("json", "strings.json", json.dumps({"k\u0000": "\ud83d\ude00", "e": ""}).encode())
put("config", "eval.json", json.dumps({"model": "m.safetensors", "data": "fashion-mnist", "limit": 100,
                                       "batch_size": 64, "crop_pct": 0.875, "amp": "none"}).encode())
put("config", "extract.json", json.dumps({"model": "s.safetensors", "op_code": 3, "macs_ratio": 0.5,
                                          "macs_convention": "paper", "batch": 1}).encode())
put("config", "convert.json", json.dumps({"model": "a.pth", "proxy_samples": 128, "seed": 7,
                                          "criterion": "wpac", "dist_timeout": 60.0}).encode())
put("config", "train.json", json.dumps({"epochs": 2, "lr": 0.001, "beta2": 0.999, "mode": "piad",
                                        "piad_budget_ratio": 0.5, "seed": 1}).encode())
put("config", "wrap.json", b'{"op_code": 18446744073709551615, "opset": 4294967313, "limit": -5}')
latency = {"format": "skd-latency-table", "format_version": 1, "model": "s.safetensors", "model_sha256": "0" * 64,
           "device": "cpu", "amp": "none", "threads": 2, "torch_version": "1.13", "created": "2026-01-01T00:00:00Z",
           "warmup": 3, "repeats": 10, "sweep_seconds": 1.5, "batch_sizes": [1, 8], "codes": []}
for c in range(2):
    latency["codes"].append({"code": c, "macs_paper": 1000 - c, "macs_full": 1100 - c, "params": 50,
                             "widths": [[16, 256 - 64 * c], [16, 256]],
                             "latency": [{"batch_size": b, "median_ms": 1.0 + b - c * 0.1, "p10_ms": 0.9,
                                          "p90_ms": 1.5 + b, "images_per_s": 100.0} for b in (1, 8)]})
put("latency_table", "two_codes.json", json.dumps(latency, indent=2).encode())
put("latency_table", "onnxruntime.json",
    json.dumps({**latency, "runtime": "onnxruntime", "runtime_version": "1.32.0"}, indent=2).encode())

# Images: the small PNG fixture, and a 24x16 crop of it in every format decode_image accepts.
small = os.path.join(a.fixtures, "transforms", "small_64x48.png")
with open(small, "rb") as f:
    put("image", "small_64x48.png", f.read())
im = Image.open(small).convert("RGB").resize((24, 16))
variants = [("rgb.jpg", im, "JPEG", {"quality": 80}), ("progressive.jpg", im, "JPEG", {"progressive": True}),
            ("gray.jpg", im.convert("L"), "JPEG", {}), ("cmyk.jpg", im.convert("CMYK"), "JPEG", {}),
            ("rgba.png", im.convert("RGBA"), "PNG", {}), ("palette.png", im.convert("P"), "PNG", {}),
            ("rgb.bmp", im, "BMP", {}), ("rgb.ppm", im, "PPM", {}), ("gray.pgm", im.convert("L"), "PPM", {}),
            ("lossy.webp", im, "WEBP", {"quality": 50}), ("lossless.webp", im, "WEBP", {"lossless": True}),
            ("rgb.tiff", im, "TIFF", {})]
for name, img, fmt, kw in variants:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    put("image", name, buf.getvalue())
print(f"make_corpus: seeds in {a.out}: " + ", ".join(
    f"{t} {len(os.listdir(os.path.join(a.out, t)))}" for t in sorted(os.listdir(a.out))))
