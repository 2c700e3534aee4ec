#!/usr/bin/python3
"""Writes tests/data/golden/augment_golden.bin: Pillow outputs of the RandAugment image ops (as
timm's auto_augment.py calls them) that tests/data/augment_test.cpp compares against exactly.

Needs Debian's python3-pil (9.4; run with /usr/bin/python3) and nothing else (no numpy).

Layout (all integers little-endian uint32):
  magic b"SKDAUG1\\0" (8 bytes), record count N, then N records of
    name length L, L bytes of ASCII name, width, height, channels, width*height*channels bytes
    (row-major HWC uint8).
The record names are "src.rgb" / "src.gray" (the inputs) and "<src>.<op>" for op outputs; the
op names and arguments are decoded by the C++ test (see OPS below for their meaning).
"""
import os
import struct

import PIL
from PIL import Image, ImageEnhance, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "augment_golden.bin")  # beside this script
FILL = (124, 116, 104)  # timm img_mean for the ImageNet mean
BL, BC = Image.Resampling.BILINEAR, Image.Resampling.BICUBIC


def make_source(width, height, channels, seed):
    """Gradients, hard-edged blocks and noise, with channel ranges short of 0..255 so that
    autocontrast and equalize have work to do."""
    state = seed
    data = bytearray()
    lo_hi = [(25, 220), (10, 245), (40, 200)]
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                state = (state * 1103515245 + 12345) & 0x7FFFFFFF
                noise = (state >> 16) % 41 - 20
                base = 30 + x * 150 // max(width - 1, 1) + y * 60 // max(height - 1, 1) + c * 25
                if (x // 6 + y // 5) % 4 == 0:
                    base = 235 if c != 1 else 15
                lo, hi = lo_hi[c]
                data.append(max(lo, min(hi, base + noise)))
    return Image.frombytes("RGB" if channels == 3 else "L", (width, height), bytes(data))


def solarize_add(img, add, thresh=128):  # timm's solarize_add
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    if img.mode == "RGB":
        lut = lut * 3
    return img.point(lut)


def affine(img, coeffs, resample):
    return img.transform(img.size, Image.Transform.AFFINE, coeffs, resample=resample,
                         fillcolor=FILL)


# name -> function of the source image. Names encode the arguments the C++ test applies.
OPS = {
    "rotate.15.bilinear": lambda im: im.rotate(15, resample=BL, fillcolor=FILL),
    "rotate.-27.bicubic": lambda im: im.rotate(-27, resample=BC, fillcolor=FILL),
    "rotate.90.bicubic": lambda im: im.rotate(90, resample=BC, fillcolor=FILL),  # not square
    "rotate.180.bilinear": lambda im: im.rotate(180, resample=BL, fillcolor=FILL),
    "rotate.0.bicubic": lambda im: im.rotate(0, resample=BC, fillcolor=FILL),
    "rotate.333.5.bilinear": lambda im: im.rotate(333.5, resample=BL, fillcolor=FILL),
    "shear_x.0.2.bicubic": lambda im: affine(im, (1, 0.2, 0, 0, 1, 0), BC),
    "shear_x.-0.3.bilinear": lambda im: affine(im, (1, -0.3, 0, 0, 1, 0), BL),
    "shear_y.-0.25.bilinear": lambda im: affine(im, (1, 0, 0, -0.25, 1, 0), BL),
    "shear_y.0.27.bicubic": lambda im: affine(im, (1, 0, 0, 0.27, 1, 0), BC),
    # translate_x_rel(0.3): pixels = 0.3 * width
    "translate_x_rel.0.3.bilinear": lambda im: affine(im, (1, 0, 0.3 * im.size[0], 0, 1, 0), BL),
    "translate_y_rel.-0.2.bicubic": lambda im: affine(im, (1, 0, 0, 0, 1, -0.2 * im.size[1]), BC),
    "translate_x.5.bilinear": lambda im: affine(im, (1, 0, 5, 0, 1, 0), BL),
    "translate_y.-3.bicubic": lambda im: affine(im, (1, 0, 0, 0, 1, -3), BC),
    "color.1.5": lambda im: ImageEnhance.Color(im).enhance(1.5),
    "color.0.4": lambda im: ImageEnhance.Color(im).enhance(0.4),
    "contrast.0.6": lambda im: ImageEnhance.Contrast(im).enhance(0.6),
    "contrast.1.7": lambda im: ImageEnhance.Contrast(im).enhance(1.7),
    "brightness.1.3": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "brightness.0.5": lambda im: ImageEnhance.Brightness(im).enhance(0.5),
    "sharpness.1.7": lambda im: ImageEnhance.Sharpness(im).enhance(1.7),
    "sharpness.0.3": lambda im: ImageEnhance.Sharpness(im).enhance(0.3),
    "sharpness.1.9": lambda im: ImageEnhance.Sharpness(im).enhance(1.9),
    "equalize": ImageOps.equalize,
    "autocontrast": ImageOps.autocontrast,
    "invert": ImageOps.invert,
    "posterize.3": lambda im: ImageOps.posterize(im, 3),
    "posterize.1": lambda im: ImageOps.posterize(im, 1),
    "posterize.0": lambda im: ImageOps.posterize(im, 0),
    "solarize.128": lambda im: ImageOps.solarize(im, 128),
    "solarize.200": lambda im: ImageOps.solarize(im, 200),
    "solarize_add.50": lambda im: solarize_add(im, 50),
    "gray": lambda im: im.convert("L"),
}
GRAY_OPS = ["color.1.5", "contrast.0.6", "contrast.1.7", "sharpness.1.7", "equalize",
            "autocontrast", "invert", "posterize.3", "solarize.128", "solarize_add.50",
            "brightness.1.3"]


def record(name, img):
    channels = 3 if img.mode == "RGB" else 1
    name_b = name.encode("ascii")
    head = struct.pack("<I", len(name_b)) + name_b
    return head + struct.pack("<III", img.size[0], img.size[1], channels) + img.tobytes()


def main():
    rgb = make_source(37, 29, 3, seed=7)
    gray = make_source(23, 19, 1, seed=11)
    recs = [record("src.rgb", rgb), record("src.gray", gray)]
    for name, fn in OPS.items():
        recs.append(record("rgb." + name, fn(rgb)))
    for name in GRAY_OPS:
        recs.append(record("gray." + name, OPS[name](gray)))
    blob = b"SKDAUG1\0" + struct.pack("<I", len(recs)) + b"".join(recs)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(blob)
    print(f"wrote {OUT}: {len(recs)} records, {len(blob)} bytes (Pillow {PIL.__version__})")


if __name__ == "__main__":
    main()
