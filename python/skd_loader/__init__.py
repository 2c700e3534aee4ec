"""Loads SKD toolkit artifacts (.safetensors + "skd_manifest") into torch.nn.Module objects.

    import skd_loader
    model = skd_loader.load("sub.safetensors")             # eval mode, float32, CPU
    logits = model(x)                                      # x: [B, in_chans, img, img], normalised
    sub = skd_loader.load("super.safetensors", op_code=134)  # a super-network's sub-network
    logits = model(model.transform(pil_image).unsqueeze(0))  # skd-eval's preprocessing of one image

Only torch and the standard library are needed (torch 1.13 .. 2.x). See python/README.md.

Hostile input: the loader refuses what the C++ load_model refuses (src/io/safetensors.cpp,
src/models/checkpoint.cpp, config.cpp, mask_table.cpp), raising only FormatError subclasses
(SafetensorsError, ArtifactError; all SkdLoaderError and ValueError) that name the file and key,
and it checks the parameter count a manifest implies against the tensors in the file before it
builds (allocates) any module.

Preprocessing: the manifest's "preprocess" entry (input_size, interpolation, crop_pct, crop_mode, mean,
std) is checked as src/data/preprocess.cpp does; preprocess_of() gives it (or the C++ image-folder
defaults, with a warning, for older artifacts) and eval_transform() the transform of skd-eval
(include/skd/data/eval_transform.h) on PIL images; load() attaches both to the model.
"""
import warnings

import torch

from . import strict_json
from .config import (ConfigError, attention_scales, block_specs, config_from_json, derived_buffer_bytes,
                     full_widths, macs_count, stored_widths, validate_widths, MAX_DERIVED_BUFFER_BYTES, MAX_STAGES)
from .errors import ArtifactError, FormatError, SafetensorsError, SkdLoaderError, printable
from .mask_table import check_op_codes, table_from_json
from .models import build_model
from .preprocess import (EvalTransform, NoTransform, PreprocessError, PREPROCESS_KEY, check_fits, check_preprocess,
                         default_preprocess, describe)
from .safetensors_io import FLOAT_DTYPES, load_file, parse_safetensors, read_bytes, read_header, save_file

__all__ = ["load", "read_artifact", "read_manifest", "mask_table_widths", "op_code_for_macs", "slice_state_dict",
           "build_model", "expected_shapes", "load_file", "save_file", "preprocess_of", "eval_transform",
           "EvalTransform", "PreprocessWarning", "PreprocessError", "SkdLoaderError", "FormatError", "ArtifactError",
           "SafetensorsError"]

MANIFEST_KEY = "skd_manifest"   # include/skd/models/checkpoint.h kManifestKey
# The artifact format versions this loader reads: integers 1..kArtifactFormatVersion
# (include/skd/models/checkpoint.h; parse_manifest in src/models/checkpoint.cpp).
ARTIFACT_FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = tuple(range(1, ARTIFACT_FORMAT_VERSION + 1))
# Nesting bound of the manifest JSON (the toolkit's manifests nest 4 levels deep).
MAX_MANIFEST_NESTING = 256
# check_params_fit (src/models/checkpoint.cpp): a manifest may claim at most 2 * (tensor elements
# in the file) + 2^20 parameters; larger claims are refused before a module is built.
PARAMS_FIT_FACTOR = 2
PARAMS_FIT_SLACK = 1 << 20


def _fail(path, msg, key=None):
    raise ArtifactError(path, msg, key=key)


