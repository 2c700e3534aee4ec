"""How an image becomes a model's input: the manifest entry "preprocess" (names as in timm's pretrained
config), read as strictly as the C++ preprocess_from_json / check_preprocess_fits
(include/skd/data/preprocess.h, src/data/preprocess.cpp), the defaults of the C++ image-folder eval
for artifacts written before the entry existed, and the eval transform of skd-eval
(include/skd/data/eval_transform.h, src/data/eval_transform.cpp) on PIL images:

    resize the shorter side to int(S / crop_pct) (PIL, the entry's interpolation; the longer side to
    int(R * long / short), torchvision Resize(int)) -> center crop S x S (torchvision CenterCrop) ->
    ToTensor + Normalize in float32 -> a float32 tensor [C, S, S].

Every float32 step is reproduced exactly (a lookup table per channel, each operation rounded to float32),
so the output equals the C++ (and torchvision's) bit for bit. PIL is imported only when the transform
runs; numpy is not needed.
"""
import math
import os
import struct

import torch

from .config import MAX_IMG_SIZE, MAX_IN_CHANS
from .errors import printable

PREPROCESS_KEY = "preprocess"  # include/skd/data/preprocess.h kPreprocessKey
# The interpolations of the eval resize (kInterpolationNames of preprocess.h) and their PIL filters.
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")
# The range of crop_pct (kMinCropPct, kMaxCropPct of preprocess.h).
MIN_CROP_PCT = 0.05
MAX_CROP_PCT = 1.0
CROP_MODES = ("center",)
KEYS = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")
REQUIRED_KEYS = ("input_size", "interpolation", "crop_pct", "mean", "std")
# The longest side / shortest side an image may have (include/skd/data/eval_transform.h kMaxAspectRatio):
# resizing a 100000 x 1 image's shorter side to ~256 would need gigabytes; the C++ refuses such images.
MAX_ASPECT_RATIO = 64


