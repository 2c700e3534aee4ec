#!/usr/bin/python3
"""PIL + torchvision counterpart of skd-bench-data: images/s of decode and decode+transform, same JSON."""
# Run with Debian's /usr/bin/python3 (python3-pil 9.4, python3-torchvision 0.14); single process, 1 thread.
import argparse
import json
import os
import random
import time

import torch
from PIL import Image, ImageEnhance, ImageOps
from torchvision import transforms as T

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
FILL = tuple(round(255 * m) for m in MEAN)  # timm's img_mean hparam: (124, 116, 104)
RESAMPLE = Image.BICUBIC  # DeiT passes interpolation='bicubic', so timm never picks bilinear here


# ---- timm's RandAugment 'rand-m9-mstd0.5-inc1', written against PIL directly (torchvision's
# RandAugment has a different op set, magnitude scale and no per-op probability).

def _signed(v):
    return -v if random.random() > 0.5 else v


def _affine(img, coeffs):
    return img.transform(img.size, Image.AFFINE, coeffs, resample=RESAMPLE, fillcolor=FILL)


def _solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    return img.point(lut * len(img.getbands()))


def _enhance_level(m):
    return max(0.1, 1 + _signed(m / 10 * 0.9))


def _posterize(img, bits):
    return img if bits >= 8 else ImageOps.posterize(img, bits)


# name -> (op(img, arg), level(magnitude) -> arg); magnitude is on timm's 0..10 scale.
_OPS = {
    "AutoContrast": (lambda img, _: ImageOps.autocontrast(img), lambda m: None),
    "Equalize": (lambda img, _: ImageOps.equalize(img), lambda m: None),
    "Invert": (lambda img, _: ImageOps.invert(img), lambda m: None),
    "Rotate": (lambda img, deg: img.rotate(deg, resample=RESAMPLE, fillcolor=FILL),
               lambda m: _signed(m / 10 * 30)),
    "PosterizeIncreasing": (_posterize, lambda m: 4 - int(m / 10 * 4)),
    "SolarizeIncreasing": (lambda img, t: ImageOps.solarize(img, t), lambda m: 256 - int(m / 10 * 256)),
    "SolarizeAdd": (_solarize_add, lambda m: int(m / 10 * 110)),
    "ColorIncreasing": (lambda img, f: ImageEnhance.Color(img).enhance(f), _enhance_level),
    "ContrastIncreasing": (lambda img, f: ImageEnhance.Contrast(img).enhance(f), _enhance_level),
    "BrightnessIncreasing": (lambda img, f: ImageEnhance.Brightness(img).enhance(f), _enhance_level),
    "SharpnessIncreasing": (lambda img, f: ImageEnhance.Sharpness(img).enhance(f), _enhance_level),
    "ShearX": (lambda img, s: _affine(img, (1, s, 0, 0, 1, 0)), lambda m: _signed(m / 10 * 0.3)),
    "ShearY": (lambda img, s: _affine(img, (1, 0, 0, s, 1, 0)), lambda m: _signed(m / 10 * 0.3)),
    "TranslateXRel": (lambda img, p: _affine(img, (1, 0, p * img.size[0], 0, 1, 0)),
                      lambda m: _signed(m / 10 * 0.45)),
    "TranslateYRel": (lambda img, p: _affine(img, (1, 0, 0, 0, 1, p * img.size[1])),
                      lambda m: _signed(m / 10 * 0.45)),
}


class TimmRandAugment:
    def __init__(self, num_layers=2, magnitude=9.0, magnitude_std=0.5, magnitude_max=10.0, prob=0.5):
        self.n, self.m, self.mstd = num_layers, magnitude, magnitude_std
        self.mmax, self.p = magnitude_max, prob
        self.ops = list(_OPS.values())

    def __call__(self, img):
        for op, level in random.choices(self.ops, k=self.n):  # with replacement, as timm
            if random.random() > self.p:
                continue
            m = random.gauss(self.m, self.mstd) if self.mstd > 0 else self.m
            img = op(img, level(max(0.0, min(m, self.mmax))))
        return img