def _parse_manifest(text, path):
    """parse_manifest() of checkpoint.cpp: a JSON object with "format": "skd-artifact" and an integer
    "format_version" in 1..ARTIFACT_FORMAT_VERSION."""
    try:
        manifest = strict_json.loads(text, MAX_MANIFEST_NESTING)
    except strict_json.JsonError as e:
        _fail(path, f"__metadata__ key '{MANIFEST_KEY}' is not valid JSON: {e}", MANIFEST_KEY)
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if not isinstance(fmt, str) or fmt != "skd-artifact":
        _fail(path, f"__metadata__ '{MANIFEST_KEY}' is not an skd-artifact manifest (expected an object with "
                    f"\"format\": \"skd-artifact\")", "format")
    version = manifest.get("format_version")
    if not strict_json.is_int(version) or strict_json.as_int64(version) not in SUPPORTED_FORMAT_VERSIONS:
        _fail(path, f"artifact format_version {printable(repr(version), 60)} is not supported (this loader reads "
                    f"integers 1..{ARTIFACT_FORMAT_VERSION})", "format_version")
    # The structure readers rely on, as parse_manifest checks it (kShapes in checkpoint.cpp).
    for key, kind in MANIFEST_KEY_KINDS.items():
        if key in manifest and _json_kind(manifest[key]) != kind:
            _fail(path, f"manifest key '{key}' is {_json_kind(manifest[key])} "
                        f"{printable(repr(manifest[key]), 80)}, expected {kind}", key)
    return manifest


# parse_manifest's kShapes (checkpoint.cpp): the JSON type each of these keys must have when present.
MANIFEST_KEY_KINDS = {"config": "object", "provenance": "object", "macs": "object", "widths": "array",
                      "attn_scale": "array", "family": "string", "mask_table": "object",
                      "attn_scale_folded": "boolean", "preprocess": "object", "graph_input": "string"}


