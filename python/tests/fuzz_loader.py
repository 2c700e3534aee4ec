"""Property-based fuzzing of skd_loader (issue 25): a seeded mutator corrupts valid artifacts (bit
flips, truncation, header length, tensor offsets, dtype swaps, huge or odd dims, deep nesting,
duplicate keys, NaN literals and weights, manifest and mask-table edits) thousands of times; for
every mutant the loader (load, read_manifest, load_file) either succeeds or raises only the loader's
own errors (SkdLoaderError), never another exception, never hangs (an alarm per case), and never
builds a module larger than the file bounds (check_params_fit) nor grows the process by more than
MAX_RSS_GROWTH_MB. With SKD_BIN set, a sample of the mutants is also given to the C++ reader
(skd-eval --model FILE --summary): its verdict (exit 0 or not) must equal the Python loader's.

Not named test_*.py: tests/e2e/python_loader_fuzz.sh (ctest e2e.python_loader_fuzz) runs it once,
under one interpreter. By hand:
    SKD_BIN=build/apps python3 python/tests/fuzz_loader.py
Env: SKD_FUZZ_SEED (default 25), SKD_FUZZ_CASES (4000), SKD_FUZZ_SECONDS (12: stop early after this
long), SKD_FUZZ_CROSS (24 mutants cross-checked with the C++; 0 = none), SKD_FUZZ_KEEP (a folder:
keep the disagreeing files there).
"""
import json
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_artifacts as ha  # noqa: E402
import skd_loader  # noqa: E402
from skd_loader import SkdLoaderError, safetensors_io  # noqa: E402

torch.set_num_threads(1)
SEED = int(os.environ.get("SKD_FUZZ_SEED", "25"))
CASES = int(os.environ.get("SKD_FUZZ_CASES", "4000"))
SECONDS = float(os.environ.get("SKD_FUZZ_SECONDS", "12"))
CROSS = int(os.environ.get("SKD_FUZZ_CROSS", "24"))
BIN = os.environ.get("SKD_BIN", "")
KEEP = os.environ.get("SKD_FUZZ_KEEP", "")
CASE_TIMEOUT_S = 10
MIN_CASES = 500
MAX_RSS_GROWTH_MB = 400
# Refusals the Python loader makes on purpose where the C++ (at the time of writing) reads on:
# a manifest nested deeper than 256 levels or with duplicate keys (nlohmann's DOM parser takes
# both). Swin masks beyond MAX_DERIVED_BUFFER_BYTES are refused by both (validate).
PYTHON_STRICTER = ("deeper than 256", "duplicate key")

HUGE = [1 << 31, (1 << 31) - 1, 1 << 32, (1 << 53) + 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64, 10 ** 30,
        -1, -(1 << 63), 0, 1, 2, 3, 7, 255, 4096, 4097, 16384, 16385, 65536]
ODD = [1.5, 0.0, -0.0, 1e308, "7", "", None, True, False, [], {}, [7, 7], [7, 8], {"a": 1}, "vit", "swin"]
DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8", "f32", "", "F32 "]


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def _deep(n, opener="[", closer="]"):
    return opener * n + closer * n


def _number_spans(text):
    out, i = [], 0
    while i < len(text):
        if text[i] in "-0123456789" and (i == 0 or text[i - 1] in ":,[ "):
            j = i + 1
            while j < len(text) and text[j] in "0123456789.eE+-":
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


