"""Hostile input (issue 25): skd_loader refuses what the C++ readers refuse (src/io/safetensors.cpp,
src/models/checkpoint.cpp, config.cpp, mask_table.cpp), with its own error types naming the file and
the key, and checks sizes against the file before it allocates. One test per refusal class, on files
made here from a small valid artifact (hostile_artifacts.py); no C++ apps needed."""
import json
import os
import resource
import struct
import sys
import tempfile
import unittest
from unittest import mock

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_artifacts as ha  # noqa: E402
import skd_loader  # noqa: E402
from skd_loader import ArtifactError, FormatError, SafetensorsError, SkdLoaderError  # noqa: E402
from skd_loader import safetensors_io  # noqa: E402

torch.set_num_threads(1)


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.header, cls.data, cls.manifest = ha.artifact_parts()
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def file(self, blob):
        type(self).n += 1
        return ha.write(os.path.join(self.dir.name, f"f{self.n}.safetensors"), blob)

    def refuse(self, blob, exc, regex, key=None, **kw):
        """Loading `blob` raises `exc` (a FormatError) whose message names the file and matches `regex`."""
        path = self.file(blob)
        with self.assertRaises(exc) as cm:
            skd_loader.load(path, **kw)
        e = cm.exception
        self.assertIsInstance(e, FormatError)
        self.assertIsInstance(e, ValueError)
        self.assertIn(os.path.basename(path), str(e))
        self.assertRegex(str(e), regex)
        if key is not None:
            self.assertEqual(e.key, key)
        return e

    def loads(self, blob, **kw):
        return skd_loader.load(self.file(blob), **kw)

    def entry(self, key, **fields):
        """The artifact with tensor `key`'s entry fields replaced (None deletes a field)."""
        h = json.loads(json.dumps(self.header))
        for f, v in fields.items():
            if v is None:
                del h[key][f]
            else:
                h[key][f] = v
        return ha.raw_file(h, self.data)

    def config(self, **changes):
        """The artifact with manifest config keys replaced (None deletes a key); its preprocess entry
        follows a valid architecture's input size, so that what is refused is the change itself."""
        m = json.loads(json.dumps(self.manifest))
        for k, v in changes.items():
            if v is None:
                m["config"].pop(k, None)
            else:
                m["config"][k] = v
        try:
            m["preprocess"] = ha.preprocess_for(m["config"])
        except skd_loader.ConfigError:
            pass  # refused as a config anyway
        return ha.raw_file(ha.with_manifest(self.header, m), self.data)

    def manifest_with(self, **changes):
        m = json.loads(json.dumps(self.manifest))
        for k, v in changes.items():
            if v is None:
                m.pop(k, None)
            else:
                m[k] = v
        return m

    # --- a valid artifact, and what the C++ accepts too ---------------------------------------------

    def test_valid_artifact_loads(self):
        m = self.loads(ha.raw_file(self.header, self.data))
        self.assertEqual(m.widths, [[4, 16], [4, 16]])

    def test_error_hierarchy(self):
        for exc in (SafetensorsError, ArtifactError):
            self.assertTrue(issubclass(exc, FormatError))
        self.assertTrue(issubclass(FormatError, SkdLoaderError) and issubclass(SkdLoaderError, ValueError))

    def test_accepted_like_cpp_gaps_unaligned_module_prefix(self):
        """Gaps between tensors, unaligned offsets and a DDP 'module.' prefix: the C++ reads them."""
        h = json.loads(json.dumps(self.header))
        data = b""
        for k in sorted(k for k in h if k != "__metadata__"):
            b, e = h[k]["data_offsets"]
            data += b"\x00" * 3  # a 3-byte gap: every tensor starts unaligned
            h[k]["data_offsets"] = [len(data), len(data) + e - b]
            data += self.data[b:e]
        self.loads(ha.raw_file(h, data))
        prefixed = {("module." + k if k != "__metadata__" else k): v for k, v in self.header.items()}
        self.loads(ha.raw_file(prefixed, self.data))

    # --- safetensors framing and header ---------------------------------------------------------------

    def test_too_short(self):
        self.refuse(b"\x01\x00", SafetensorsError, "too short for the 8-byte header length")

    def test_header_length_beyond_file(self):
        blob = ha.raw_file(self.header, self.data)
        self.refuse(struct.pack("<Q", len(blob)) + blob[8:], SafetensorsError, "exceeds the .* bytes that follow")

    def test_header_over_100_mib(self):
        n = (100 << 20) + 8
        path = os.path.join(self.dir.name, "big.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", n))
            f.truncate(8 + n)  # sparse
        with self.assertRaisesRegex(SafetensorsError, "exceeds the limit of 104857600 bytes"):
            skd_loader.load(path)

    def test_header_not_json(self):
        for text in (b"{\"a\":", b"{\xff}", b"{\"x\": NaN}", b"{\"x\": 1e999}", b'{"\\ud800": 1}', b"[]"):
            with self.subTest(text=text):
                self.refuse(ha.raw_file(text, b""), SafetensorsError, "header (is not valid JSON|must be a JSON object)")

    def test_header_nesting_and_duplicates(self):
        self.refuse(ha.raw_file('{"a": {"shape": [[1]]}}', b""), SafetensorsError, "deeper than 3 levels")
        self.refuse(ha.raw_file('{"__metadata__": {"a": "1"}, "__metadata__": {}}', b""), SafetensorsError,
                    "duplicate key")
        self.refuse(ha.raw_file('{"w": {"dtype": "F32", "dtype": "F32", "shape": [], "data_offsets": [0, 4]}}',
                                b"\0" * 4), SafetensorsError, "duplicate key")

    def test_entry_fields(self):
        k = "head.weight"
        self.refuse(self.entry(k, extra=1), SafetensorsError, "unexpected field 'extra'", key=k)
        self.refuse(self.entry(k, shape=None), SafetensorsError, 'missing field "shape"', key=k)
        h = json.loads(json.dumps(self.header))
        h[k] = [1, 2]
        self.refuse(ha.raw_file(h, self.data), SafetensorsError, "entry must be an object", key=k)

    def test_unknown_dtype(self):
        self.refuse(self.entry("head.bias", dtype="F8"), SafetensorsError, "unknown dtype 'F8'", key="head.bias")
        self.refuse(self.entry("head.bias", dtype=4), SafetensorsError, '"dtype" must be a string')

    def test_bad_shape(self):
        for shape in ([-3], [3.0], [True, 3], [1 << 63], "3"):
            with self.subTest(shape=shape):
                self.refuse(self.entry("head.bias", shape=shape), SafetensorsError, "shape", key="head.bias")
        self.refuse(self.entry("head.bias", shape=[1 << 62, 1 << 62]), SafetensorsError, "overflows")

    def test_bad_offsets(self):
        b, e = self.header["head.bias"]["data_offsets"]
        cases = [([b], "must be \\[begin, end\\]"), ([b, -1], "must be \\[begin, end\\]"),
                 ([e, b], "begin after end"), ([b, len(self.data) + 4], "exceed the data block"),
                 ([b, e + 4], "need 12"), ([b, float(e)], "must be \\[begin, end\\]")]
        for offsets, msg in cases:
            with self.subTest(offsets=offsets):
                self.refuse(self.entry("head.bias", data_offsets=offsets), SafetensorsError, msg, key="head.bias")

    def test_overlapping_offsets(self):
        h = json.loads(json.dumps(self.header))
        h["head.bias"]["data_offsets"] = h["norm.bias"]["data_offsets"][:]
        h["head.bias"]["shape"] = h["norm.bias"]["shape"][:]
        self.refuse(ha.raw_file(h, self.data), SafetensorsError, "overlap tensor")
        # a zero-size tensor inside another one (not at its boundary) overlaps it too
        h = json.loads(json.dumps(self.header))
        b, e = h["norm.bias"]["data_offsets"]
        h["empty"] = {"dtype": "F32", "shape": [0], "data_offsets": [b + 4, b + 4]}
        self.refuse(ha.raw_file(h, self.data), SafetensorsError, "overlap")

    def test_metadata_not_strings(self):
        h = json.loads(json.dumps(self.header))
        h["__metadata__"]["n"] = 1
        self.refuse(ha.raw_file(h, self.data), SafetensorsError, "__metadata__.* must be a string", key="n")
        h["__metadata__"] = ["x"]
        self.refuse(ha.raw_file(h, self.data), SafetensorsError, "must be an object of strings")

    def test_torch_save_file(self):
        self.refuse(b"PK\x03\x04" + b"\0" * 60, ArtifactError, "torch.save file")

    # --- the manifest ------------------------------------------------------------------------------

    def test_no_manifest(self):
        h = json.loads(json.dumps(self.header))
        del h["__metadata__"]["skd_manifest"]
        self.refuse(ha.raw_file(h, self.data), ArtifactError, "no 'skd_manifest'", key="skd_manifest")

    def test_manifest_json(self):
        for text, msg in (("{", "not valid JSON"), ('{"format": NaN}', "not valid JSON"),
                          ("[" * 300 + "]" * 300, "deeper than 256"),
                          ('{"format": "skd-artifact", "format": "skd-artifact", "format_version": 1}', "duplicate")):
            with self.subTest(msg=msg):
                self.refuse(ha.raw_file(ha.with_manifest(self.header, text), self.data), ArtifactError, msg)

    def test_format_and_version(self):
        self.refuse(ha.raw_file(ha.with_manifest(self.header, self.manifest_with(format="other")), self.data),
                    ArtifactError, "not an skd-artifact manifest", key="format")
        for v in (2, 0, "1", 1.0, True, None, (1 << 64) - 1):
            with self.subTest(version=v):
                m = self.manifest_with(format_version=v)
                self.refuse(ha.raw_file(ha.with_manifest(self.header, m), self.data), ArtifactError,
                            "format_version .* is not supported", key="format_version")

    def test_manifest_key_types(self):
        # parse_manifest's kShapes: a key the readers rely on, of another JSON type, names the key.
        for key, value, kind in (("mask_table", 2, "number"), ("provenance", -1, "number"),
                                 ("config", "vit", "string"), ("widths", {}, "object"),
                                 ("attn_scale_folded", 1, "number"), ("family", ["vit"], "array")):
            with self.subTest(key=key):
                m = self.manifest_with(**{key: value})
                self.refuse(ha.raw_file(ha.with_manifest(self.header, m), self.data), ArtifactError,
                            f"manifest key '{key}' is {kind} .*, expected", key=key)

    # --- the architecture (config_from_json / validate) ------------------------------------------------

    def test_config_missing_or_unknown_keys(self):
        self.refuse(ha.raw_file(ha.with_manifest(self.header, self.manifest_with(config=None)), self.data),
                    ArtifactError, "no 'config'", key="config")
        self.refuse(self.config(depths=[2]), ArtifactError, "Swin keys but family is vit")
        self.refuse(self.config(dropout=0.1), ArtifactError, "unsupported architecture key 'dropout'")
        self.refuse(self.config(family="resnet"), ArtifactError, "must be \"vit\" or \"swin\"")
        self.refuse(self.config(model_name="resnet50"), ArtifactError, "unknown architecture")
        self.refuse(self.config(embed_dim="8"), ArtifactError, "'embed_dim' must be an integer")
        self.refuse(self.config(qkv_bias=1), ArtifactError, "'qkv_bias' must be true or false")
        self.refuse(self.config(class_token=False), ArtifactError, "class_token")

    def test_config_limits(self):
        """Every bound of validate() (include/skd/models/config.h), before anything is sized."""
        cases = {"img_size": [0, 10, 8192], "patch_size": [0, 3], "in_chans": [0, 65],
                 "num_classes": [0, (1 << 20) + 1], "embed_dim": [0, 7, 16385, -8, (1 << 64) - 8],
                 "mlp_ratio": [0, 16.5, -1], "depth": [0, 257], "num_heads": [0, 3], "norm_eps": [0, -1.0],
                 "attn_scale": [-0.5], "widths": [[[5, 16], [4, 16]], [[4, 16]], [[4, -1], [4, 16]]]}
        for key, values in cases.items():
            for v in values:
                with self.subTest(key=key, value=v):
                    self.refuse(self.config(**{key: v}), ArtifactError, "config", key="config")
        self.refuse(self.config(img_size=4096, patch_size=1), ArtifactError, "patches per side exceeds")
        self.refuse(self.config(attn_scale=0.5, attn_scale_folded=True), ArtifactError, "excludes")

    def test_swin_config_limits(self):
        header, data, manifest = ha.artifact_parts(ha.SWIN_CONFIG)
        self.loads(ha.raw_file(header, data))
        for change in ({"depths": [2, 2, 2]}, {"depths": []}, {"num_heads": [2, 3]}, {"window_size": 0},
                       {"window_size": 3}, {"depths": [1] * 9, "num_heads": [1] * 9}, {"depths": [200, 100]},
                       {"embed_dim": 12000}, {"depth": 4}, {"global_pool": "token"}, {"img_size": 18}):
            with self.subTest(change=change):
                m = json.loads(json.dumps(manifest))
                m["config"].update(change)
                self.refuse(ha.raw_file(ha.with_manifest(header, m), data), ArtifactError, "config")

    # --- sizes before allocation ------------------------------------------------------------------------

    def test_huge_claim_refused_before_building(self):
        """An 11 KB file whose manifest claims a deit_base-sized model: refused by the parameter count
        (check_params_fit), with no module built and no large allocation."""
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with mock.patch.object(skd_loader, "build_model", side_effect=AssertionError("built")):
            for change in ({"embed_dim": 768, "num_heads": 12, "depth": 12, "img_size": 224, "patch_size": 16,
                            "widths": [[64, 1536]] * 12},
                           {"num_classes": 1 << 20}, {"embed_dim": 16384, "num_heads": 2},
                           {"depth": 256, "embed_dim": 256, "mlp_ratio": 16.0, "widths": [[128, 4096]] * 256}):
                with self.subTest(change=sorted(change)):
                    self.refuse(self.config(**change), ArtifactError, "parameters, far more than", key="config")
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        self.assertLess(grown_mb, 64)

    def test_derived_swin_buffers_bounded(self):
        """Swin masks grow with res^2 * window^2 while the parameters barely do: bounded before building."""
        header, data, manifest = ha.artifact_parts(ha.SWIN_CONFIG)
        m = json.loads(json.dumps(manifest))
        m["config"].update(img_size=1024, patch_size=4, window_size=64, embed_dim=8, depths=[2], num_heads=[2])
        with mock.patch.object(skd_loader, "build_model", side_effect=AssertionError("built")), \
                mock.patch.object(skd_loader, "check_weights"), mock.patch.object(skd_loader, "check_params_fit"):
            self.refuse(ha.raw_file(ha.with_manifest(header, m), data), ArtifactError, "precomputed masks")

    def test_legacy_swin_stage_numbers_are_strict(self):
        """The N of a legacy 'layers.N.downsample.*' key is plain digits 0..7 (legacy_stage() in
        checkpoint.cpp); the loader once copied std::stoll's " 1", "+1", "1a"."""
        cfg = {"family": "swin"}
        base = {"layers.0.downsample.reduction.weight": 0, "head.weight": 0}
        for n in ("", " 1", "+1", "1a", "-1", "01", "00", "8", "10", "9" * 20, "\u0661", "1\n", "\uff11"):
            key = f"layers.{n}.downsample.norm.weight"
            with self.subTest(n=n):
                with self.assertRaises(ArtifactError) as cm:
                    skd_loader.normalize_keys(cfg, dict(base, **{key: 0}), "old.pth")
                self.assertEqual(cm.exception.key, key)
                self.assertIn("old.pth", str(cm.exception))
                self.assertIn("the stage number of a legacy Swin key must be 0..7", str(cm.exception))
        for n in ("0", "1", "7"):
            out = skd_loader.normalize_keys(cfg, dict(base, **{f"layers.{n}.downsample.norm.weight": 1}), "old.pth")
            self.assertEqual(out[f"layers.{int(n) + 1}.downsample.norm.weight"], 1)
            self.assertIn("head.fc.weight", out)

    def test_derived_swin_buffers_rule_matches_cpp(self):
        """validate() bounds the buffers at the stored widths as config.cpp does (same numbers as
        SwinWindowBuffersAreBoundedBeforeBuilding in tests/models/config_test.cpp)."""
        from skd_loader import config as skd_config

        def swin(img, patch, window, **kw):
            return dict(family="swin", img_size=img, patch_size=patch, window_size=window, embed_dim=8, depths=[2],
                        num_heads=[2], **kw)
        for window, need in ((64, (1 << 30) + (1 << 27)), (128, (1 << 32) + (1 << 31))):
            with self.assertRaisesRegex(skd_loader.ConfigError,
                                        f"config: img_size 1024 / patch_size 4 with window_size {window} needs {need} "
                                        f"bytes.*more than the limit of 268435456 \\(256 MiB\\)"):
                skd_config.config_from_json(swin(1024, 4, window))
        skd_config.config_from_json(swin(1024, 4, 64, widths=[[0, 32], [0, 32]]))
        skd_config.config_from_json(swin(512, 4, 32))
        tiny = skd_config.config_from_json({"model_name": "swin_tiny"})
        self.assertEqual(skd_config.derived_buffer_bytes(tiny, skd_config.full_widths(tiny)),
                         8 * 2401 + 4 * 49 * (3136 + 784 + 196))

    # --- weights ----------------------------------------------------------------------------------------

    def test_integer_weights(self):
        b, e = self.header["head.bias"]["data_offsets"]
        self.refuse(self.entry("head.bias", dtype="I32"), ArtifactError, "'head.bias' has dtype .*floating",
                    key="head.bias")
        self.refuse(self.entry("head.bias", dtype="U8", shape=[12]), ArtifactError, "'head.bias' has shape")

    def test_non_finite_weights(self):
        b, _ = self.header["norm.weight"]["data_offsets"]
        for value in (float("nan"), float("inf"), float("-inf")):
            with self.subTest(value=value):
                data = bytearray(self.data)
                data[b + 4:b + 8] = struct.pack("<f", value)
                self.refuse(ha.raw_file(self.header, bytes(data)), ArtifactError, "non-finite", key="norm.weight")

    def test_missing_unexpected_and_mis_shaped_keys(self):
        h = json.loads(json.dumps(self.header))
        del h["head.bias"]
        self.refuse(ha.raw_file(h, self.data), ArtifactError, "missing keys \\['head.bias'\\]")
        h = json.loads(json.dumps(self.header))
        h["extra"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
        self.refuse(ha.raw_file(h, self.data), ArtifactError, "unexpected keys \\['extra'\\]")
        self.refuse(self.entry("norm.bias", shape=[2, 4]), ArtifactError, "'norm.bias' has shape \\[2, 4\\]")
        self.refuse(self.entry("blocks.0.attn.qkv.weight", shape=[16, 12]), ArtifactError,
                    "qkv.weight' has shape \\[16, 12\\], expected \\[3\\*2\\*a")

    # --- a super-network's mask table --------------------------------------------------------------------

    def test_mask_table(self):
        header, data, manifest = ha.artifact_parts(supernet=True)
        self.assertEqual(self.loads(ha.raw_file(header, data), op_code=-1).op_code, 2)
        bad = {"missing module": {"0.attn": None}, "unknown module": {"7.mlp": {"0": 1}},
               "gap": {"0.mlp": {"0": 16, "2": 0}}, "grows": {"1.mlp": {"0": 16, "1": 8, "2": 16}},
               "alias": {"0.attn": {"0": 4, "1": 4, "2": 2, "-1": 4}},
               "spelling": {"0.attn": {"0": 4, "01": 4, "2": 2}}, "range": {"0.attn": {"0": 5, "1": 4, "2": 2}},
               "only -1": {"0.attn": {"-1": 2}}, "codes differ": {"0.attn": {"0": 4, "1": 4}}}
        for name, change in bad.items():
            with self.subTest(name=name):
                m = json.loads(json.dumps(manifest))
                for k, v in change.items():
                    if v is None:
                        del m["mask_table"][k]
                    else:
                        m["mask_table"][k] = v
                self.refuse(ha.raw_file(ha.with_manifest(header, m), data), ArtifactError, "mask_table",
                            key="mask_table", op_code=1)
        full = [[4, 16], [4, 16]]
        table = {k: {"0": w, "-1": w} for k, w in (("0.attn", 4), ("0.mlp", 16), ("1.attn", 4), ("1.mlp", 16))}
        for change, regex in (({"0.attn": {"-1": 4}}, "'0.attn' lacks op code 0"),
                              ({"1.mlp": {"-1": 16}}, "'1.mlp' lacks op code 0"),
                              ({"0.mlp": {"0": 16, "1": 8}}, "'0.mlp' has 2 codes where module '0.attn' has 1")):
            with self.subTest(change=change):
                with self.assertRaisesRegex(skd_loader.ConfigError, regex):
                    skd_loader.mask_table.table_from_json(dict(table, **change), full)
        m = json.loads(json.dumps(manifest))
        m["op_codes"][1]["macs_paper"] += 1
        self.refuse(ha.raw_file(ha.with_manifest(header, m), data), ArtifactError, "op_codes code 1: macs_paper",
                    key="op_codes", op_code=1)


class ReadersOnly(unittest.TestCase):
    def test_load_file_and_read_manifest_raise_only_loader_errors(self):
        with tempfile.TemporaryDirectory() as d:
            p = ha.write(os.path.join(d, "x.safetensors"), ha.raw_file('{"a": {"dtype": "F32"}}', b""))
            with self.assertRaisesRegex(SafetensorsError, "x.safetensors: tensor 'a': missing field"):
                safetensors_io.load_file(p)
            with self.assertRaises(SafetensorsError):
                skd_loader.read_manifest(os.path.join(d, "missing.safetensors"))
            with self.assertRaises(SafetensorsError):
                skd_loader.load(d)  # a folder


if __name__ == "__main__":
    unittest.main()
