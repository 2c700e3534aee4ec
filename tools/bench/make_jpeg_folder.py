#!/usr/bin/python3
"""Writes a deterministic folder of ImageNet-like JPEGs (class subfolders) for the data-pipeline benchmark."""
# Run with Debian's /usr/bin/python3 (python3-pil, python3-numpy); the pyenv python has no PIL.
import argparse
import os
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_image(rng: random.Random, width: int, height: int, noise: float) -> Image.Image:
    # A smooth two-axis colour gradient as the "background", so most 8x8 blocks carry low-frequency
    # content like photos do, rather than flat colour (too small a JPEG) or pure noise (too large).
    nrng = np.random.default_rng(rng.getrandbits(63))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        a, b = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4)
        f = rng.uniform(0.005, 0.03)
        level = rng.uniform(60, 190)
        wobble = rng.uniform(0, 6)
        img[..., c] = level + a * xx + b * yy + 40 * np.sin(f * xx + wobble * np.cos(f * yy))
    base = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))

    # Random shapes with hard edges (the costly part of real JPEGs), partly blurred for depth of field.
    layer = base.copy()
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.randint(8, 20)):
        x0, y0 = rng.uniform(-50, width), rng.uniform(-50, height)
        w, h = rng.uniform(20, width / 2), rng.uniform(20, height / 2)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        kind = rng.random()
        if kind < 0.4:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)
        elif kind < 0.75:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        else:
            pts = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(rng.randint(3, 6))]
            draw.polygon(pts, fill=colour)
    layer = layer.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.5)))

    # Sensor-like noise (slightly smoothed, so it is not all high-frequency) gives texture everywhere.
    arr = np.asarray(layer, np.float32)
    grain = nrng.normal(0, noise, (height, width, 3)).astype(np.float32)
    grain_img = Image.fromarray(np.clip(grain + 128, 0, 255).astype(np.uint8))
    grain_img = grain_img.filter(ImageFilter.GaussianBlur(0.6))
    arr = arr + (np.asarray(grain_img, np.float32) - 128) * 2.0
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="/tmp/skd_bench_jpegs", help="output folder (created)")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--height", type=int, default=375)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--noise", type=float, default=10.0, help="grain std (drives the JPEG size)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    rng = random.Random(a.seed)
    total = 0
    for i in range(a.count):
        folder = os.path.join(a.out, f"class_{i % a.classes:02d}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"img_{i:05d}.jpg")
        # 4:2:0 subsampling and no optimisation, as typical camera/ImageNet JPEGs are written.
        make_image(rng, a.width, a.height, a.noise).save(path, "JPEG", quality=a.quality, subsampling=2)
        total += os.path.getsize(path)
    print(f"wrote {a.count} images ({a.width}x{a.height}, q{a.quality}) to {a.out}, "
          f"mean {total / max(a.count, 1) / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