def f32(x):
    """`x` rounded to the nearest float32, as a Python float (the float32 widened to double)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


# The ImageNet mean and std (kImagenetMean, kImagenetStd of include/skd/data/eval_transform.h).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The one-channel (L) normalization, kGrayMean / kGrayStd of include/skd/data/image_folder.h: ImageNet's
# mean and std weighted as L weights R, G, B, computed there in float32 (each product and sum rounded to
# float32, left to right). A product or sum of two float32 values computed in double and then rounded to
# float32 is the float32 result, so these equal the C++ constants exactly.
_L_WEIGHTS = (0.299, 0.587, 0.114)


def _gray(values):
    total = None
    for w, v in zip(_L_WEIGHTS, values):
        p = f32(f32(w) * f32(v))
        total = p if total is None else f32(total + p)
    return total


GRAY_MEAN = _gray(IMAGENET_MEAN)
GRAY_STD = _gray(IMAGENET_STD)


class PreprocessError(ValueError):
    """A preprocess entry preprocess_from_json / check_preprocess_fits refuse; `key` names the entry's
    key ("preprocess.crop_pct"). The loader adds the file (as an ArtifactError)."""

    def __init__(self, message, key=PREPROCESS_KEY):
        self.key = key
        super().__init__(message)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite_number(v):
    if not _is_number(v):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an int beyond the double range (a JSON parser overflows on it too)
        return False


def _show(v, limit=80):
    return printable(repr(v), limit)


def check_preprocess(entry):
    """The validated entry (a new dict with the six keys, crop_mode filled in, numbers as int / float),
    or PreprocessError naming the key, for exactly what preprocess_from_json refuses."""
    if not isinstance(entry, dict):
        raise PreprocessError(f"'{PREPROCESS_KEY}' must be an object, got {_show(entry)}")
    for k in sorted(entry):  # nlohmann iterates an object's keys in sorted order
        if k not in KEYS:
            raise PreprocessError(f"unknown key '{PREPROCESS_KEY}.{printable(k, 100)}' (known: {', '.join(KEYS)})",
                                  f"{PREPROCESS_KEY}.{k}")
    for k in REQUIRED_KEYS:
        if k not in entry:
            raise PreprocessError(f"'{PREPROCESS_KEY}' lacks the required key '{k}'", f"{PREPROCESS_KEY}.{k}")

    def fail(key, msg):
        raise PreprocessError(f"'{PREPROCESS_KEY}.{key}' {msg}, got {_show(entry[key])}", f"{PREPROCESS_KEY}.{key}")

    size = entry["input_size"]
    if not isinstance(size, (list, tuple)) or len(size) != 3 or not all(_is_int(v) for v in size):
        fail("input_size", "must be a list of 3 integers [C, H, W]")
    c, h, w = size
    if not all(v >= 1 for v in size):
        fail("input_size", "must be positive")
    if c > MAX_IN_CHANS:
        fail("input_size", f"has C > {MAX_IN_CHANS} channels (the model limit, include/skd/models/config.h)")
    if h != w:
        fail("input_size", "must be square (H == W)")
    if h > MAX_IMG_SIZE:
        fail("input_size", f"has H > {MAX_IMG_SIZE} (the model limit, include/skd/models/config.h)")
    interpolation = entry["interpolation"]
    if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
        fail("interpolation", f"must be one of {', '.join(map(repr, INTERPOLATIONS))}")
    crop_pct = entry["crop_pct"]
    if not _finite_number(crop_pct) or not MIN_CROP_PCT <= crop_pct <= MAX_CROP_PCT:
        fail("crop_pct", f"must be a number in [{MIN_CROP_PCT}, {MAX_CROP_PCT}]")
    crop_mode = entry.get("crop_mode", "center")
    if not isinstance(crop_mode, str) or crop_mode not in CROP_MODES:
        fail("crop_mode", 'must be "center" (the only crop of the eval transform)')
    for key in ("mean", "std"):
        v = entry[key]
        if not isinstance(v, (list, tuple)) or len(v) != c or not all(_finite_number(x) for x in v):
            fail(key, f"must be a list of {c} finite numbers (one per channel of input_size)")
    if not all(x > 0 for x in entry["std"]):
        fail("std", "must be positive")
    return {"input_size": [int(c), int(h), int(w)], "interpolation": interpolation, "crop_pct": float(crop_pct),
            "crop_mode": crop_mode, "mean": [float(x) for x in entry["mean"]],
            "std": [float(x) for x in entry["std"]]}


def check_fits(p, channels, size):
    """check_preprocess_fits(): the entry must be for a model of `channels` x `size` x `size` inputs
    (the architecture's in_chans and img_size); PreprocessError naming "preprocess.input_size" otherwise."""
    want = [int(channels), int(size), int(size)]
    if list(p["input_size"]) != want:
        raise PreprocessError(f"'{PREPROCESS_KEY}.input_size' {p['input_size']} does not match the architecture, "
                              f"whose input is [in_chans, img_size, img_size] = {want}",
                              f"{PREPROCESS_KEY}.input_size")


def default_preprocess(channels, size):
    """What the C++ image-folder eval does for an artifact without a "preprocess" entry
    (imagenet_preprocess of preprocess.h): bicubic, crop_pct 0.875, the ImageNet mean and std (3
    channels) or GRAY_MEAN / GRAY_STD (1 channel). None for other channel counts (no known default)."""
    if channels == 3:
        mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    elif channels == 1:
        mean, std = [GRAY_MEAN], [GRAY_STD]
    else:
        return None
    return {"input_size": [int(channels), int(size), int(size)], "interpolation": "bicubic", "crop_pct": 0.875,
            "crop_mode": "center", "mean": mean, "std": std}


def describe(p):
    """'3x224x224, bicubic, crop_pct 0.875, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]'"""
    return (f"{'x'.join(map(str, p['input_size']))}, {p['interpolation']}, crop_pct {p['crop_pct']}, "
            f"mean {p['mean']}, std {p['std']}")


# --- the eval transform --------------------------------------------------------------------------------

def _pil():
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("skd_loader's eval transform needs Pillow (PIL), which is not installed: "
                          "pip install pillow (or apt-get install python3-pil)") from e
    return Image


def _filter(Image, interpolation):
    names = getattr(Image, "Resampling", Image)  # Pillow >= 9.1 has Image.Resampling; older: Image.BICUBIC
    return {"bicubic": names.BICUBIC, "bilinear": names.BILINEAR, "nearest": names.NEAREST}[interpolation]


def resize_size(size, crop_pct):
    """The shorter side the eval resize goes to: int(size / crop_pct), a true division then truncation
    with no epsilon (eval_resize_size of eval_transform.cpp; 224 / 0.875 -> 256, 224 / 0.9 -> 248)."""
    return int(size / crop_pct)


def check_image_shape(width, height, source="image"):
    """check_image_shape() of eval_transform.cpp: an empty image or one beyond MAX_ASPECT_RATIO is refused."""
    lo, hi = min(width, height), max(width, height)
    if lo <= 0:
        raise ValueError(f"{source}: empty image ({width}x{height} pixels)")
    if hi > lo * MAX_ASPECT_RATIO:
        raise ValueError(f"{source}: {width}x{height} pixels, an aspect ratio beyond {MAX_ASPECT_RATIO}:1 (resizing "
                         f"its shorter side to the model's input size would need an image {hi // lo} times longer "
                         f"than wide); refused as a degenerate image, as skd-eval does")


def resize_shorter_side(img, size, interpolation="bicubic", source="image"):
    """torchvision Resize(int) on a PIL image: the shorter side to `size`, the longer to
    int(size * long / short), with PIL's `interpolation` filter (resize_shorter_side of eval_transform.cpp)."""
    Image = _pil()
    w, h = img.size
    check_image_shape(w, h, source)
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    return img.resize((new_w, new_h), _filter(Image, interpolation))


def center_crop(img, size):
    """torchvision CenterCrop(size) on a PIL image: padded symmetrically with zeros first where it is
    smaller than `size` (left/top (size - w) // 2, right/bottom the rest), then cropped at
    top = int(round((h - size) / 2.0)), left = int(round((w - size) / 2.0)) (center_crop of eval_transform.cpp)."""
    Image = _pil()
    w, h = img.size
    if size > w or size > h:
        pad_l = (size - w) // 2 if size > w else 0
        pad_t = (size - h) // 2 if size > h else 0
        pad_r = (size - w + 1) // 2 if size > w else 0
        pad_b = (size - h + 1) // 2 if size > h else 0
        padded = Image.new(img.mode, (w + pad_l + pad_r, h + pad_t + pad_b), 0)
        padded.paste(img, (pad_l, pad_t))
        img = padded
        w, h = img.size
        if (w, h) == (size, size):
            return img
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def normalize_table(mean, std):
    """[C][256] float32 values (as Python floats) of ToTensor + Normalize for every uint8 level v:
    (float32(v) / 255 - float32(mean[c])) / float32(std[c]), each operation rounded to float32 (what
    torchvision's float32 tensor ops and the C++ lookup table of to_normalized_tensor compute). An
    operation on two float32 values done in double and rounded once to float32 gives the float32 result."""
    table = []
    for m, s in zip(mean, std):
        m32, s32 = f32(m), f32(s)
        table.append([f32(f32(f32(v / 255.0) - m32) / s32) for v in range(256)])
    return table


def to_normalized_tensor(img, mean, std):
    """ToTensor + Normalize of a PIL image in mode RGB (3 means) or L (1 mean): a contiguous float32
    tensor [C, H, W]."""
    channels = len(mean)
    w, h = img.size
    raw = bytearray(img.tobytes())
    if len(raw) != w * h * channels:
        raise ValueError(f"to_normalized_tensor: a {img.mode} image of {w}x{h} pixels for {channels} channels")
    pixels = torch.frombuffer(raw, dtype=torch.uint8).view(h * w, channels).t().long()
    table = torch.tensor(normalize_table(mean, std), dtype=torch.float32)
    return torch.gather(table, 1, pixels).view(channels, h, w).contiguous()


class EvalTransform:
    """The eval transform of a preprocess entry: a callable taking a PIL image (or a path, opened with
    PIL) and returning the float32 tensor [C, S, S] skd-eval feeds the model (C = 3: the image converted
    to RGB; C = 1: converted to L by PIL). Other channel counts: a clear error when called."""

    def __init__(self, preprocess):
        self.preprocess = check_preprocess(preprocess)
        self.channels, self.size = self.preprocess["input_size"][:2]
        self.interpolation = self.preprocess["interpolation"]
        self.resize_size = resize_size(self.size, self.preprocess["crop_pct"])

    def __call__(self, image):
        if self.channels not in (1, 3):
            raise ValueError(f"the eval transform makes 3-channel (RGB) or 1-channel (L) input from images; this "
                             f"preprocessing is for {self.channels}-channel input "
                             f"({describe(self.preprocess)}); prepare such input yourself")
        Image = _pil()
        mode = "RGB" if self.channels == 3 else "L"
        source = "image"
        if isinstance(image, (str, bytes, os.PathLike)):
            source = os.fsdecode(image)
            with Image.open(image) as f:
                img = f.convert(mode)
        elif isinstance(image, Image.Image):
            img = image.convert(mode)
        else:
            raise TypeError(f"the eval transform takes a PIL.Image.Image or a path, got {type(image).__name__}")
        img = resize_shorter_side(img, self.resize_size, self.interpolation, source)
        img = center_crop(img, self.size)
        return to_normalized_tensor(img, self.preprocess["mean"], self.preprocess["std"])

    def __repr__(self):
        return f"skd_loader.EvalTransform({describe(self.preprocess)}; resize to {self.resize_size})"


class NoTransform:
    """model.transform of an artifact without a preprocess entry whose channel count has no default:
    calling it raises a clear error."""

    def __init__(self, path, channels):
        self.path, self.channels = str(path), channels
        self.preprocess = None

    def __call__(self, image):
        raise ValueError(f"{printable(self.path, 1000)} has no preprocess entry and there is no default "
                         f"preprocessing for {self.channels}-channel input (defaults exist for 3 (RGB) and 1 (L)); "
                         f"give one: skd_loader.eval_transform({{\"input_size\": [C, S, S], ...}})")

    def __repr__(self):
        return f"skd_loader.NoTransform({printable(self.path, 200)}: no preprocessing for {self.channels} channels)"