def _json_kind(value):
    """nlohmann's type name of a parsed JSON value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "number"


def _manifest_from_metadata(meta, path):
    if MANIFEST_KEY not in meta:
        _fail(path, f"no '{MANIFEST_KEY}' in the safetensors __metadata__ (not an SKD artifact; convert foreign "
                    f"checkpoints with skd-convert first)", MANIFEST_KEY)
    manifest = _parse_manifest(meta[MANIFEST_KEY], path)
    _check_preprocess_entry(manifest, path)
    return manifest


def manifest_config(manifest, path="artifact"):
    """The validated architecture (config dict) of a manifest (manifest_config in checkpoint.cpp)."""
    if not isinstance(manifest, dict) or "config" not in manifest:
        _fail(path, "manifest has no 'config' (the architecture)", "config")
    try:
        return config_from_json(manifest["config"])
    except ConfigError as e:
        _fail(path, f"manifest 'config': {e}", "config")


class PreprocessWarning(UserWarning):
    """An artifact without a "preprocess" entry (written before it existed): the defaults are used."""


def _check_preprocess_entry(manifest, path, cfg=None):
    """The validated "preprocess" entry of a manifest (None when it has none), checked as
    preprocess_from_json and check_preprocess_fits (src/data/preprocess.cpp) do: against the
    architecture's input when `cfg` is given or the manifest's config is valid (an invalid config is
    refused by manifest_config, naming "config")."""
    if PREPROCESS_KEY not in manifest:
        return None
    try:
        p = check_preprocess(manifest[PREPROCESS_KEY])
        if cfg is None and isinstance(manifest.get("config"), dict):
            try:
                cfg = config_from_json(manifest["config"])
            except ConfigError:
                cfg = None
        if cfg is not None:
            check_fits(p, cfg["in_chans"], cfg["img_size"])
    except PreprocessError as e:
        _fail(path, f"manifest: {e}", e.key)
    return p


def _preprocess(manifest, cfg, path, stacklevel):
    p = _check_preprocess_entry(manifest, path, cfg)
    if p is not None:
        return p
    c, s = cfg["in_chans"], cfg["img_size"]
    p = default_preprocess(c, s)
    if p is None:
        warnings.warn(f"{printable(path, 1000)} has no preprocess entry and there is no default preprocessing for "
                      f"{c}-channel input (defaults exist for 3 (RGB) and 1 (L)): no transform",
                      PreprocessWarning, stacklevel=stacklevel + 1)
        return None
    warnings.warn(f"{printable(path, 1000)} has no preprocess entry: using the defaults of skd-eval's image-folder "
                  f"evaluation ({describe(p)}); artifacts written by newer skd tools record theirs",
                  PreprocessWarning, stacklevel=stacklevel + 1)
    return p


def preprocess_of(manifest, path="artifact"):
    """The preprocessing of an artifact's manifest: a dict {"input_size": [C, S, S], "interpolation",
    "crop_pct", "crop_mode", "mean", "std"} (crop_mode filled in), its "preprocess" entry checked as the
    C++ does (ArtifactError naming "preprocess.<key>" otherwise) against the architecture (`config`).
    Without an entry (artifacts written before it existed): the defaults of the C++ image-folder eval
    (bicubic, crop_pct 0.875, ImageNet mean/std; 1 channel: their L-weighted values) with a
    PreprocessWarning naming `path`; None (and a warning) for other channel counts."""
    return _preprocess(manifest, manifest_config(manifest, path), path, stacklevel=2)


def eval_transform(preprocess):
    """The eval transform of skd-eval for `preprocess` (a dict as preprocess_of returns): a callable
    taking a PIL image or a path and returning the float32 tensor [C, S, S] (resize the shorter side to
    int(S / crop_pct) with the interpolation, center crop S x S, normalize). Raises PreprocessError (a
    ValueError) for a dict the manifest reader would refuse. Needs Pillow when called."""
    if preprocess is None:
        raise PreprocessError("no preprocessing given (preprocess_of returns None for an artifact without a "
                              "preprocess entry whose channel count has no default): pass a dict with input_size, "
                              "interpolation, crop_pct, mean and std")
    return EvalTransform(preprocess)


def _read(path):
    """(tensors, metadata) of an artifact file; torch.save files (which the C++ reads as checkpoints
    without a manifest) are refused."""
    data = read_bytes(path)
    safetensors = len(data) >= 9 and data[8] == ord("{")
    if data[:4] == b"PK\x03\x04" or (not safetensors and data[:1] == b"\x80"):
        _fail(path, "is a torch.save file, not an SKD artifact (convert it with skd-convert first)")
    tensors, meta = parse_safetensors(data, path)
    if "skd_train_state" in meta:  # skd-train checkpoints: optimizer/EMA state next to the weights
        tensors = {k: v for k, v in tensors.items() if not k.startswith("train_state/")}
    return tensors, meta


def read_manifest(path):
    """The artifact's manifest (a dict), reading only the file's header."""
    header, _ = read_header(path)
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise SafetensorsError(path, '"__metadata__" must be an object of strings', key="__metadata__")
    return _manifest_from_metadata(meta, path)


def read_artifact(path):
    """(tensors, manifest): the model weights under timm key names (training-state tensors of a
    skd-train checkpoint dropped) and the manifest."""
    tensors, meta = _read(path)
    return tensors, _manifest_from_metadata(meta, path)


def _legacy_stage(s):
    """The N of a legacy 'layers.N.downsample.*' key as legacy_stage() in checkpoint.cpp takes it:
    ASCII digits only, no leading zero, below MAX_STAGES; None otherwise."""
    if not (1 <= len(s) <= 2 and s.isascii() and s.isdigit()) or (len(s) > 1 and s[0] == "0"):
        return None
    n = int(s)
    return n if n < MAX_STAGES else None


def normalize_keys(cfg, tensors, path="artifact"):
    """normalize_keys() of checkpoint.cpp: a DDP 'module.' prefix on every key is stripped; for Swin,
    derived buffers are dropped and the legacy (Microsoft / timm < 0.9) key layout is mapped."""
    t = dict(tensors)
    if t and all(k.startswith("module.") for k in t):
        t = {k[7:]: v for k, v in t.items()}
    if cfg["family"] != "swin":
        return t
    t = {k: v for k, v in t.items() if "relative_position_index" not in k and "attn_mask" not in k}
    legacy = "layers.0.downsample.reduction.weight" in t or ("head.weight" in t and "head.fc.weight" not in t)
    if not legacy:
        return t
    out = {}
    for k in sorted(t):  # std::map order; on a clash the first key wins (emplace)
        new = k
        if k.startswith("layers."):
            dot = k.find(".", 7)
            if dot != -1 and k[dot:dot + 12] == ".downsample.":
                n = _legacy_stage(k[7:dot])
                if n is None:
                    _fail(path, f"key '{printable(k)}': the stage number of a legacy Swin key must be "
                                f"0..{MAX_STAGES - 1} in digits (layers.N.downsample.*)", k)
                new = f"layers.{n + 1}{k[dot:]}"
        elif k.startswith("head.") and not k.startswith("head.fc."):
            new = "head.fc." + k[5:]
        out.setdefault(new, t[k])
    return out


def infer_widths(cfg, tensors, path="artifact"):
    """Per-block widths from the qkv and fc1 shapes (infer_widths in checkpoint.cpp; a missing key
    gives width 0)."""
    widths = []
    for s in block_specs(cfg):
        p = _prefix(cfg, s)
        a = m = 0
        t = tensors.get(p + "attn.qkv.weight")
        if t is not None:
            shape = list(t.shape)
            if len(shape) != 2 or shape[0] % (3 * s.num_heads) != 0 or shape[0] // (3 * s.num_heads) > s.head_dim:
                _fail(path, f"key '{p}attn.qkv.weight' has shape {shape}, expected [3*{s.num_heads}*a, {s.dim}] with "
                            f"a <= {s.head_dim} (is the architecture right?)", p + "attn.qkv.weight")
            a = shape[0] // (3 * s.num_heads)
        t = tensors.get(p + "mlp.fc1.weight")
        if t is not None:
            shape = list(t.shape)
            if len(shape) != 2 or shape[0] > s.mlp_hidden:
                _fail(path, f"key '{p}mlp.fc1.weight' has shape {shape}, expected [m, {s.dim}] with m <= "
                            f"{s.mlp_hidden} (is the architecture right?)", p + "mlp.fc1.weight")
            m = shape[0]
        widths.append([a, m])
    return widths


def _prefix(cfg, s):
    if cfg["family"] == "vit":
        return f"blocks.{s.index}."
    first = sum(cfg["depths"][:s.stage])
    return f"layers.{s.stage}.blocks.{s.index - first}."


def expected_shapes(cfg, widths):
    """{key: shape} of the parameters of the model at `widths` (the C++ model's named_parameters; the
    same keys as build_model(...).state_dict()), computed without building anything."""
    C, p, cin = cfg["embed_dim"], cfg["patch_size"], cfg["in_chans"]
    out = {"patch_embed.proj.weight": [C, cin, p, p], "patch_embed.proj.bias": [C]}
    if cfg["family"] == "vit":
        g = cfg["img_size"] // p
        out.update({"cls_token": [1, 1, C], "pos_embed": [1, 1 + g * g, C]})
    else:
        out.update({"patch_embed.norm.weight": [C], "patch_embed.norm.bias": [C]})
    stage = 0
    for s in block_specs(cfg):
        D, H = s.dim, s.num_heads
        if cfg["family"] == "swin" and s.stage != stage:
            q = f"layers.{s.stage}.downsample."
            out.update({q + "norm.weight": [2 * D], q + "norm.bias": [2 * D], q + "reduction.weight": [D, 2 * D]})
            stage = s.stage
        pre = _prefix(cfg, s)
        a, m = widths[s.index]
        if a > 0:
            out.update({pre + "norm1.weight": [D], pre + "norm1.bias": [D], pre + "attn.qkv.weight": [3 * H * a, D]})
            if cfg["qkv_bias"]:
                out[pre + "attn.qkv.bias"] = [3 * H * a]
            if cfg["family"] == "swin":
                out[pre + "attn.relative_position_bias_table"] = [(2 * s.window - 1) ** 2, H]
            out.update({pre + "attn.proj.weight": [D, H * a], pre + "attn.proj.bias": [D]})
        if m > 0:
            out.update({pre + "norm2.weight": [D], pre + "norm2.bias": [D], pre + "mlp.fc1.weight": [m, D],
                        pre + "mlp.fc1.bias": [m], pre + "mlp.fc2.weight": [D, m], pre + "mlp.fc2.bias": [D]})
    last = block_specs(cfg)[-1].dim
    head = "head." if cfg["family"] == "vit" else "head.fc."
    out.update({"norm.weight": [last], "norm.bias": [last], head + "weight": [cfg["num_classes"], last],
                head + "bias": [cfg["num_classes"]]})
    return out


def check_weights(cfg, widths, tensors, path="artifact"):
    """load_state_dict() of checkpoint.cpp, before anything is built: the keys are exactly the
    model's, every shape matches, every weight is a floating-point tensor and finite."""
    want = expected_shapes(cfg, widths)
    missing = [k for k in want if k not in tensors]
    unexpected = [k for k in tensors if k not in want]
    if missing or unexpected:
        _fail(path, f"weights do not match the manifest's architecture; missing keys {missing[:8]}, unexpected "
                    f"keys {[printable(k, 100) for k in unexpected[:8]]}", (missing + unexpected)[0])
    for k, shape in want.items():
        t = tensors[k]
        if list(t.shape) != shape:
            _fail(path, f"key '{k}' has shape {list(t.shape)[:16]}, expected {shape}", k)
        if not t.is_floating_point():
            _fail(path, f"key '{k}' has dtype {t.dtype}, expected a floating-point tensor (F32/F16/BF16/F64)", k)
        bad = t.numel() - int(torch.isfinite(t.to(torch.float32)).sum())
        if bad:
            _fail(path, f"key '{k}' contains {bad} non-finite values (NaN/Inf)", k)


