"""The architecture of an artifact (its manifest "config"), read and validated exactly as the C++
config_from_json / validate (src/models/config.cpp), and the parameter count it implies (macs_count
in src/models/macs.cpp), so that a manifest is refused before any tensor is sized from it.

A config here is a plain dict with every key of config_to_json filled in: family, name, img_size,
patch_size, in_chans, num_classes, embed_dim, mlp_ratio, qkv_bias, norm_eps, attn_scale,
attn_scale_folded, widths ([] = full), and depth + num_heads (ViT) or depths + num_heads (a list)
+ window_size (Swin).
"""
import math

from .strict_json import as_int64, is_int, is_number

# Sanity limits of validate() (include/skd/models/config.h).
MAX_IMG_SIZE = 4096
MAX_PATCH_GRID = 256        # patches per image side, and the Swin window size
MAX_IN_CHANS = 64
MAX_NUM_CLASSES = 1 << 20
MAX_WIDTH = 16384           # embed_dim and every Swin stage's width
MAX_MLP_RATIO = 16.0
MAX_BLOCKS = 256            # ViT depth, or the sum of Swin depths
MAX_STAGES = 8              # Swin stages
# The bound on the derived Swin buffers a model precomputes (relative position indices and
# shifted-window masks, shared by the blocks of a stage) at the config's stored widths, checked by
# validate() as the C++ does (kMaxDerivedBufferBytes, swin_derived_buffer_bytes in config.cpp): far
# above any real model (swin_base at 384 px: under 16 MiB), and refused before they are built.
MAX_DERIVED_BUFFER_BYTES = 256 << 20

# Every key config_from_json accepts (src/models/config.cpp kKnown).
KNOWN_KEYS = frozenset({
    "model_name", "pretrained", "family", "name", "img_size", "patch_size", "in_chans", "num_classes", "embed_dim",
    "depth", "num_heads", "mlp_ratio", "qkv_bias", "window_size", "depths", "class_token", "global_pool",
    "attn_scale", "attn_scale_folded", "widths", "norm_eps"})


class ConfigError(ValueError):
    """An architecture config_from_json refuses (the caller adds the file)."""


def _defaults():  # ModelConfig's member defaults (include/skd/models/config.h)
    return {"family": "vit", "name": "custom", "img_size": 224, "patch_size": 16, "in_chans": 3, "num_classes": 1000,
            "embed_dim": 192, "mlp_ratio": 4.0, "qkv_bias": True, "depth": 12, "num_heads": 3, "depths": [],
            "stage_heads": [], "window_size": 7, "norm_eps": 1e-6, "attn_scale": 0.0, "attn_scale_folded": False,
            "widths": []}


def _vit(name, dim, depth, heads):
    c = _defaults()
    c.update(family="vit", name=name, embed_dim=dim, depth=depth, num_heads=heads)
    return c


def _swin(name, dim, depths, heads):
    c = _defaults()
    c.update(family="swin", name=name, patch_size=4, embed_dim=dim, depths=list(depths), stage_heads=list(heads),
             window_size=7, norm_eps=1e-5)
    return c


def _named(name):
    c = {"deit_tiny": lambda: _vit(name, 192, 12, 3), "deit_small": lambda: _vit(name, 384, 12, 6),
         "deit_base": lambda: _vit(name, 768, 12, 12),
         "swin_tiny": lambda: _swin(name, 96, [2, 2, 6, 2], [3, 6, 12, 24]),
         "swin_small": lambda: _swin(name, 96, [2, 2, 18, 2], [3, 6, 12, 24]),
         "swin_base": lambda: _swin(name, 128, [2, 2, 18, 2], [4, 8, 16, 32])}
    if name in c:
        return c[name]()
    if name == "vit_micro_32":
        c = _vit(name, 64, 4, 4)
        c.update(img_size=32, patch_size=4, num_classes=10)
        return c
    if name == "swin_micro_32":
        c = _swin(name, 32, [2, 2], [2, 4])
        c.update(img_size=32, patch_size=2, window_size=4, num_classes=10)
        return c
    raise AssertionError(name)


