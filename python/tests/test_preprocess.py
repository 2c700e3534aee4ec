"""Preprocessing (issue 27): the manifest's "preprocess" entry is read as strictly as the C++
preprocess_from_json / check_preprocess_fits (src/data/preprocess.cpp), older artifacts get the C++
image-folder defaults with a warning, and skd_loader's eval transform equals the C++ one
(src/data/eval_transform.cpp) and torchvision's bit for bit. No C++ apps needed: the artifacts are
written here (hostile_artifacts.py) and the transform is checked against
tests/fixtures/transforms/expected.safetensors (torchvision 0.14 + PIL 9.4 outputs) and against direct
float32 computations. The transform tests need Pillow and are skipped without it. With SKD_BIN (the
built apps), skd-eval's logits on an image folder are compared with model(model.transform(image)) too."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import warnings
from unittest import mock

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_artifacts as ha  # noqa: E402
import skd_loader  # noqa: E402
from skd_loader import ArtifactError, PreprocessError, PreprocessWarning  # noqa: E402
from skd_loader import preprocess as pp  # noqa: E402

try:
    from PIL import Image
except ImportError:
    Image = None

torch.set_num_threads(1)
NEEDS_PIL = unittest.skipIf(Image is None, "Pillow (PIL) is not installed in this interpreter: the eval transform "
                                           "needs it (pip install pillow, or apt-get install python3-pil)")
BIN = os.environ.get("SKD_BIN", "")
# The hostile-sized models' patch embedding and head are scaled up so that their logits change visibly
# with the input (a wrong preprocessing moves them by ~1e-3, skd-eval's own differs by ~1e-7).
SENSITIVITY = 10.0
STEMS = ("gray_320x240.png", "landscape_500x375.png", "photo_640x480.jpg", "portrait_300x400.png", "small_64x48.png")
EXPECTED = os.path.join("tests", "fixtures", "transforms", "expected.safetensors")


def source_dir():
    """The checkout: two levels above python/tests, else SKD_SOURCE_DIR."""
    here = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    for root in (here, os.environ.get("SKD_SOURCE_DIR", "")):
        if root and os.path.isfile(os.path.join(root, EXPECTED)):
            return root
    raise unittest.SkipTest(f"no {EXPECTED} two levels above {__file__} nor under SKD_SOURCE_DIR")


def fixture(name):
    return os.path.join(source_dir(), "tests", "fixtures", "transforms", name)


def f32(x):
    return torch.tensor(x, dtype=torch.float32)


def direct(img, mean, std):
    """ToTensor + Normalize as torchvision computes them, with torch float32 ops: a PIL RGB or L image ->
    (x / 255 - mean) / std, [C, H, W]."""
    w, h = img.size
    c = len(mean)
    x = torch.tensor(list(img.tobytes()), dtype=torch.uint8).view(h, w, c).permute(2, 0, 1).contiguous()
    x = x.to(torch.float32).div(255)
    return x.sub(torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)).div(
        torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))


def entry(channels=3, size=224, **changes):
    p = pp.default_preprocess(channels, size)
    p.update(changes)
    return p


@NEEDS_PIL
class Fixtures(unittest.TestCase):
    """The default 3-channel transform against torchvision's outputs for the five fixture images."""

    @classmethod
    def setUpClass(cls):
        cls.expected, _ = skd_loader.load_file(fixture("expected.safetensors"))
        cls.transform = skd_loader.eval_transform(entry())

    def test_default_transform_equals_torchvision(self):
        for name in STEMS:
            stem = name.rsplit(".", 1)[0]
            want = self.expected[f"{stem}.normalized"]
            with self.subTest(image=name):
                with Image.open(fixture(name)) as img:
                    got = self.transform(img)
                self.assertEqual(got.dtype, torch.float32)
                self.assertEqual(list(got.shape), [3, 224, 224])
                self.assertTrue(got.is_contiguous())
                self.assertLessEqual((got - want).abs().max().item(), 1e-6)
                self.assertTrue(torch.equal(self.transform(fixture(name)), got))  # a path works too

    def test_crop_equals_torchvision_uint8(self):
        for name in STEMS:
            stem = name.rsplit(".", 1)[0]
            with self.subTest(image=name), Image.open(fixture(name)) as img:
                crop = pp.center_crop(pp.resize_shorter_side(img.convert("RGB"), 256), 224)
                want = self.expected[f"{stem}.resized_crop_uint8"]
                self.assertEqual(list(crop.tobytes()), want.reshape(-1).tolist())