def check_params_fit(cfg, tensors, path="artifact"):
    """check_params_fit() of checkpoint.cpp: the parameters the architecture needs against the tensor
    elements the file holds, before any module is sized from the manifest."""
    held = sum(t.numel() for t in tensors.values())
    needed = macs_count(cfg)["params"]
    if needed > PARAMS_FIT_FACTOR * held + PARAMS_FIT_SLACK:
        _fail(path, f"architecture '{printable(cfg['name'], 100)}' needs {needed} parameters, far more than the "
                    f"{held} tensor elements the file holds (wrong architecture, or a manifest that does not match "
                    f"the weights); refused before building the model", "config")


def _supernet(manifest, cfg, path):
    """(table, costs) of a super-network's manifest (load_mask_table in mask_table.cpp)."""
    if "mask_table" not in manifest:
        _fail(path, "the manifest has no 'mask_table' (not a super-network)", "mask_table")
    try:
        table = table_from_json(manifest["mask_table"], stored_widths(cfg))
    except ConfigError as e:
        _fail(path, f"manifest mask_table: {e}", "mask_table")
    try:
        costs = check_op_codes(manifest["op_codes"], cfg, table) if "op_codes" in manifest else \
            [dict(code=c, **macs_count(cfg, w)) for c, w in enumerate(table)]
    except ConfigError as e:
        _fail(path, f"manifest: {e}", "op_codes")
    return table, costs