# Named configs and their aliases (kNamed in src/models/config.cpp).
NAMED = {"deit_tiny": ("vit_tiny", "deit_tiny_patch16_224"), "deit_small": ("vit_small", "deit_small_patch16_224"),
         "deit_base": ("vit_base", "deit_base_patch16_224"), "swin_tiny": ("swin_tiny_patch4_window7_224",),
         "swin_small": ("swin_small_patch4_window7_224",), "swin_base": ("swin_base_patch4_window7_224",),
         "vit_micro_32": (), "swin_micro_32": ()}


def named_config(name):
    for n, aliases in NAMED.items():
        if name == n or name in aliases:
            return _named(n)
    raise ConfigError(f"unknown architecture '{name[:200]}' (known: {', '.join(NAMED)})")


def config_from_json(j):
    """The validated config dict of a manifest "config" object (config_from_json in config.cpp)."""
    if not isinstance(j, dict):
        raise ConfigError("architecture must be a JSON object")

    def key_error(key, expected):
        return ConfigError(f"key '{key}' {expected}, got {str(j[key])[:100]}")

    def get_int(key):
        v = j[key]
        if not is_int(v):
            raise key_error(key, "must be an integer")
        return as_int64(v)

    def get_int_or_pair(key):
        v = j[key]
        if isinstance(v, list) and len(v) == 2 and is_int(v[0]) and is_number(v[1]) and v[0] == v[1]:
            return as_int64(v[0])
        if not is_int(v):
            raise key_error(key, "must be an integer (or a square [n, n] pair)")
        return as_int64(v)

    def get_int_list(key):
        v = j[key]
        if not isinstance(v, list) or not all(is_int(e) for e in v):
            raise key_error(key, "must be a list of integers")
        return [as_int64(e) for e in v]

    # starting_config()
    c = _defaults()
    family_set = False
    if "model_name" in j:
        if not isinstance(j["model_name"], str):
            raise key_error("model_name", "must be a string")
        c = named_config(j["model_name"])
        family_set = True
    if "family" in j:
        f = j["family"]
        if f in ("vit", "deit") and isinstance(f, str):
            if family_set and c["family"] != "vit":
                raise key_error("family", "contradicts model_name")
            c["family"] = "vit"
        elif f == "swin" and isinstance(f, str):
            if family_set and c["family"] != "swin":
                raise key_error("family", "contradicts model_name")
            if not family_set:
                c = _swin("custom", 96, [2, 2, 6, 2], [3, 6, 12, 24])
            c["family"] = "swin"
        else:
            raise key_error("family", 'must be "vit" or "swin"')
        family_set = True
    elif not family_set and ("depths" in j or "window_size" in j):
        c = _swin("custom", 96, [2, 2, 6, 2], [3, 6, 12, 24])
    if "model_name" not in j:
        name = j.get("name", "custom")
        if not isinstance(name, str):  # nlohmann's value() throws type_error
            raise key_error("name", "must be a string")
        c["name"] = name

    for key in j:
        if key not in KNOWN_KEYS:
            raise ConfigError(f"unsupported architecture key '{key[:200]}'")
    if "img_size" in j:
        c["img_size"] = get_int_or_pair("img_size")
    if "patch_size" in j:
        c["patch_size"] = get_int_or_pair("patch_size")
    for key in ("in_chans", "num_classes", "embed_dim"):
        if key in j:
            c[key] = get_int(key)
    for key in ("mlp_ratio", "norm_eps", "attn_scale"):
        if key in j:
            if not is_number(j[key]):
                raise key_error(key, "must be a number")
            c[key] = float(j[key])
    for key in ("qkv_bias", "attn_scale_folded"):
        if key in j:
            if not isinstance(j[key], bool):
                raise key_error(key, "must be true or false")
            c[key] = j[key]
    if c["family"] == "vit":
        if "depth" in j:
            c["depth"] = get_int("depth")
        if "num_heads" in j:
            c["num_heads"] = get_int("num_heads")
        if "depths" in j or "window_size" in j:
            raise ConfigError("'depths'/'window_size' are Swin keys but family is vit")
        if "class_token" in j and j["class_token"] is not True:
            raise key_error("class_token", "is only supported as true")
        if "global_pool" in j and j["global_pool"] != "token":
            raise key_error("global_pool", 'is only supported as "token" for ViT')
    else:
        if "depths" in j:
            c["depths"] = get_int_list("depths")
        if "num_heads" in j:
            c["stage_heads"] = get_int_list("num_heads")
        if "window_size" in j:
            c["window_size"] = get_int_or_pair("window_size")
        if "depth" in j:
            raise ConfigError("'depth' is a ViT key; Swin uses 'depths'")
        if "global_pool" in j and j["global_pool"] != "avg":
            raise key_error("global_pool", 'is only supported as "avg" for Swin')
        if "norm_eps" not in j:
            c["norm_eps"] = 1e-5
    if "widths" in j:
        w = j["widths"]
        if not isinstance(w, list):
            raise key_error("widths", "must be a list of [attn, mlp] pairs")
        c["widths"] = []
        for e in w:
            if not (isinstance(e, list) and len(e) == 2 and is_int(e[0]) and is_int(e[1])):
                raise key_error("widths", "must be a list of [attn, mlp] integer pairs")
            c["widths"].append([as_int64(e[0]), as_int64(e[1])])
    validate(c)
    return public(c)


