#!/usr/bin/python3
"""Writes tests/data/golden/resize_golden.safetensors: Pillow's Image.resize outputs that
tests/data/resize_test.cpp compares resize_pil against exactly.

Needs Debian's python3-pil (9.4; run with /usr/bin/python3) and nothing else (no numpy).
Keys: 'src.<name>' U8 [H,W,C] source images; 'case.<NNN>.params' F64 [8] = filter (0 nearest,
1 bilinear, 2 bicubic), width, height, has_box, x0, y0, x1, y1; 'case.<NNN>.out' U8 [h,w,C].
__metadata__ maps 'case.<NNN>' to its source name and records the Pillow version.
"""
import json
import os
import struct
import sys

import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resize_golden.safetensors")  # beside this script

FILTERS = {0: Image.Resampling.NEAREST, 1: Image.Resampling.BILINEAR,
           2: Image.Resampling.BICUBIC}


def make_source(width, height, channels, seed):
    """Noise over gradients and a hard edge: exercises rounding, clipping and ringing."""
    state = seed
    data = bytearray()
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                state = (state * 1103515245 + 12345) & 0x7FFFFFFF
                noise = (state >> 16) % 97 - 48
                base = (x * 255 // max(width - 1, 1) + y * 131 // max(height - 1, 1) + c * 60)
                if (x // 5 + y // 7) % 3 == 0:
                    base = 255 if c != 1 else 0  # saturated blocks push bicubic past 0..255
                data.append(max(0, min(255, base % 256 + noise)))
    mode = "RGB" if channels == 3 else "L"
    return Image.frombytes(mode, (width, height), bytes(data))


def cases():
    sizes = [(20, 14), (13, 9), (7, 29), (41, 10), (53, 37), (60, 20), (1, 1), (3, 50), (41, 29)]
    boxes = [
        ((2.5, 1.25, 30.75, 20.5), (20, 15)),
        ((3, 4, 23, 14), (20, 10)),       # integer box of the target size: a crop in Pillow
        ((3, 4, 23, 14), (30, 15)),
        ((0.3, 0.7, 40.1, 28.9), (41, 29)),
        ((0, 0, 41, 29), (41, 29)),       # identity
        ((10, 3, 10, 20), (4, 6)),        # zero-width box (Pillow accepts it)
        ((0.1, 0.2, 41, 29), (50, 30)),
        ((1e-3, 0, 40.999, 29), (17, 29)),
    ]
    for f in (0, 1, 2):
        for (w, h) in sizes:
            yield "rgb", f, w, h, None
        for box, (w, h) in boxes:
            yield "rgb", f, w, h, box
    for f in (0, 1, 2):
        for (w, h) in [(11, 16), (46, 62), (5, 31), (23, 7)]:
            yield "gray", f, w, h, None
        yield "gray", f, 9, 12, (1.5, 2.25, 20.0, 30.5)
    for f in (1, 2):
        yield "photo", f, 60, 45, None      # the eval resize's typical ~0.6x downscale
    yield "photo", 2, 45, 60, None
    yield "photo", 2, 100, 75, None         # upscale


def main():
    sources = {"rgb": make_source(41, 29, 3, 7), "gray": make_source(23, 31, 1, 11),
               "photo": make_source(96, 72, 3, 3)}
    tensors = {}
    for name, im in sources.items():
        tensors["src." + name] = ("U8", [im.height, im.width, len(im.getbands())], im.tobytes())
    meta = {"generator": "tests/data/golden/gen_resize_golden.py", "pillow": PIL.__version__}
    for i, (src, f, w, h, box) in enumerate(cases()):
        key = "case.%03d" % i
        im = sources[src]
        out = im.resize((w, h), FILTERS[f], box=box)
        params = [float(f), float(w), float(h), 1.0 if box else 0.0] + \
            [float(v) for v in (box or (0, 0, 0, 0))]
        tensors[key + ".params"] = ("F64", [8], struct.pack("<8d", *params))
        tensors[key + ".out"] = ("U8", [h, w, len(im.getbands())], out.tobytes())
        meta[key] = src

    header = {"__metadata__": meta}
    blobs = []
    offset = 0
    for key in sorted(tensors):
        dtype, shape, blob = tensors[key]
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs))
    print("wrote %s (%d bytes, %d cases)" % (OUT, 8 + len(hjson) + offset, len(meta) - 2))


if __name__ == "__main__":
    sys.exit(main())
