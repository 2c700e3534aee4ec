"""Small valid SKD artifacts written in Python (no C++ apps needed), and raw safetensors writing for
corrupting them: used by test_hostile.py and fuzz_loader.py."""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import skd_loader  # noqa: E402
from skd_loader import config as skd_config  # noqa: E402
from skd_loader import preprocess as skd_preprocess  # noqa: E402
from skd_loader.safetensors_io import _NAMES  # noqa: E402

VIT_CONFIG = {"family": "vit", "name": "vit_hostile", "img_size": 8, "patch_size": 4, "in_chans": 1,
              "num_classes": 3, "embed_dim": 8, "mlp_ratio": 2.0, "qkv_bias": True, "norm_eps": 1e-6, "depth": 2,
              "num_heads": 2}
SWIN_CONFIG = {"family": "swin", "name": "swin_hostile", "img_size": 16, "patch_size": 2, "in_chans": 1,
               "num_classes": 3, "embed_dim": 8, "mlp_ratio": 2.0, "qkv_bias": True, "norm_eps": 1e-5,
               "depths": [2, 2], "num_heads": [2, 4], "window_size": 4}
# A super-network's mask table for VIT_CONFIG (head dim 4, MLP 16): codes 0..2.
MASK_TABLE = {"0.attn": {"0": 4, "1": 4, "2": 2, "-1": 2}, "0.mlp": {"0": 16, "1": 8, "2": 0, "-1": 0},
              "1.attn": {"0": 4, "1": 2, "2": 0, "-1": 0}, "1.mlp": {"0": 16, "1": 16, "2": 8, "-1": 8}}


def preprocess_for(cfg_json, **changes):
    """The "preprocess" entry the C++ writes for `cfg_json` (the defaults of its channels and size), with
    `changes` (None deletes a key)."""
    cfg = skd_config.config_from_json(cfg_json)
    entry = skd_preprocess.default_preprocess(cfg["in_chans"], cfg["img_size"])
    if entry is None:  # no default for this channel count: a made-up normalization
        entry = {"input_size": [cfg["in_chans"], cfg["img_size"], cfg["img_size"]], "interpolation": "bicubic",
                 "crop_pct": 0.875, "crop_mode": "center", "mean": [0.5] * cfg["in_chans"],
                 "std": [0.25] * cfg["in_chans"]}
    for k, v in changes.items():
        if v is None:
            entry.pop(k, None)
        else:
            entry[k] = v
    return entry


def manifest_for(cfg_json, supernet=False, preprocess=True):
    """A valid manifest. `preprocess`: True = the default entry (as every artifact the apps write now has),
    None = no entry (an artifact written before it existed), a dict (or any value) = that entry."""
    cfg = skd_config.config_from_json(cfg_json)
    cost = skd_config.macs_count(cfg)
    m = {"format": "skd-artifact", "format_version": 1, "family": cfg["family"], "config": cfg_json,
         "widths": skd_config.stored_widths(cfg), "attn_scale": skd_config.attention_scales(cfg),
         "macs": {"paper": cost["macs_paper"], "full": cost["macs_full"], "params": cost["params"]},
         "provenance": {"source": "python/tests/hostile_artifacts.py"}}
    if preprocess is True:
        m["preprocess"] = preprocess_for(cfg_json)
    elif preprocess is not None:
        m["preprocess"] = preprocess
    if supernet:
        table = skd_loader.mask_table.table_from_json(MASK_TABLE, skd_config.stored_widths(cfg))
        m["mask_table"] = MASK_TABLE
        m["op_codes"] = [dict(code=c, **skd_config.macs_count(cfg, w)) for c, w in enumerate(table)]
    return m


def weights_for(cfg_json, seed=0):
    cfg = skd_config.config_from_json(cfg_json)
    g = torch.Generator().manual_seed(seed)
    shapes = skd_loader.expected_shapes(cfg, skd_config.stored_widths(cfg))
    return {k: torch.randn(*s, generator=g) * 0.1 for k, s in shapes.items()}


def header_and_data(tensors, metadata):
    """(header dict, data bytes) laid out as save_file does."""
    header, chunks, offset = {}, [], 0
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[key] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    return header, b"".join(chunks)


def raw_file(header, data, pad=True):
    """Bytes of a safetensors file: `header` a dict (dumped) or str/bytes (as is), then `data`."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8", "surrogatepass")
    if pad:
        header += b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + data


def artifact_parts(cfg_json=None, supernet=False, seed=0, preprocess=True):
    """(header dict, data bytes, manifest dict) of a valid artifact (`preprocess` as in manifest_for)."""
    cfg_json = dict(cfg_json or VIT_CONFIG)
    manifest = manifest_for(cfg_json, supernet, preprocess)
    header, data = header_and_data(weights_for(cfg_json, seed), {"format": "pt",
                                                                  "skd_manifest": json.dumps(manifest)})
    return header, data, manifest


def with_manifest(header, manifest):
    h = json.loads(json.dumps(header))
    h["__metadata__"]["skd_manifest"] = manifest if isinstance(manifest, str) else json.dumps(manifest)
    return h


def write(path, blob):
    with open(path, "wb") as f:
        f.write(blob)
    return path