def public(c):
    """The config_to_json form (Swin heads under "num_heads"), every key present."""
    out = {k: v for k, v in c.items() if k not in ("stage_heads", "depths", "depth", "num_heads", "window_size")}
    if c["family"] == "vit":
        out.update(depth=c["depth"], num_heads=c["num_heads"])
    else:
        out.update(depths=list(c["depths"]), num_heads=list(c["stage_heads"]), window_size=c["window_size"])
    out["widths"] = [list(w) for w in c["widths"]]
    return out


def _require(ok, msg):
    if not ok:
        raise ConfigError(f"config: {msg}")


def validate(c):
    """validate() of src/models/config.cpp (internal form: Swin heads in "stage_heads")."""
    img, patch = c["img_size"], c["patch_size"]
    _require(img > 0 and patch > 0 and img % patch == 0, f"img_size {img} must be a positive multiple of patch_size {patch}")
    _require(img <= MAX_IMG_SIZE, f"img_size {img} exceeds the limit of {MAX_IMG_SIZE}")
    _require(img // patch <= MAX_PATCH_GRID, f"img_size / patch_size = {img // patch} patches per side exceeds "
                                             f"the limit of {MAX_PATCH_GRID}")
    _require(0 < c["in_chans"] <= MAX_IN_CHANS, f"in_chans {c['in_chans']} must be in [1, {MAX_IN_CHANS}]")
    _require(0 < c["num_classes"] <= MAX_NUM_CLASSES, f"num_classes {c['num_classes']} must be in [1, {MAX_NUM_CLASSES}]")
    _require(0 < c["embed_dim"] <= MAX_WIDTH, f"embed_dim {c['embed_dim']} must be in [1, {MAX_WIDTH}]")
    _require(0 < c["mlp_ratio"] <= MAX_MLP_RATIO, f"mlp_ratio {c['mlp_ratio']} must be in (0, {MAX_MLP_RATIO}]")
    _require(c["norm_eps"] > 0 and math.isfinite(c["norm_eps"]), "norm_eps must be positive and finite")
    _require(c["attn_scale"] >= 0 and math.isfinite(c["attn_scale"]),
             "attn_scale must be >= 0 and finite (0 = head_dim^-0.5)")
    _require(not (c["attn_scale_folded"] and c["attn_scale"] > 0), "attn_scale_folded excludes attn_scale")
    if c["family"] == "vit":
        _require(0 < c["depth"] <= MAX_BLOCKS, f"depth {c['depth']} must be in [1, {MAX_BLOCKS}]")
        _require(c["num_heads"] > 0 and c["embed_dim"] % c["num_heads"] == 0,
                 f"embed_dim {c['embed_dim']} must be divisible by num_heads {c['num_heads']}")
    else:
        depths, heads = c["depths"], c["stage_heads"]
        _require(len(depths) > 0, "Swin needs 'depths'")
        _require(len(depths) == len(heads), f"'depths' has {len(depths)} stages but 'num_heads' has {len(heads)}")
        _require(len(depths) <= MAX_STAGES, f"'depths' has {len(depths)} stages, the limit is {MAX_STAGES}")
        _require(0 < c["window_size"] <= MAX_PATCH_GRID, f"window_size {c['window_size']} must be in [1, {MAX_PATCH_GRID}]")
        res, blocks = img // patch, 0
        for st in range(len(depths)):
            if st > 0:
                _require(res % 2 == 0, f"stage {st} input resolution {res} is odd (patch merging needs an even grid)")
                res //= 2
            _require(0 < depths[st] <= MAX_BLOCKS - blocks,
                     f"depths[{st}] = {depths[st]} must be positive and all stages together at most {MAX_BLOCKS} blocks")
            blocks += depths[st]
            dim = c["embed_dim"] << st
            _require(dim <= MAX_WIDTH, f"stage {st} width {dim} exceeds the limit of {MAX_WIDTH}")
            _require(heads[st] > 0 and dim % heads[st] == 0, f"stage {st} width {dim} not divisible by num_heads[{st}]")
            window = min(c["window_size"], res)
            _require(res % window == 0, f"stage {st} resolution {res} is not a multiple of the window {window}")
    pub = public(c) if "stage_heads" in c else c
    if c["widths"]:
        validate_widths(pub, c["widths"], "config 'widths'")
    if c["family"] == "swin":
        need = derived_buffer_bytes(pub, stored_widths(pub))
        _require(need <= MAX_DERIVED_BUFFER_BYTES,
                 f"img_size {img} / patch_size {patch} with window_size {c['window_size']} needs {need} bytes of "
                 f"precomputed masks and indices for the Swin windows, more than the limit of "
                 f"{MAX_DERIVED_BUFFER_BYTES} ({MAX_DERIVED_BUFFER_BYTES >> 20} MiB); use a smaller window_size or "
                 f"img_size")