# ---- The pipelines, as steps so that --profile can time each one.

def eval_steps():
    return [("resize_center_crop", T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC),
                                               T.CenterCrop(224)])),
            ("to_tensor_normalize", T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)]))]


def train_steps():
    return [("random_resized_crop", T.RandomResizedCrop(224, interpolation=T.InterpolationMode.BICUBIC)),
            ("hflip", T.RandomHorizontalFlip()),
            ("rand_augment", TimmRandAugment()),
            ("to_tensor_normalize", T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])),
            ("random_erasing", T.RandomErasing(p=0.25, value="random"))]


def decode(path):
    return Image.open(path).convert("RGB")


def list_images(folder):
    files = []
    for root, _, names in os.walk(folder):
        files += [os.path.join(root, n) for n in names
                  if os.path.splitext(n)[1].lower() in (".jpg", ".jpeg", ".png")]
    return sorted(files)  # same order as the C++ tool (byte-wise sort of the full paths)


def measure(files, fn, repeat, warmup):
    sink = 0.0
    for _ in range(warmup):
        for f in files:
            sink += fn(f)
    per, total = [], 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        for f in files:
            sink += fn(f)
        s = time.perf_counter() - t0
        total += s
        per.append(len(files) / s)
    n = len(files) * repeat
    return {"images": n, "seconds": total, "images_per_s": n / total, "per_repeat_images_per_s": per}, sink


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--folder", required=True)
    p.add_argument("--pipeline", choices=["eval", "train"], default="eval")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", action="store_true", help="also time each step (ms per image)")
    a = p.parse_args()

    torch.set_num_threads(1)
    random.seed(a.seed)
    torch.manual_seed(a.seed)
    files = list_images(a.folder)
    if not files:
        raise SystemExit(f"no .jpg/.jpeg/.png files under '{a.folder}'")
    steps = eval_steps() if a.pipeline == "eval" else train_steps()
    transform = T.Compose([s for _, s in steps])

    def decode_only(f):
        img = decode(f)
        return img.getpixel((img.width // 2, img.height // 2))[0]

    def full(f):
        x = transform(decode(f))
        return float(x.view(-1)[x.numel() // 2])

    dec, s1 = measure(files, decode_only, a.repeat, a.warmup)
    tr, s2 = measure(files, full, a.repeat, a.warmup)
    out = {"impl": "pil", "pipeline": a.pipeline, "threads": 1, "files": len(files), "repeat": a.repeat,
           "warmup": a.warmup, "decode": dec, "decode_transform": tr}
    if a.profile:
        times = {"decode": 0.0, **{name: 0.0 for name, _ in steps}}
        for k in range(a.warmup + a.repeat):
            for f in files:
                t0 = time.perf_counter()
                x = decode(f)
                t1 = time.perf_counter()
                if k >= a.warmup:
                    times["decode"] += t1 - t0
                for name, step in steps:
                    t0 = time.perf_counter()
                    x = step(x)
                    if k >= a.warmup:
                        times[name] += time.perf_counter() - t0
        n = len(files) * a.repeat
        out["profile_ms_per_image"] = {k: 1e3 * v / n for k, v in times.items()}
        if a.pipeline == "train":
            # Each RandAugment op alone at magnitude 9 on the 224x224 crops (same as skd-bench-data).
            rrc = train_steps()[0][1]
            crops = [rrc(decode(f)) for f in files]
            ops = {}
            for name, (op, level) in _OPS.items():
                for k in range(a.warmup + a.repeat):
                    t0 = time.perf_counter()
                    for c in crops:
                        op(c, level(9.0))
                    if k >= a.warmup:
                        ops[name] = ops.get(name, 0.0) + time.perf_counter() - t0
            out["augment_op_ms_per_image"] = {k: 1e3 * v / n for k, v in ops.items()}
    out["checksum"] = s1 + s2
    print(json.dumps(out))


if __name__ == "__main__":
    main()
