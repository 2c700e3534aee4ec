"""skd_loader against the C++ toolkit: artifacts written by the built apps load into torch modules
whose logits equal `skd-eval --inputs ... --save-outputs` within 1e-5 (fp32).

Needs the built apps: env SKD_BIN (folder with skd-convert, skd-extract, skd-eval), SKD_FIXTURES
(tests/fixtures), SKD_SOURCE_DIR (the checkout). The artifacts and C++ outputs are made once into
SKD_LOADER_WORK (default: a temp folder) and reused by a second interpreter run on the same folder.
Runs under unittest (python3 -m unittest discover -s python/tests) or pytest.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import skd_loader  # noqa: E402
from skd_loader import safetensors_io  # noqa: E402

ATOL = 1e-5
torch.set_num_threads(1)
BIN = os.environ.get("SKD_BIN", "")
FIX = os.path.join(os.environ.get("SKD_FIXTURES", ""), "timm")
SRC = os.environ.get("SKD_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
WORK = os.environ.get("SKD_LOADER_WORK") or tempfile.mkdtemp(prefix="skd_loader_")

# vit_micro_32: 4 blocks, head dim 16, MLP 256. Codes 0..3 shrink modules; code 3 removes the MLP
# of block 0 and the attention of block 2.
_CODES = {  # module: widths at codes 0, 1, 2, 3
    "0.attn": [16, 16, 16, 16], "0.mlp": [256, 256, 256, 0],
    "1.attn": [16, 16, 8, 8], "1.mlp": [256, 256, 128, 128],
    "2.attn": [16, 16, 16, 0], "2.mlp": [256, 192, 192, 192],
    "3.attn": [16, 16, 4, 4], "3.mlp": [256, 64, 64, 64],
}
# The official schema: code strings "0", "-1" (= the last code), "1", ..., "3".
MASK_TABLE = {k: {"0": v[0], "-1": v[-1], **{str(c): v[c] for c in range(1, len(v))}} for k, v in _CODES.items()}
SUPER_CODES = [0, 2, 3]


def path(name):
    return os.path.join(WORK, name)


def run(*args):
    if "--threads" not in args:  # one thread: tiny models, and a loaded machine makes thread pools crawl
        args = args + ("--threads", "1")
    r = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout}")
    return r.stdout


def cpp_outputs(artifact, inputs, out):
    run(f"{BIN}/skd-eval", "--model", artifact, "--inputs", inputs, "--save-outputs", out)


def make_artifacts():
    """Every artifact and C++ output the tests compare with (once per work folder)."""
    done = path("done")
    if os.path.exists(done):
        return
    g = torch.Generator().manual_seed(0)
    # The embedded Fashion-MNIST model (1 channel, 28 px) and a sub-network of it without the MLP of
    # block 1 and the attention of block 4, cut by --widths.
    safetensors_io.save_file({"input": torch.randn(3, 1, 28, 28, generator=g)}, path("fmnist_in.safetensors"))
    emb = os.path.join(SRC, "assets", "vit_fmnist.safetensors")
    run(f"{BIN}/skd-extract", "--model", emb, "--widths", "32:256,16:0,8:128,32:256,0:64,32:256",
        "--out", path("fmnist_sub.safetensors"))
    # vit_micro_32 as a super-network (mask table attached by skd-convert) and its extracted codes.
    with open(path("mask_table.json"), "w") as f:
        json.dump(MASK_TABLE, f)
    run(f"{BIN}/skd-convert", "--model", f"{FIX}/vit_micro_32.pth", "--arch", f"{FIX}/vit_micro_32.json",
        "--mask-table", path("mask_table.json"), "--out", path("vit_super.safetensors"))
    for code in SUPER_CODES:
        run(f"{BIN}/skd-extract", "--supernet", path("vit_super.safetensors"), "--op-code", code,
            "--out", path(f"vit_c{code}.safetensors"))
    # Swin: the fixture model as an artifact, and a sub-network with a removed attention branch (a
    # shifted block) and a removed MLP, cut by --widths.
    run(f"{BIN}/skd-convert", "--model", f"{FIX}/swin_micro_32.pth", "--arch", f"{FIX}/swin_micro_32.json",
        "--out", path("swin.safetensors"))
    run(f"{BIN}/skd-extract", "--model", path("swin.safetensors"), "--widths", "8:64,0:128,16:0,5:200",
        "--out", path("swin_sub.safetensors"))
    jobs = [("assets_vit_fmnist", emb, "fmnist_in"), ("fmnist_sub", path("fmnist_sub.safetensors"), "fmnist_in"),
            ("swin", path("swin.safetensors"), None), ("swin_sub", path("swin_sub.safetensors"), None)]
    jobs += [(f"vit_c{c}", path(f"vit_c{c}.safetensors"), None) for c in SUPER_CODES]
    for name, artifact, inp in jobs:
        fixture = "swin_micro_32" if name.startswith("swin") else "vit_micro_32"
        inputs = path(f"{inp}.safetensors") if inp else f"{FIX}/{fixture}.input.safetensors"
        cpp_outputs(artifact, inputs, path(f"{name}.cpp.safetensors"))
    open(done, "w").close()


@unittest.skipUnless(BIN and os.path.isdir(BIN), "SKD_BIN (the built apps) is not set")
class LoaderMatchesCpp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        make_artifacts()

    def compare(self, model, inputs, cpp, keys=("logits", "features", "forward_features")):
        x = safetensors_io.load_file(inputs)[0]["input"]
        want, _ = safetensors_io.load_file(cpp)
        with torch.no_grad():
            feats = model.forward_features(x)
            got = {"forward_features": feats, "features": model.forward_head(feats, pre_logits=True),
                   "logits": model(x)}
        for k in keys:
            self.assertEqual(tuple(got[k].shape), tuple(want[k].shape), k)
            diff = (got[k] - want[k]).abs().max().item()
            self.assertLessEqual(diff, ATOL, f"{k}: max |python - C++| = {diff}")
        return got["logits"]

    def test_embedded_model(self):
        m = skd_loader.load(os.path.join(SRC, "assets", "vit_fmnist.safetensors"))
        self.assertEqual(m.config["in_chans"], 1)
        self.compare(m, path("fmnist_in.safetensors"), path("assets_vit_fmnist.cpp.safetensors"))

    def test_vit_subnetwork_with_removed_branches(self):
        m = skd_loader.load(path("fmnist_sub.safetensors"))
        self.assertEqual(m.widths[1], [16, 0])
        self.assertFalse(hasattr(m.blocks[1], "mlp"))
        self.assertFalse(hasattr(m.blocks[4], "attn"))
        self.compare(m, path("fmnist_in.safetensors"), path("fmnist_sub.cpp.safetensors"))

    def test_swin_fixture_model(self):
        m = skd_loader.load(path("swin.safetensors"))
        self.compare(m, f"{FIX}/swin_micro_32.input.safetensors", path("swin.cpp.safetensors"))

    def test_swin_subnetwork_with_removed_branches(self):
        m = skd_loader.load(path("swin_sub.safetensors"))
        self.assertEqual(m.widths, [[8, 64], [0, 128], [16, 0], [5, 200]])
        self.compare(m, f"{FIX}/swin_micro_32.input.safetensors", path("swin_sub.cpp.safetensors"))

    def test_python_slicing_equals_skd_extract_widths(self):
        """load(widths=...) slices in Python what skd-extract --widths wrote (ViT and Swin, removed branches)."""
        vit = skd_loader.load(os.path.join(SRC, "assets", "vit_fmnist.safetensors"),
                              widths=[[32, 256], [16, 0], [8, 128], [32, 256], [0, 64], [32, 256]])
        self.compare(vit, path("fmnist_in.safetensors"), path("fmnist_sub.cpp.safetensors"))
        swin = skd_loader.load(path("swin.safetensors"), widths=[[8, 64], [0, 128], [16, 0], [5, 200]])
        self.assertFalse(hasattr(swin.layers[0].blocks[1], "attn"))
        self.assertFalse(hasattr(swin.layers[1].blocks[0], "mlp"))
        self.compare(swin, f"{FIX}/swin_micro_32.input.safetensors", path("swin_sub.cpp.safetensors"))
        with self.assertRaisesRegex(ValueError, r"block 0 asks for \(64, 64\)"):
            skd_loader.load(path("swin.safetensors"), widths=[[64, 64], [0, 128], [16, 0], [5, 200]])

    def test_extracted_codes(self):
        for code in SUPER_CODES:
            with self.subTest(code=code):
                m = skd_loader.load(path(f"vit_c{code}.safetensors"))
                self.compare(m, f"{FIX}/vit_micro_32.input.safetensors", path(f"vit_c{code}.cpp.safetensors"))

    def test_supernet_op_code_equals_extracted(self):
        """Slicing in Python by the artifact's mask table gives the model skd-extract wrote."""
        for code in SUPER_CODES:
            with self.subTest(code=code):
                m = skd_loader.load(path("vit_super.safetensors"), op_code=code)
                self.assertEqual(m.op_code, code)
                self.assertEqual(m.widths, [[MASK_TABLE[f"{i}.attn"][str(code)], MASK_TABLE[f"{i}.mlp"][str(code)]]
                                            for i in range(4)])
                self.compare(m, f"{FIX}/vit_micro_32.input.safetensors", path(f"vit_c{code}.cpp.safetensors"))
        smallest = skd_loader.load(path("vit_super.safetensors"), op_code=-1)
        self.assertEqual(smallest.op_code, 3)

    def test_macs_budget_picks_the_code_skd_extract_records(self):
        sub = skd_loader.read_manifest(path("vit_c2.safetensors"))
        code = skd_loader.op_code_for_macs(skd_loader.read_manifest(path("vit_super.safetensors")),
                                           sub["macs"]["paper"])
        self.assertEqual(code, sub["provenance"]["op_code"])
        m = skd_loader.load(path("vit_super.safetensors"), macs=sub["macs"]["paper"])
        self.assertEqual(m.op_code, 2)

    def test_traced_module_equals_eager(self):
        """The module has no data-dependent control flow: torch.jit.trace (and torch.export where the
        installed torch has it) reproduces the eager logits."""
        m = skd_loader.load(path("swin_sub.safetensors"))
        x = safetensors_io.load_file(f"{FIX}/swin_micro_32.input.safetensors")[0]["input"]
        with torch.no_grad():
            eager = m(x)
            traced = torch.jit.trace(m, (x,))
            self.assertLessEqual((traced(x) - eager).abs().max().item(), ATOL)
        if hasattr(torch, "export") and hasattr(torch.export, "export"):
            ep = torch.export.export(m, (x,))
            with torch.no_grad():
                self.assertLessEqual((ep.module()(x) - eager).abs().max().item(), ATOL)

    def test_onnx_export_runs_in_onnxruntime(self):
        """torch.onnx.export of a loaded Swin sub-network, run by onnxruntime, equals the eager logits.
        Debian's torch 1.13 exports without extra packages but has no onnxruntime; the torch 2.x
        environment has onnxruntime but its exporter needs the onnx package: the first interpreter
        exports into the shared work folder, the second runs the file."""
        m = skd_loader.load(path("swin_sub.safetensors"))
        x = safetensors_io.load_file(f"{FIX}/swin_micro_32.input.safetensors")[0]["input"]
        f = path("swin_sub.onnx")
        exported = False
        kwargs = {"dynamo": False} if int(torch.__version__.split(".")[0]) >= 2 else {}
        try:
            torch.onnx.export(m, (x,), f + ".tmp", input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}}, opset_version=17, **kwargs)
            os.replace(f + ".tmp", f)
            exported = True
        except Exception as e:  # torch 2.x without the onnx package
            if not os.path.exists(f):
                self.skipTest(f"torch.onnx.export unavailable under torch {torch.__version__}: {e}")
        try:
            import onnxruntime
        except ImportError:
            if exported:
                return  # run by an interpreter that has onnxruntime
            self.skipTest("no onnxruntime")
        sess = onnxruntime.InferenceSession(f, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            eager = m(x)
        for batch in (x, x[:1]):
            got = torch.from_numpy(sess.run(None, {"input": batch.numpy()})[0])
            self.assertLessEqual((got - eager[:batch.shape[0]]).abs().max().item(), ATOL)


class LoaderErrors(unittest.TestCase):
    def test_foreign_safetensors_is_named(self):
        f = os.path.join(os.environ.get("SKD_FIXTURES", ""), "timm", "vit_micro_32.safetensors")
        if not os.path.exists(f):
            self.skipTest("SKD_FIXTURES not set")
        with self.assertRaisesRegex(skd_loader.ArtifactError, "vit_micro_32.safetensors.*skd_manifest"):
            skd_loader.load(f)

    def test_truncated_file(self):
        with tempfile.TemporaryDirectory() as d:
            good = os.path.join(d, "a.safetensors")
            safetensors_io.save_file({"w": torch.arange(6, dtype=torch.float32).view(2, 3)}, good, {"k": "v"})
            t, meta = safetensors_io.load_file(good)
            self.assertTrue(torch.equal(t["w"], torch.arange(6, dtype=torch.float32).view(2, 3)))
            self.assertEqual(meta, {"k": "v"})
            blob = open(good, "rb").read()
            bad = os.path.join(d, "b.safetensors")
            with open(bad, "wb") as f:
                f.write(blob[:-4])
            with self.assertRaisesRegex(safetensors_io.SafetensorsError, "b.safetensors: tensor 'w': data_offsets"):
                safetensors_io.load_file(bad)

    def test_roundtrip_dtypes(self):
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "t.safetensors")
            src = {"bf16": torch.randn(4, 3).to(torch.bfloat16), "i64": torch.arange(5), "u8": torch.arange(7).byte(),
                   "f16": torch.randn(2).half(), "empty": torch.zeros(0, 3)}
            safetensors_io.save_file(src, f)
            got, _ = safetensors_io.load_file(f)
            for k, v in src.items():
                self.assertEqual(got[k].dtype, v.dtype, k)
                self.assertTrue(torch.equal(got[k], v), k)

    @unittest.skipUnless(BIN and os.path.isdir(BIN), "SKD_BIN not set")
    def test_unknown_op_code(self):
        make_artifacts()
        with self.assertRaisesRegex(skd_loader.ArtifactError, r"op code 9 is not in the mask table \(codes 0..3"):
            skd_loader.load(path("vit_super.safetensors"), op_code=9)
        with self.assertRaisesRegex(skd_loader.ArtifactError, "no 'mask_table'"):
            skd_loader.load(path("vit_c2.safetensors"), op_code=1)


if __name__ == "__main__":
    unittest.main()