class Mutator:
    def __init__(self, rng, bases):
        self.rng = rng
        self.bases = bases

    def value(self):
        r = self.rng.random()
        if r < 0.5:
            return self.rng.choice(HUGE)
        if r < 0.9:
            return self.rng.choice(ODD)
        return json.loads(_deep(self.rng.choice([3, 50, 300])))

    def mutate(self):
        """(file bytes, description, base index) of one mutant."""
        idx = self.rng.randrange(len(self.bases))
        header, data, manifest = self.bases[idx]
        header = json.loads(json.dumps(header))
        manifest = json.loads(json.dumps(manifest))
        steps = [self.rng.choice(self.STRUCTURED) for _ in range(self.rng.choice([1, 1, 1, 2, 3]))]
        desc = []
        manifest_text = None
        for step in steps:
            try:
                r = step(self, header, manifest)
            except (KeyError, TypeError, IndexError, AttributeError, ValueError):
                continue  # an earlier step removed what this one edits
            if isinstance(r, tuple):  # (desc, data or manifest text)
                desc.append(r[0])
                if isinstance(r[1], bytes):
                    data = r[1]
                else:
                    manifest_text = r[1]
            else:
                desc.append(r)
        meta = header.get("__metadata__")
        if isinstance(meta, dict) and "skd_manifest" in meta:
            meta["skd_manifest"] = manifest_text if manifest_text is not None else json.dumps(manifest)
        text = json.dumps(header, separators=(",", ":"))
        blob = ha.raw_file(text, data)
        r = self.rng.random()
        if r < 0.5 and manifest_text is None and not desc:
            r = 0.0  # every mutant is mutated somehow
        if r < 0.35:
            blob, d = self.bytes_level(blob, len(text))
            desc.append(d)
        elif r < 0.5:
            blob, d = self.text_level(text, data)
            desc.append(d)
        return blob, "; ".join(desc), idx

    # --- structured mutations of the header (tensor entries) --------------------------------------

    def tensor_key(self, header):
        keys = [k for k in header if k != "__metadata__"]
        return self.rng.choice(keys) if keys else None

    def m_offsets(self, header, manifest):
        k = self.tensor_key(header)
        b, e = header[k]["data_offsets"]
        choice = self.rng.randrange(6)
        new = [[e, b], [b, e + self.rng.choice([-4, -1, 1, 4])], [b + 4, e + 4], [b, self.value()],
               [self.value(), e], [b - 4, e - 4]][choice]
        header[k]["data_offsets"] = new
        return f"offsets {k} -> {new}"

    def m_overlap(self, header, manifest):
        a, b = self.tensor_key(header), self.tensor_key(header)
        header[a]["data_offsets"] = list(header[b]["data_offsets"])
        if self.rng.random() < 0.5:
            header[a]["shape"] = list(header[b]["shape"])
            header[a]["dtype"] = header[b]["dtype"]
        return f"overlap {a} onto {b}"

    def m_dtype(self, header, manifest):
        k = self.tensor_key(header)
        d = self.rng.choice(DTYPES)
        header[k]["dtype"] = d
        if self.rng.random() < 0.5 and d in safetensors_io._ITEMSIZE:  # keep the byte size consistent
            n = (header[k]["data_offsets"][1] - header[k]["data_offsets"][0]) // safetensors_io._ITEMSIZE[d]
            header[k]["shape"] = [n]
        return f"dtype {k} -> {d}"

    def m_shape(self, header, manifest):
        k = self.tensor_key(header)
        s = list(header[k]["shape"])
        c = self.rng.randrange(5)
        if c == 0 and s:
            s[self.rng.randrange(len(s))] = self.value()
        elif c == 1:
            s.append(self.rng.choice([0, 1, 2, 1 << 40]))
        elif c == 2:
            s = s[:-1]
        elif c == 3:
            s = [1 << 62, 1 << 62]
        else:
            s = list(reversed(s))
        header[k]["shape"] = s
        return f"shape {k} -> {str(s)[:60]}"

    def m_entry(self, header, manifest):
        k = self.tensor_key(header)
        c = self.rng.randrange(4)
        if c == 0:
            del header[k][self.rng.choice(["dtype", "shape", "data_offsets"])]
        elif c == 1:
            header[k]["extra"] = 1
        elif c == 2:
            header[k] = self.value()
        else:
            del header[k]
        return f"entry {k} edit {c}"

    def m_metadata(self, header, manifest):
        c = self.rng.randrange(3)
        if c == 0:
            header["__metadata__"]["x"] = self.value()
        elif c == 1:
            del header["__metadata__"]["skd_manifest"]
        else:
            header["__metadata__"]["skd_train_state"] = "1"
        return f"metadata edit {c}"

    # --- the manifest ------------------------------------------------------------------------------

    def m_config(self, header, manifest):
        cfg = manifest["config"]
        c = self.rng.randrange(5)
        keys = ["img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads", "mlp_ratio",
                "qkv_bias", "norm_eps", "attn_scale", "attn_scale_folded", "window_size", "depths", "widths",
                "family", "name", "model_name", "class_token", "global_pool", "pretrained"]
        k = self.rng.choice(keys)
        if c == 0:
            cfg.pop(k, None)
            return f"config del {k}"
        if c == 1:
            cfg[self.rng.choice(["dropout", "Depth", ""])] = 1
            return "config unknown key"
        if c == 2 and isinstance(cfg.get(k), (int, float)) and not isinstance(cfg.get(k), bool):
            cfg[k] = cfg[k] * self.rng.choice([2, 4, 16, 1024, -1, 0.5])
            return f"config {k} scaled -> {cfg[k]}"
        if c == 3 and isinstance(cfg.get(k), list) and cfg[k]:
            lst = cfg[k]
            lst[self.rng.randrange(len(lst))] = self.value()
            return f"config {k}[i] -> {str(lst)[:60]}"
        cfg[k] = self.value()
        return f"config {k} -> {str(cfg[k])[:60]}"

    def m_manifest(self, header, manifest):
        c = self.rng.randrange(5)
        if c == 0:
            manifest["format_version"] = self.rng.choice([0, 2, "1", 1.0, True, None, (1 << 64) - 1, -1])
        elif c == 1:
            manifest["format"] = self.rng.choice(["skd", None, 1, "skd-artifact "])
        elif c == 2:
            manifest.pop(self.rng.choice(["config", "format", "format_version", "widths", "attn_scale"]), None)
        elif c == 3:
            manifest[self.rng.choice(["widths", "attn_scale", "macs", "provenance"])] = self.value()
        else:
            manifest["provenance"] = json.loads(_deep(self.rng.choice([10, 255, 256, 400])))
        return f"manifest edit {c}"

    def m_mask_table(self, header, manifest):
        t = manifest.get("mask_table")
        if not isinstance(t, dict) or not t:
            manifest["mask_table"] = self.value()
            return "mask_table set"
        mod = self.rng.choice(sorted(t))
        c = self.rng.randrange(4)
        if c == 0:
            del t[mod]
        elif c == 1:
            t[mod][self.rng.choice(["0", "1", "2", "-1", "3", "01", "+1", " 1"])] = self.value()
        elif c == 2:
            t[mod] = {"-1": 1}
        else:
            manifest["op_codes"] = self.value()
        return f"mask_table {mod} edit {c}"

    def m_manifest_text(self, header, manifest):
        text = json.dumps(manifest)
        c = self.rng.randrange(4)
        if c == 0:
            spans = _number_spans(text)
            if spans:
                b, e = self.rng.choice(spans)
                text = text[:b] + self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-0", "1" * 400]) + text[e:]
        elif c == 1:
            text = text[:-1] + ', "format": "skd-artifact"}'
        elif c == 2:
            i = self.rng.randrange(len(text))
            text = text[:i] + self.rng.choice(["\ud800", "\x00", "{", "]", '"', "\\", "\ufeff"]) + text[i + 1:]
        else:
            text = text[:self.rng.randrange(len(text))]
        return f"manifest text edit {c}", text

    STRUCTURED = [m_offsets, m_overlap, m_dtype, m_shape, m_entry, m_metadata, m_config, m_config, m_config,
                  m_manifest, m_mask_table, m_manifest_text]

    # --- raw bytes / text ------------------------------------------------------------------------------

    def bytes_level(self, blob, header_len):
        blob = bytearray(blob)
        c = self.rng.randrange(5)
        if c == 0:  # bit flips, mostly in the header
            for _ in range(self.rng.randint(1, 8)):
                i = self.rng.randrange(8 + header_len) if self.rng.random() < 0.7 else self.rng.randrange(len(blob))
                blob[i] ^= 1 << self.rng.randrange(8)
            return bytes(blob), "bit flips"
        if c == 1:
            n = self.rng.randrange(len(blob) + 1)
            return bytes(blob[:n]), f"truncate at {n}"
        if c == 2:
            n = self.rng.choice([0, 1, 7, header_len - 1, header_len + 1, header_len + 8, len(blob), (1 << 64) - 1,
                                 (100 << 20) + 1, self.rng.randrange(1 << 32)])
            blob[:8] = struct.pack("<Q", n)
            return bytes(blob), f"header length -> {n}"
        if c == 3:  # non-finite or random values in the data block
            base = 8 + header_len
            if len(blob) - base >= 4:
                i = base + 4 * self.rng.randrange((len(blob) - base) // 4)
                blob[i:i + 4] = struct.pack("<f", self.rng.choice([float("nan"), float("inf"), -float("inf"), 1e30]))
            return bytes(blob), "non-finite weight"
        blob += bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 64)))
        return bytes(blob), "trailing bytes"

    def text_level(self, text, data):
        c = self.rng.randrange(5)
        if c == 0:
            t = text[:-1] + ',"__metadata__":{}}'
        elif c == 1:
            t = text[:-1] + ',"x":' + _deep(self.rng.choice([1, 2, 3, 1000])) + "}"
        elif c == 2:
            spans = _number_spans(text)
            b, e = self.rng.choice(spans)
            t = text[:b] + self.rng.choice(["NaN", "1e999", "-1", "1.0", "18446744073709551616", "0x10"]) + text[e:]
        elif c == 3:
            i = self.rng.randrange(len(text))
            t = text[:i] + self.rng.choice(["\\ud800", "\\u0000", "\x01", "\u00e9", " ", ","]) + text[i:]
        else:
            t = " " + text
        return ha.raw_file(t, data, pad=self.rng.random() < 0.8), f"header text edit {c}"