class Spec:
    """One block (mirrors skd::models::BlockSpec)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def block_specs(cfg):
    """Per-block specs of a (public form) config, in block order (block_specs in config.cpp)."""
    grid = cfg["img_size"] // cfg["patch_size"]
    if cfg["family"] == "vit":
        dim, heads = cfg["embed_dim"], cfg["num_heads"]
        return [Spec(index=i, stage=0, dim=dim, num_heads=heads, head_dim=dim // heads,
                     mlp_hidden=int(dim * cfg["mlp_ratio"]), tokens=1 + grid * grid, res=0, window=0, shift=0)
                for i in range(cfg["depth"])]
    specs, res, ws = [], grid, cfg["window_size"]
    for st, depth in enumerate(cfg["depths"]):
        if st > 0:
            res //= 2
        dim = cfg["embed_dim"] << st
        heads = cfg["num_heads"][st]
        window = min(ws, res)  # a window at least as large as the resolution is clamped, then no shift
        for b in range(depth):
            specs.append(Spec(index=len(specs), stage=st, dim=dim, num_heads=heads, head_dim=dim // heads,
                              mlp_hidden=int(dim * cfg["mlp_ratio"]), tokens=res * res, res=res, window=window,
                              shift=ws // 2 if (b % 2 == 1 and res > ws) else 0))
    return specs


def full_widths(cfg):
    return [[s.head_dim, s.mlp_hidden] for s in block_specs(cfg)]


def stored_widths(cfg):
    return [list(w) for w in cfg["widths"]] if cfg["widths"] else full_widths(cfg)


def validate_widths(cfg, widths, what):
    specs = block_specs(cfg)
    if len(widths) != len(specs):
        raise ConfigError(f"{what}: {len(widths)} block widths given, the model has {len(specs)} blocks")
    for s, (a, m) in zip(specs, widths):
        if not 0 <= a <= s.head_dim:
            raise ConfigError(f"{what}: block {s.index} attention width {a} outside [0, {s.head_dim}]")
        if not 0 <= m <= s.mlp_hidden:
            raise ConfigError(f"{what}: block {s.index} MLP width {m} outside [0, {s.mlp_hidden}]")


def attention_scales(cfg):
    """attention_scale() of every block (config.cpp): attn_scale if set, else the original
    head_dim^-0.5; for a folded config 1/sqrt(the stored attention width)."""
    out = []
    for s in block_specs(cfg):
        if cfg["attn_scale_folded"]:
            a = cfg["widths"][s.index][0] if cfg["widths"] else s.head_dim
            out.append(1.0 / math.sqrt(a if a > 0 else s.head_dim))
        elif cfg["attn_scale"] > 0:
            out.append(cfg["attn_scale"])
        else:
            out.append(1.0 / math.sqrt(s.head_dim))
    return out


def macs_count(cfg, widths=None):
    """{"macs_paper", "macs_full", "params"} at `widths` (default: the stored widths), as
    macs_count() in src/models/macs.cpp."""
    widths = stored_widths(cfg) if widths is None else widths
    validate_widths(cfg, widths, "MACs widths")
    grid = cfg["img_size"] // cfg["patch_size"]
    P, C = grid * grid, cfg["embed_dim"]
    kernel = cfg["patch_size"] ** 2 * cfg["in_chans"]
    paper = P * kernel * C + P * C
    params = kernel * C + C
    if cfg["family"] == "vit":
        params += C + (P + 1) * C
    else:
        paper += 2 * P * C
        params += 2 * C
    bias = cfg["qkv_bias"]
    attn_matmuls, prev_stage = 0, 0
    specs = block_specs(cfg)
    for s in specs:
        T, D, H = s.tokens, s.dim, s.num_heads
        if cfg["family"] == "swin" and s.stage != prev_stage:
            inp = 2 * D
            paper += 2 * T * inp + T * inp * D
            params += 2 * inp + inp * D
            prev_stage = s.stage
        a, m = widths[s.index]
        if a > 0:
            paper += 2 * T * D + T * (D * 3 * H * a + (3 * H * a if bias else 0)) + T * (H * a * D + D)
            params += 2 * D + 3 * H * a * D + (3 * H * a if bias else 0) + H * a * D + D
            keys = T if cfg["family"] == "vit" else s.window * s.window
            attn_matmuls += 2 * T * keys * H * a
            if cfg["family"] == "swin":
                params += (2 * s.window - 1) ** 2 * H
        if m > 0:
            paper += 2 * T * D + T * (D * m + m) + T * (m * D + D) + T * m
            params += 2 * D + D * m + m + m * D + D
    last_dim, last_tokens = specs[-1].dim, specs[-1].tokens
    paper += 2 * last_tokens * last_dim + last_dim * cfg["num_classes"] + cfg["num_classes"]
    params += 2 * last_dim + last_dim * cfg["num_classes"] + cfg["num_classes"]
    return {"macs_paper": paper, "macs_full": paper + attn_matmuls, "params": params}


def derived_buffer_bytes(cfg, widths):
    """Bytes of the Swin buffers the Python modules precompute at `widths`: one relative position
    index (int64, w^4) per window size and one shifted-window mask (float32, res^2 * w^2) per stage."""
    if cfg["family"] != "swin":
        return 0
    windows, masks = set(), set()
    for s in block_specs(cfg):
        if widths[s.index][0] > 0:
            windows.add(s.window)
            if s.shift > 0:
                masks.add((s.res, s.window, s.shift))
    return sum(8 * w ** 4 for w in windows) + sum(4 * r * r * w * w for r, w, _ in masks)