def mask_table_widths(manifest, op_code, path="artifact"):
    """Per-block widths [[a, m], ...] of `op_code` in a super-network's mask table (-1 = the last,
    smallest code). Raises ArtifactError when the manifest has no table or the code is unknown."""
    cfg = manifest_config(manifest, path)
    table, _ = _supernet(manifest, cfg, path)
    last = len(table) - 1
    if not strict_json.is_int(op_code) or (op_code != -1 and not 0 <= op_code <= last):
        _fail(path, f"op code {op_code} is not in the mask table (codes 0..{last}, or -1)", "mask_table")
    return [list(w) for w in table[op_code]]


def op_code_for_macs(manifest, macs, convention="paper", path="artifact"):
    """The largest sub-network (smallest op code) whose MACs in `convention` ("paper" | "full") are
    <= `macs` (the same rule as skd-extract --macs, over the costs of the table's codes)."""
    key = {"paper": "macs_paper", "full": "macs_full"}.get(convention)
    if key is None:
        raise ValueError(f"convention must be 'paper' or 'full', got {convention!r}")
    cfg = manifest_config(manifest, path)
    _, costs = _supernet(manifest, cfg, path)
    fitting = [r["code"] for r in costs if r[key] <= macs]
    if not fitting:
        smallest = min(costs, key=lambda r: r[key])
        _fail(path, f"{macs} MACs is below the smallest sub-network in the mask table: code {smallest['code']} with "
                    f"{smallest[key]} MACs ({convention})", "op_codes")
    return min(fitting)