def _try(fn, *args, **kw):
    """'ok', or 'refused: <message>'; anything else than SkdLoaderError propagates."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        fn(*args, **kw)
        return "ok"
    except SkdLoaderError as e:
        return f"refused: {e}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def cpp_verdict(path):
    r = subprocess.run([f"{BIN}/skd-eval", "--model", path, "--summary", "--threads", "1"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors="replace", timeout=120)
    return ("ok" if r.returncode == 0 else "refused"), r.stdout.strip().splitlines()[-1:] if r.stdout else []


class Fuzz(unittest.TestCase):
    def test_mutants_load_or_raise_loader_errors(self):
        bases = [ha.artifact_parts(ha.VIT_CONFIG), ha.artifact_parts(ha.SWIN_CONFIG),
                 ha.artifact_parts(ha.VIT_CONFIG, supernet=True)]
        rng = random.Random(SEED)
        mut = Mutator(rng, bases)
        built = []
        real_build = skd_loader.build_model

        def counting_build(cfg, widths, scales):
            m = real_build(cfg, widths, scales)
            built.append(sum(p.numel() for p in m.parameters()))
            return m
        skd_loader.build_model = counting_build
        self.addCleanup(setattr, skd_loader, "build_model", real_build)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stats = {"ok": 0, "refused": 0}
        kinds = {}
        cross = []  # (path, python verdict, description)
        failures = []
        work = tempfile.mkdtemp(prefix="skd_fuzz_")
        self.addCleanup(shutil.rmtree, work, True)
        start = time.monotonic()
        slowest = (0.0, "")
        n = 0
        cross_every = max(1, CASES // (2 * max(CROSS, 1)))
        for n in range(1, CASES + 1):
            blob, desc, idx = mut.mutate()
            path = os.path.join(work, f"m{n}.safetensors")
            ha.write(path, blob)
            t0 = time.monotonic()
            built.clear()
            try:
                kw = {}
                if idx == 2 and rng.random() < 0.3:
                    kw = {"op_code": rng.choice([0, 1, 2, -1])}
                verdict = _try(skd_loader.load, path, **kw)
                _try(skd_loader.read_manifest, path)
                _try(safetensors_io.load_file, path)
            except Timeout:
                failures.append(f"case {n} ({desc}): no verdict within {CASE_TIMEOUT_S} s")
                continue
            except Exception as e:  # noqa: BLE001 - the property under test
                failures.append(f"case {n} ({desc}): {type(e).__name__}: {str(e)[:200]}")
                continue
            dt = time.monotonic() - t0
            slowest = max(slowest, (dt, desc))
            bound = 2 * (len(blob) // 1) + (1 << 20)  # elements: check_params_fit over at most len(blob) elements
            if built and built[-1] > bound:
                failures.append(f"case {n} ({desc}): built {built[-1]} parameters from a {len(blob)}-byte file")
            key = verdict.split(":")[0]
            stats[key] += 1
            if key == "refused":
                kind = verdict.split(": ", 2)[-1][:40]
                kinds[kind] = kinds.get(kind, 0) + 1
            # the C++ sample: half loaded mutants (the rarer verdict), half every k-th mutant
            loaded_kept = sum(1 for c in cross if c[1] == "ok")
            if BIN and CROSS and not kw and len(cross) < CROSS and (
                    (key == "ok" and loaded_kept < CROSS // 2) or (key == "refused" and n % cross_every == 0)):
                cross.append((path, verdict, desc))
            else:
                os.unlink(path)
            if time.monotonic() - start > SECONDS and n >= MIN_CASES:
                break
        elapsed = time.monotonic() - start
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        print(f"\nfuzz: seed {SEED}, {n} mutants in {elapsed:.1f} s: {stats['ok']} loaded, {stats['refused']} refused; "
              f"slowest case {slowest[0] * 1000:.0f} ms ({slowest[1][:60]}); max RSS grew {grown:.0f} MB", file=sys.stderr)
        for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {count:5d}  {kind}", file=sys.stderr)
        self.assertFalse(failures, "\n".join(failures[:20]))
        self.assertGreaterEqual(n, MIN_CASES)
        self.assertLess(grown, MAX_RSS_GROWTH_MB)

        if not cross:
            return
        agree, stricter, disagree = 0, [], []
        for path, py, desc in cross:
            cpp, tail = cpp_verdict(path)
            pyk = py.split(":")[0]
            if cpp == pyk:
                agree += 1
            elif pyk == "refused" and cpp == "ok" and any(s in py for s in PYTHON_STRICTER):
                stricter.append(f"{desc}: {py[:160]}")
            else:
                disagree.append(f"{desc}: python {py[:200]} | C++ {cpp} {tail}")
                if KEEP:
                    os.makedirs(KEEP, exist_ok=True)
                    shutil.copy(path, KEEP)
        print(f"cross-check with skd-eval --summary: {len(cross)} mutants, {agree} same verdict, {len(stricter)} "
              f"refused only by Python on purpose, {len(disagree)} disagree", file=sys.stderr)
        for s in stricter:
            print(f"  python-only refusal: {s}", file=sys.stderr)
        self.assertFalse(disagree, "\n".join(disagree))


if __name__ == "__main__":
    unittest.main()
