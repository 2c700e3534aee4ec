"""Loads SKD toolkit artifacts (.safetensors + "skd_manifest") into torch.nn.Module objects.

    import skd_loader
    model = skd_loader.load("sub.safetensors")             # eval mode, float32, CPU
    logits = model(x)                                      # x: [B, in_chans, img, img], normalised
    sub = skd_loader.load("super.safetensors", op_code=134)  # a super-network's sub-network

Only torch and the standard library are needed (torch 1.13 .. 2.x). See python/README.md.
"""
import json

import torch

from .models import block_specs, build_model, default_scales
from .safetensors_io import SafetensorsError, load_file, read_header, save_file

__all__ = ["load", "read_artifact", "read_manifest", "mask_table_widths", "op_code_for_macs", "slice_state_dict",
           "build_model", "load_file", "save_file", "ArtifactError", "SafetensorsError"]

MANIFEST_KEY = "skd_manifest"
# The artifact format versions this loader understands (skd::models::kArtifactFormatVersion).
SUPPORTED_FORMAT_VERSIONS = (1,)


class ArtifactError(ValueError):
    """A file that is not a usable SKD artifact; the message names the file and the key."""


def _manifest_from_metadata(meta, path):
    if MANIFEST_KEY not in meta:
        raise ArtifactError(f"{path}: no '{MANIFEST_KEY}' in the safetensors __metadata__ (not an SKD artifact; "
                            f"convert foreign checkpoints with skd-convert first)")
    try:
        manifest = json.loads(meta[MANIFEST_KEY])
    except ValueError as e:
        raise ArtifactError(f"{path}: __metadata__ '{MANIFEST_KEY}' is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "skd-artifact":
        raise ArtifactError(f"{path}: '{MANIFEST_KEY}' is not an skd-artifact manifest")
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ArtifactError(f"{path}: artifact format_version {version!r} is not supported "
                            f"(this loader reads {SUPPORTED_FORMAT_VERSIONS})")
    if not isinstance(manifest.get("config"), dict):
        raise ArtifactError(f"{path}: manifest has no 'config' object (the architecture)")
    return manifest


def read_manifest(path):
    """The artifact's manifest (a dict), reading only the file's header."""
    header, _ = read_header(path)
    return _manifest_from_metadata(header.get("__metadata__", {}) or {}, path)


def read_artifact(path):
    """(tensors, manifest): the model weights under timm key names (training-state tensors of a
    skd-train checkpoint dropped) and the manifest."""
    tensors, meta = load_file(path)
    manifest = _manifest_from_metadata(meta, path)
    if "skd_train_state" in meta:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("train_state/")}
    return tensors, manifest


def _stored_widths(manifest):
    cfg = manifest["config"]
    widths = cfg.get("widths", manifest.get("widths"))
    if widths is None:
        return [[s.head_dim, s.mlp_hidden] for s in block_specs(cfg)]
    return [[int(a), int(m)] for a, m in widths]


def mask_table_widths(manifest, op_code, path="artifact"):
    """Per-block widths [[a, m], ...] of `op_code` in a super-network's mask table (-1 = the last,
    smallest code). Raises ArtifactError when the manifest has no table or the code is unknown."""
    table = manifest.get("mask_table")
    if not isinstance(table, dict) or not table:
        raise ArtifactError(f"{path}: the manifest has no 'mask_table' (not a super-network)")
    n = len(block_specs(manifest["config"]))
    codes = sorted(int(c) for c in table.get("0.attn", {}) if int(c) >= 0)
    last = codes[-1] if codes else -1
    code = last if op_code == -1 else int(op_code)
    if code < 0 or code > last:
        raise ArtifactError(f"{path}: op code {op_code} is not in the mask table (codes 0..{last}, or -1)")
    out = []
    for i in range(n):
        try:
            out.append([int(table[f"{i}.attn"][str(code)]), int(table[f"{i}.mlp"][str(code)])])
        except KeyError as e:
            raise ArtifactError(f"{path}: mask_table lacks {e} for op code {code}") from None
    return out


def op_code_for_macs(manifest, macs, convention="paper", path="artifact"):
    """The largest sub-network (smallest op code) whose MACs in `convention` ("paper" | "full") are
    <= `macs`, from the manifest's "op_codes" cost table (the same rule as skd-extract --macs)."""
    rows = manifest.get("op_codes")
    if not isinstance(rows, list) or not rows:
        raise ArtifactError(f"{path}: the manifest has no 'op_codes' cost table (not a super-network)")
    key = {"paper": "macs_paper", "full": "macs_full"}.get(convention)
    if key is None:
        raise ValueError(f"convention must be 'paper' or 'full', got {convention!r}")
    fitting = [r["code"] for r in rows if r[key] <= macs]
    if not fitting:
        smallest = min(rows, key=lambda r: r[key])
        raise ArtifactError(f"{path}: {macs} MACs is below the smallest sub-network in the mask table: "
                            f"code {smallest['code']} with {smallest[key]} MACs ({convention})")
    return min(fitting)