def slice_state_dict(tensors, cfg, widths):
    """The leading slices of `tensors` at smaller per-block `widths`: the leading `a` dims of every
    head in q, k, v (rows of qkv, columns of proj) and the leading `m` MLP units (rows of fc1, columns
    of fc2). Branches at width 0 lose their keys (and their LayerNorm). Mirrors skd::models::slice_model."""
    out = dict(tensors)
    for s in block_specs(cfg):
        p = _prefix(cfg, s)
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
    artifact's manifest), `.widths` (per-block widths it runs at), `.op_code` (or None), `.preprocess`
    (preprocess_of: the artifact's entry, or the defaults with a PreprocessWarning) and `.transform`
    (its eval transform: model(model.transform(pil_image).unsqueeze(0)) gives skd-eval's logits).
    A file the C++ load_model refuses raises a FormatError (ArtifactError or SafetensorsError)."""
    if sum(x is not None for x in (op_code, macs, widths)) > 1:
        raise ValueError("give at most one of op_code, macs and widths")
    tensors, manifest = read_artifact(path)
    cfg = manifest_config(manifest, path)
    tensors = normalize_keys(cfg, tensors, path)
    if not cfg["widths"]:
        inferred = infer_widths(cfg, tensors, path)
        if inferred != full_widths(cfg):
            cfg["widths"] = inferred
    check_params_fit(cfg, tensors, path)
    stored = stored_widths(cfg)
    check_weights(cfg, stored, tensors, path)
    scales = attention_scales(cfg)
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
    derived = derived_buffer_bytes(cfg, run)
    if derived > MAX_DERIVED_BUFFER_BYTES:
        _fail(path, f"the Swin windows of this architecture need {derived} bytes of precomputed masks and indices, "
                    f"more than the loader's limit of {MAX_DERIVED_BUFFER_BYTES}", "config")
    want = expected_shapes(cfg, run)
    model = build_model(cfg, run, scales)
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    if got != want:  # a loader bug, not a file problem
        raise SkdLoaderError(f"internal: the built module's parameters differ from expected_shapes() for {path}")
    model.load_state_dict({k: tensors[k].to(torch.float32) for k in want}, strict=True)
    model.manifest = manifest
    model.config = cfg
    model.widths = run
    model.op_code = None
    if op_code is not None:
        model.op_code = len(_supernet(manifest, cfg, path)[0]) - 1 if op_code == -1 else int(op_code)
    # A sub-network takes the same input as its super-network: the artifact's preprocessing.
    model.preprocess = _preprocess(manifest, cfg, path, stacklevel=2)
    model.transform = EvalTransform(model.preprocess) if model.preprocess is not None else \
        NoTransform(path, cfg["in_chans"])
    return model.to(device).eval()