@NEEDS_PIL
class Variants(unittest.TestCase):
    """crop_pct, interpolation and one channel, against direct computations."""

    @classmethod
    def setUpClass(cls):
        with Image.open(fixture("landscape_500x375.png")) as img:
            cls.landscape = img.convert("RGB")
        with Image.open(fixture("photo_640x480.jpg")) as img:
            cls.photo = img.convert("RGB")

    def resizes(self, transform, img):
        """(output, [(size, filter) of every PIL resize call])."""
        calls = []
        original = Image.Image.resize

        def spy(im, size, resample=None, *args, **kw):
            calls.append((tuple(size), resample))
            return original(im, size, resample, *args, **kw)
        with mock.patch.object(Image.Image, "resize", spy):
            out = transform(img)
        return out, calls

    def reference(self, img, p, resized):
        """The crop and normalization of a resize to `resized` (w, h) with the entry's filter, computed here."""
        s = p["input_size"][1]
        r = img.resize(resized, pp._filter(Image, p["interpolation"]))
        left, top = int(round((resized[0] - s) / 2.0)), int(round((resized[1] - s) / 2.0))
        return direct(r.crop((left, top, left + s, top + s)), p["mean"], p["std"])

    def test_resize_size(self):
        for size, crop_pct, want in ((224, 0.875, 256), (224, 0.9, 248), (224, 1.0, 224), (224, 0.95, 235),
                                     (132, 0.55, 239), (384, 1, 384), (8, 0.05, 160)):
            self.assertEqual(pp.resize_size(size, crop_pct), want, (size, crop_pct))
        self.assertEqual(skd_loader.eval_transform(entry(crop_pct=0.9)).resize_size, 248)

    def test_crop_pct(self):
        # landscape 500 x 375: the shorter side 375 -> int(224 / crop_pct), the longer int(R * 500 / 375)
        for crop_pct, resized in ((0.9, (330, 248)), (1.0, (298, 224)), (0.875, (341, 256))):
            with self.subTest(crop_pct=crop_pct):
                p = entry(crop_pct=crop_pct)
                out, calls = self.resizes(skd_loader.eval_transform(p), self.landscape)
                self.assertEqual(calls, [(resized, pp._filter(Image, "bicubic"))])
                self.assertEqual(list(out.shape), [3, 224, 224])
                self.assertTrue(torch.equal(out, self.reference(self.landscape, p, resized)))
        # portrait: the width is the shorter side
        with Image.open(fixture("portrait_300x400.png")) as img:
            _, calls = self.resizes(skd_loader.eval_transform(entry(crop_pct=0.9)), img)
        self.assertEqual(calls[0][0], (248, int(248 * 400 / 300)))

    def test_interpolations(self):
        outs = {}
        for interpolation in ("bicubic", "bilinear", "nearest"):
            with self.subTest(interpolation=interpolation):
                p = entry(interpolation=interpolation)
                out, calls = self.resizes(skd_loader.eval_transform(p), self.photo)
                self.assertEqual(calls, [((341, 256), pp._filter(Image, interpolation))])
                self.assertTrue(torch.equal(out, self.reference(self.photo, p, (341, 256))))
                outs[interpolation] = out
        self.assertFalse(torch.equal(outs["bicubic"], outs["bilinear"]))
        self.assertFalse(torch.equal(outs["bilinear"], outs["nearest"]))

    def test_one_channel(self):
        p = entry(channels=1, size=64, crop_pct=0.9, interpolation="bilinear")
        transform = skd_loader.eval_transform(p)
        out = transform(self.photo)  # an RGB image: converted by PIL's convert("L")
        self.assertEqual(list(out.shape), [1, 64, 64])
        self.assertTrue(out.is_contiguous())
        gray = self.photo.convert("L")
        self.assertTrue(torch.equal(out, self.reference(gray, p, (94, 71))))  # 64 / 0.9 -> 71, 71 * 640 / 480
        with Image.open(fixture("gray_320x240.png")) as img:  # an L image stays as it is
            self.assertTrue(torch.equal(transform(img), self.reference(img.convert("L"), p, (94, 71))))

    def test_center_crop_pads_a_small_image(self):
        img = Image.new("RGB", (5, 3), (255, 255, 255))
        out = pp.center_crop(img, 8)
        self.assertEqual(out.size, (8, 8))
        x = torch.tensor(list(out.tobytes())).view(8, 8, 3)[:, :, 0]
        want = torch.zeros(8, 8, dtype=x.dtype)
        want[2:5, 1:6] = 255  # left (8 - 5) // 2 = 1, right 2; top (8 - 3) // 2 = 2, bottom 3
        self.assertTrue(torch.equal(x, want))
        # one side too small: padded to 10 x 8 (top 2, bottom 2), then cropped at left round(2 / 2) = 1
        img = Image.new("L", (10, 4), 0)
        img.putpixel((0, 0), 9)
        img.putpixel((1, 0), 7)
        out = pp.center_crop(img, 8)
        self.assertEqual(out.size, (8, 8))
        self.assertEqual(out.getpixel((0, 2)), 7)
        self.assertEqual(out.getpixel((0, 1)), 0)

    def test_center_crop_offsets_round_half_to_even(self):
        img = Image.new("L", (240, 240))
        img.putdata([i % 251 for i in range(240 * 240)])
        for w, left in ((227, 2), (229, 2), (231, 4), (225, 0), (224, 0)):  # round(1.5) = 2, round(2.5) = 2
            im = img.crop((0, 0, w, w))
            self.assertEqual(pp.center_crop(im, 224).tobytes(), im.crop((left, left, left + 224, left + 224)).tobytes())

    def test_normalization_against_float32(self):
        levels = bytes(range(256))
        rgb = Image.frombytes("RGB", (256, 1), bytes(b for v in levels for b in (v, 255 - v, (v * 7) % 256)))
        gray = Image.frombytes("L", (16, 16), levels)
        for img, mean, std in ((rgb, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                               (rgb, [0.1234567, 0.5, 1e-3], [0.3, 7.0, 0.0123]),
                               (gray, [pp.GRAY_MEAN], [pp.GRAY_STD]), (gray, [0.2860], [0.3530])):
            with self.subTest(mode=img.mode, mean=mean):
                got = pp.to_normalized_tensor(img, mean, std)
                self.assertEqual(got.dtype, torch.float32)
                self.assertTrue(torch.equal(got, direct(img, mean, std)))

    def test_small_image_upscaled(self):
        with Image.open(fixture("small_64x48.png")) as img:
            out, calls = self.resizes(skd_loader.eval_transform(entry(crop_pct=1.0)), img)
        self.assertEqual(calls[0][0], (298, 224))
        self.assertEqual(list(out.shape), [3, 224, 224])

    def test_refusals_of_the_transform(self):
        t = skd_loader.eval_transform(entry())
        with self.assertRaisesRegex(TypeError, "PIL.Image.Image or a path"):
            t(torch.zeros(3, 8, 8))
        with self.assertRaisesRegex(ValueError, "aspect ratio beyond 64:1"):
            t(Image.new("RGB", (650, 10)))
        four = skd_loader.eval_transform({"input_size": [4, 8, 8], "interpolation": "bicubic", "crop_pct": 1,
                                          "mean": [0.5] * 4, "std": [0.5] * 4})
        with self.assertRaisesRegex(ValueError, "4-channel input"):
            four(self.photo)


class WithoutPil(unittest.TestCase):
    def test_missing_pil_is_a_clear_error(self):
        t = skd_loader.eval_transform(entry())
        with mock.patch.dict(sys.modules, {"PIL": None, "PIL.Image": None}):
            with self.assertRaisesRegex(ImportError, "pip install pillow.*python3-pil"):
                t("image.png")


class Defaults(unittest.TestCase):
    def test_gray_defaults_are_the_float32_expressions(self):
        mean = f32(0.299) * f32(0.485) + f32(0.587) * f32(0.456) + f32(0.114) * f32(0.406)
        std = f32(0.299) * f32(0.229) + f32(0.587) * f32(0.224) + f32(0.114) * f32(0.225)
        self.assertEqual(pp.GRAY_MEAN, mean.item())
        self.assertEqual(pp.GRAY_STD, std.item())
        self.assertIs(type(pp.GRAY_MEAN), float)
        self.assertNotEqual(pp.GRAY_MEAN, 0.299 * 0.485 + 0.587 * 0.456 + 0.114 * 0.406)  # not the double value
        self.assertEqual(pp.default_preprocess(1, 32),
                         {"input_size": [1, 32, 32], "interpolation": "bicubic", "crop_pct": 0.875,
                          "crop_mode": "center", "mean": [mean.item()], "std": [std.item()]})

    def test_rgb_defaults(self):
        self.assertEqual(pp.default_preprocess(3, 224),
                         {"input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.875,
                          "crop_mode": "center", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})

    def test_no_default_for_other_channel_counts(self):
        for c in (2, 4, 64):
            self.assertIsNone(pp.default_preprocess(c, 32))


class Manifest(unittest.TestCase):
    """The "preprocess" entry of an artifact: accepted, refused (one test per rule, the key named), absent."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.header, cls.data, cls.manifest = ha.artifact_parts()  # ViT, in_chans 1, img_size 8
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def file(self, manifest, header=None, data=None):
        type(self).n += 1
        blob = ha.raw_file(ha.with_manifest(header or self.header, manifest), data or self.data)
        return ha.write(os.path.join(self.dir.name, f"p{self.n}.safetensors"), blob)

    def with_entry(self, value=ha.preprocess_for, **changes):
        """The manifest with the preprocess entry `value` (default: the valid one with `changes`)."""
        m = json.loads(json.dumps(self.manifest))
        m["preprocess"] = ha.preprocess_for(ha.VIT_CONFIG, **changes) if value is ha.preprocess_for else value
        return m

    def refuse(self, manifest, key, regex="."):
        """load, read_manifest and read_artifact all refuse the file, naming it and `key`."""
        path = self.file(manifest)
        for fn in (skd_loader.load, skd_loader.read_manifest, skd_loader.read_artifact):
            with self.subTest(reader=fn.__name__):
                with self.assertRaises(ArtifactError) as cm:
                    fn(path)
                self.assertEqual(cm.exception.key, key)
                self.assertIn(os.path.basename(path), str(cm.exception))
                self.assertRegex(str(cm.exception), regex)
        return cm.exception

    def load_quietly(self, manifest, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("error", PreprocessWarning)
            return skd_loader.load(self.file(manifest), **kw)

    # --- accepted ----------------------------------------------------------------------------------

    def test_valid_entry(self):
        model = self.load_quietly(self.manifest)
        self.assertEqual(model.preprocess, pp.default_preprocess(1, 8))
        self.assertIsInstance(model.transform, skd_loader.EvalTransform)
        self.assertEqual(model.transform.preprocess, model.preprocess)
        p = entry(channels=1, size=8, interpolation="nearest", crop_pct=1, mean=[0.25], std=[2])
        model = self.load_quietly(self.with_entry(p))
        self.assertEqual(model.preprocess, dict(p, crop_pct=1.0, mean=[0.25], std=[2.0]))
        self.assertIs(type(model.preprocess["crop_pct"]), float)
        for crop_pct in (0.05, 1.0):
            self.load_quietly(self.with_entry(crop_pct=crop_pct))

    def test_crop_mode_optional(self):
        model = self.load_quietly(self.with_entry(crop_mode=None))
        self.assertEqual(model.preprocess["crop_mode"], "center")

    def test_sub_network_has_the_same_preprocessing(self):
        header, data, manifest = ha.artifact_parts(supernet=True)
        manifest["preprocess"]["crop_pct"] = 0.9
        path = self.file(manifest, header, data)
        full = skd_loader.load(path)
        budget = full.manifest["macs"]["paper"]
        for kw in ({"op_code": -1}, {"op_code": 1}, {"widths": [[2, 8], [4, 8]]}, {"macs": budget}):
            with self.subTest(**{k: str(v) for k, v in kw.items()}):
                sub = skd_loader.load(path, **kw)
                self.assertEqual(sub.preprocess, full.preprocess)
                self.assertEqual(sub.preprocess["crop_pct"], 0.9)
                self.assertEqual(sub.transform.resize_size, 8)

    def test_graph_input_accepted(self):
        m = json.loads(json.dumps(self.manifest))
        for value in ("normalized", "unit", "uint8"):
            m["graph_input"] = value
            self.load_quietly(m)
        m["graph_input"] = 1
        self.refuse(m, "graph_input", "manifest key 'graph_input' is number .*expected string")

    @NEEDS_PIL
    def test_model_on_transformed_image(self):
        model = self.load_quietly(self.manifest)
        with Image.open(fixture("photo_640x480.jpg")) as img:
            x = model.transform(img).unsqueeze(0)
            self.assertEqual(list(x.shape), [1, 1, 8, 8])
            self.assertTrue(torch.equal(x[0], skd_loader.eval_transform(model.preprocess)(img)))
        with torch.no_grad():
            self.assertEqual(list(model(x).shape), [1, 3])

    # --- refused ----------------------------------------------------------------------------------------

    def test_not_an_object(self):
        for value, kind in (([1, 8, 8], "array"), ("bicubic", "string"), (1, "number"), (None, "null"),
                            (True, "boolean")):
            with self.subTest(value=value):
                self.refuse(self.with_entry(value), "preprocess",
                            f"manifest key 'preprocess' is {kind} .*expected object")

    def test_unknown_key(self):
        for k in ("resize", "Input_size", "", "crop_pct "):
            with self.subTest(key=k):
                self.refuse(self.with_entry(**{k: 1}), f"preprocess.{k}", "unknown key")

    def test_missing_required_key(self):
        for k in ("input_size", "interpolation", "crop_pct", "mean", "std"):
            with self.subTest(key=k):
                self.refuse(self.with_entry(**{k: None}), f"preprocess.{k}", f"lacks the required key '{k}'")

    def test_input_size_not_three_integers(self):
        for v in ([1, 8], [1, 8, 8, 8], [1.0, 8, 8], [1, 8, 8.0], [True, 8, 8], "1x8x8", {"c": 1}, [1, "8", 8]):
            with self.subTest(value=v):
                self.refuse(self.with_entry(input_size=v), "preprocess.input_size", "list of 3 integers")

    def test_input_size_not_positive(self):
        for v in ([0, 8, 8], [1, 0, 0], [1, -8, -8], [-1, 8, 8]):
            with self.subTest(value=v):
                self.refuse(self.with_entry(input_size=v), "preprocess.input_size", "positive")

    def test_input_size_channels_over_64(self):
        self.refuse(self.with_entry(input_size=[65, 8, 8], mean=[0.5] * 65, std=[0.5] * 65), "preprocess.input_size",
                    "C > 64")

    def test_input_size_not_square(self):
        self.refuse(self.with_entry(input_size=[1, 8, 16]), "preprocess.input_size", "square")

    def test_input_size_over_4096(self):
        self.refuse(self.with_entry(input_size=[1, 4097, 4097]), "preprocess.input_size", "H > 4096")

    def test_input_size_must_match_the_architecture(self):
        e = self.refuse(self.with_entry(input_size=[1, 16, 16]), "preprocess.input_size", "does not match")
        self.assertIn("[1, 16, 16]", str(e))
        self.assertIn("[1, 8, 8]", str(e))
        e = self.refuse(self.with_entry(input_size=[3, 8, 8], mean=[0.5] * 3, std=[0.5] * 3), "preprocess.input_size",
                        "does not match the architecture")
        self.assertIn("[3, 8, 8]", str(e))
        self.assertIn("= [1, 8, 8]", str(e))

    def test_interpolation(self):
        for v in ("lanczos", "Bicubic", "bicubic ", "", 3, None, ["bicubic"]):
            with self.subTest(value=v):
                self.refuse(self.with_entry(value=dict(ha.preprocess_for(ha.VIT_CONFIG), interpolation=v)),
                            "preprocess.interpolation", "must be one of 'bicubic', 'bilinear', 'nearest'")

    def test_crop_pct(self):
        for v in (0.0499, 1.0000001, 0, -0.5, 2, True, "0.875", None, [0.9]):
            with self.subTest(value=v):
                self.refuse(self.with_entry(value=dict(ha.preprocess_for(ha.VIT_CONFIG), crop_pct=v)),
                            "preprocess.crop_pct", r"must be a number in \[0.05, 1.0\]")

    def test_crop_mode(self):
        for v in ("random", "CENTER", "squash", 1, None, True):
            with self.subTest(value=v):
                self.refuse(self.with_entry(value=dict(ha.preprocess_for(ha.VIT_CONFIG), crop_mode=v)),
                            "preprocess.crop_mode", 'must be "center"')

    def test_mean(self):
        for v in ([], [0.5, 0.5], [True], ["0.5"], [None], 0.5, [[0.5]]):
            with self.subTest(value=v):
                self.refuse(self.with_entry(mean=v), "preprocess.mean", "must be a list of 1 finite numbers")

    def test_std(self):
        for v in ([], [0.5, 0.5], [False], ["0.5"], 0.5):
            with self.subTest(value=v):
                self.refuse(self.with_entry(std=v), "preprocess.std", "must be a list of 1 finite numbers")
        for v in ([0], [0.0], [-0.1], [-1e-300]):
            with self.subTest(value=v):
                self.refuse(self.with_entry(std=v), "preprocess.std", "must be positive")

    def test_non_finite_numbers(self):
        """Strict JSON has no NaN/Infinity (the file is refused before); a manifest dict given to
        preprocess_of is checked for them too."""
        for key, v in (("crop_pct", math.nan), ("crop_pct", math.inf), ("mean", [math.nan]), ("std", [math.inf]),
                       ("mean", [10 ** 400])):
            with self.subTest(key=key, value=v):
                with self.assertRaises(ArtifactError) as cm:
                    skd_loader.preprocess_of(self.with_entry(**{key: v}), "m.safetensors")
                self.assertEqual(cm.exception.key, f"preprocess.{key}")
                self.assertIn("m.safetensors", str(cm.exception))

    def test_eval_transform_refuses_what_the_reader_refuses(self):
        with self.assertRaises(PreprocessError) as cm:
            skd_loader.eval_transform(entry(crop_pct=1.5))
        self.assertEqual(cm.exception.key, "preprocess.crop_pct")
        self.assertIsInstance(cm.exception, ValueError)
        with self.assertRaisesRegex(PreprocessError, "no preprocessing given"):
            skd_loader.eval_transform(None)

    # --- absent: the defaults, with a warning --------------------------------------------------------------

    def loaded_with_warning(self, cfg_json):
        header, data, manifest = ha.artifact_parts(cfg_json, preprocess=None)
        self.assertNotIn("preprocess", manifest)
        path = self.file(manifest, header, data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = skd_loader.load(path)
        mine = [w for w in caught if issubclass(w.category, PreprocessWarning)]
        self.assertEqual(len(mine), 1, [str(w.message) for w in caught])
        self.assertIn(os.path.basename(path), str(mine[0].message))
        self.assertEqual(mine[0].filename, __file__)  # points at the caller of load()
        return model, str(mine[0].message), manifest

    def test_no_entry_one_channel_defaults(self):
        model, msg, manifest = self.loaded_with_warning(ha.VIT_CONFIG)
        self.assertIn("has no preprocess entry: using the defaults", msg)
        self.assertEqual(model.preprocess, {"input_size": [1, 8, 8], "interpolation": "bicubic", "crop_pct": 0.875,
                                            "crop_mode": "center", "mean": [pp.GRAY_MEAN], "std": [pp.GRAY_STD]})
        self.assertIsInstance(model.transform, skd_loader.EvalTransform)
        with self.assertWarnsRegex(PreprocessWarning, "x.safetensors has no preprocess entry: using the defaults"):
            self.assertEqual(skd_loader.preprocess_of(manifest, "x.safetensors"), model.preprocess)

    def test_no_entry_three_channel_defaults(self):
        model, msg, _ = self.loaded_with_warning(dict(ha.SWIN_CONFIG, in_chans=3))
        self.assertIn("has no preprocess entry: using the defaults", msg)
        self.assertEqual(model.preprocess, pp.default_preprocess(3, 16))
        self.assertEqual(model.preprocess["mean"], [0.485, 0.456, 0.406])

    def test_no_entry_no_default_for_other_channels(self):
        model, msg, _ = self.loaded_with_warning(dict(ha.VIT_CONFIG, in_chans=2))
        self.assertIn("no default preprocessing for 2-channel input", msg)
        self.assertIsNone(model.preprocess)
        with self.assertRaisesRegex(ValueError, "has no preprocess entry and there is no default preprocessing for "
                                                "2-channel input"):
            model.transform("image.png")
        with torch.no_grad():  # the model itself works
            self.assertEqual(list(model(torch.zeros(1, 2, 8, 8)).shape), [1, 3])


@NEEDS_PIL
@unittest.skipUnless(BIN, "SKD_BIN (the built apps) is not set: skd-eval on an image folder is not compared")
class AgainstSkdEval(unittest.TestCase):
    """skd-eval --data FOLDER --save-outputs gives the logits of model(model.transform(image)) for each
    image of a small image folder (the transform fixtures: PNGs in class a, the JPEG in class b), and
    with --save-inputs the images as the model got them (the C++ eval transform) equal the transform's
    output within 1e-6."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.root = os.path.join(cls.dir.name, "images")
        cls.files = []
        for cls_name, ext in (("a", ".png"), ("b", ".jpg")):
            os.makedirs(os.path.join(cls.root, "val", cls_name))
            for name in sorted(n for n in STEMS if n.endswith(ext)):
                cls.files.append(shutil.copy(fixture(name), os.path.join(cls.root, "val", cls_name, name)))

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def compare(self, name, cfg_json, preprocess=True):
        manifest = ha.manifest_for(cfg_json, preprocess=preprocess)
        weights = ha.weights_for(cfg_json)
        weights["patch_embed.proj.weight"] *= SENSITIVITY  # logits that change visibly with the input
        weights["head.weight"] *= SENSITIVITY
        header, data = ha.header_and_data(weights, {"format": "pt", "skd_manifest": json.dumps(manifest)})
        path = ha.write(os.path.join(self.dir.name, name + ".safetensors"), ha.raw_file(header, data))
        out = os.path.join(self.dir.name, name + ".out.safetensors")
        r = subprocess.run([os.path.join(BIN, "skd-eval"), "--model", path, "--data", self.root, "--split", "val",
                            "--save-outputs", out, "--save-inputs", "--threads", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        t, _ = skd_loader.load_file(out)
        order = torch.argsort(t["indices"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PreprocessWarning)
            model = skd_loader.load(path)
        x = torch.stack([model.transform(f) for f in self.files])
        cpp_x = t["inputs"][order]  # the C++ eval transform's output
        self.assertEqual(list(cpp_x.shape), list(x.shape))
        self.assertLessEqual((cpp_x - x).abs().max().item(), 1e-6, name)
        with torch.no_grad():
            py = model(x)
        cpp = t["logits"][order]
        self.assertEqual(list(cpp.shape), list(py.shape))
        self.assertLessEqual((cpp - py).abs().max().item(), 1e-5, name)

    def test_default_preprocessing(self):
        for channels in (3, 1):
            cfg = dict(ha.VIT_CONFIG, img_size=32, in_chans=channels)
            with self.subTest(channels=channels, entry=True):
                self.compare(f"default{channels}", cfg)
            with self.subTest(channels=channels, entry=False):
                self.compare(f"no_entry{channels}", cfg, preprocess=None)

    def test_the_entry_is_used(self):
        """Non-default entries (bilinear / nearest, crop_pct 0.9 / 1, another mean and std): skd-eval
        applies them as the transform does."""
        cfg = dict(ha.VIT_CONFIG, img_size=32, in_chans=3)
        for interpolation, crop_pct in (("bilinear", 0.9), ("nearest", 1.0)):
            with self.subTest(interpolation=interpolation):
                p = entry(channels=3, size=32, interpolation=interpolation, crop_pct=crop_pct, mean=[0.5, 0.4, 0.3],
                          std=[0.2, 0.3, 0.4])
                self.compare(f"entry_{interpolation}", cfg, preprocess=p)


if __name__ == "__main__":
    unittest.main()