def slice_state_dict(tensors, cfg, widths):
    """The leading slices of `tensors` at smaller per-block `widths`: the leading `a` dims of every
    head in q, k, v (rows of qkv, columns of proj) and the leading `m` MLP units (rows of fc1, columns
    of fc2). Branches at width 0 lose their keys (and their LayerNorm). Mirrors skd::models::slice_model."""
    out = dict(tensors)
    for s in block_specs(cfg):
        p = f"blocks.{s.index}." if cfg["family"] == "vit" else None
        if p is None:
            first = sum(cfg["depths"][:s.stage])
            p = f"layers.{s.stage}.blocks.{s.index - first}."
        a, m = widths[s.index]
        H = s.num_heads
        if a == 0:
            for k in [k for k in out if k.startswith(p + "attn.") or k.startswith(p + "norm1.")]:
                del out[k]
        elif p + "attn.qkv.weight" in out:
            w = out[p + "attn.qkv.weight"]
            stored = w.shape[0] // (3 * H)
            out[p + "attn.qkv.weight"] = w.view(3, H, stored, -1)[:, :, :a].reshape(3 * H * a, -1).clone()
            if p + "attn.qkv.bias" in out:
                out[p + "attn.qkv.bias"] = out[p + "attn.qkv.bias"].view(3, H, stored)[:, :, :a].reshape(-1).clone()
            pw = out[p + "attn.proj.weight"]
            out[p + "attn.proj.weight"] = pw.view(pw.shape[0], H, stored)[:, :, :a].reshape(pw.shape[0], H * a).clone()
        if m == 0:
            for k in [k for k in out if k.startswith(p + "mlp.") or k.startswith(p + "norm2.")]:
                del out[k]
        elif p + "mlp.fc1.weight" in out:
            out[p + "mlp.fc1.weight"] = out[p + "mlp.fc1.weight"][:m].clone()
            out[p + "mlp.fc1.bias"] = out[p + "mlp.fc1.bias"][:m].clone()
            out[p + "mlp.fc2.weight"] = out[p + "mlp.fc2.weight"][:, :m].clone()
    return out


def load(path, op_code=None, macs=None, widths=None, convention="paper", device="cpu"):
    """Loads an artifact written by the SKD toolkit (skd-convert, skd-train, skd-extract) as a
    torch.nn.Module in eval mode (float32). For a super-network, at most one of
      op_code: a code of its mask table (0 = full, -1 = smallest),
      macs:    the largest sub-network within this many MACs (`convention` paper | full),
      widths:  per-block [[a, m], ...] (each <= the stored width)
    slices the weights into a standalone smaller model. The returned module has `.manifest` (the
    artifact's manifest), `.widths` (per-block widths it runs at) and `.op_code` (or None)."""
    if sum(x is not None for x in (op_code, macs, widths)) > 1:
        raise ValueError("give at most one of op_code, macs and widths")
    tensors, manifest = read_artifact(path)
    cfg = manifest["config"]
    stored = _stored_widths(manifest)
    scales = manifest.get("attn_scale") or default_scales(cfg)
    if macs is not None:
        op_code = op_code_for_macs(manifest, macs, convention, path)
    if op_code is not None:
        widths = mask_table_widths(manifest, op_code, path)
    run = stored
    if widths is not None:
        run = [[int(a), int(m)] for a, m in widths]
        if len(run) != len(stored):
            raise ValueError(f"widths: {len(run)} blocks given, {path} has {len(stored)}")
        for i, ((a, m), (sa, sm)) in enumerate(zip(run, stored)):
            if a > sa or m > sm or a < 0 or m < 0:
                raise ValueError(f"widths: block {i} asks for ({a}, {m}) but {path} holds ({sa}, {sm})")
        tensors = slice_state_dict(tensors, cfg, run)
    try:
        model = build_model(cfg, run, [float(s) for s in scales])
    except ValueError as e:
        raise ArtifactError(f"{path}: manifest 'config'/'widths' do not describe a model: {e}") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise ArtifactError(f"{path}: weights do not match the manifest's architecture; missing keys {missing[:8]}, "
                            f"unexpected keys {unexpected[:8]}")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise ArtifactError(f"{path}: key '{k}' has shape {list(tensors[k].shape)}, expected {list(v.shape)}")
    model.load_state_dict({k: tensors[k].to(torch.float32) for k in expected}, strict=True)
    model.manifest = manifest
    model.widths = run
    model.op_code = None
    if op_code is not None:
        model.op_code = max(int(c) for c in manifest["mask_table"]["0.attn"]) if op_code == -1 else int(op_code)
    return model.to(device).eval()
