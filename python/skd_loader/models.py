"""ViT/DeiT and Swin modules with per-block widths, written from the SKD toolkit's C++ forward
(src/models/layers.cpp, vit.cpp, swin.cpp) so that logits agree with `skd-eval` within 1e-5 (fp32).

A block holds its attention branch at width `a` (leading dims kept per head for q, k and v) and its
MLP at width `m` (leading hidden units); `a == 0` / `m == 0` means the branch and its LayerNorm are
absent (the residual passes through). Parameter names are timm's state_dict keys, as in artifacts.
Widths are fixed at construction, so the forward has no data-dependent control flow
(torch.jit.trace, torch.export and ONNX export work).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import block_specs  # noqa: F401  (re-exported: skd_loader.models.block_specs)


def relative_position_index(w):
    """[w*w, w*w] int64 index into the (2w-1)^2 relative-position bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return ((rel[:, :, 0] + (w - 1)) * (2 * w - 1) + (rel[:, :, 1] + (w - 1))).long()


def shifted_window_mask(res, w, s):
    """[nW, w*w, w*w] mask: -100 between tokens from different regions of the rolled image, else 0."""
    img = torch.zeros(res, res)
    bounds = [0, res - w, res - s, res]
    label = 0.0
    for i in range(3):
        for j in range(3):
            img[bounds[i]:bounds[i + 1], bounds[j]:bounds[j + 1]] = label
            label += 1
    win = img.view(res // w, w, res // w, w).permute(0, 2, 1, 3).reshape(-1, w * w)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return torch.where(diff != 0, torch.full_like(diff, -100.0), torch.zeros_like(diff))


class Attention(nn.Module):
    """Multi-head self-attention at `a` dims per head (q, k and v), optional Swin relative bias/mask."""

    def __init__(self, dim, heads, a, scale, qkv_bias, window=0, shift_mask=None, rel_index=None):
        super().__init__()
        self.heads, self.a, self.scale = heads, a, float(scale)
        self.qkv = nn.Linear(dim, 3 * heads * a, bias=qkv_bias)
        self.proj = nn.Linear(heads * a, dim)
        self.window = window
        if window > 0:
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
            if rel_index is None:
                rel_index = relative_position_index(window).view(-1)
            self.register_buffer("relative_position_index", rel_index, persistent=False)
        if shift_mask is not None:
            self.register_buffer("attn_mask", shift_mask, persistent=False)
        else:
            self.attn_mask = None

    def forward(self, x):
        B, T, _ = x.shape
        H, a = self.heads, self.a
        parts = self.qkv(x).reshape(B, T, 3, H, a).permute(2, 0, 3, 1, 4)
        q, k, v = parts[0] * self.scale, parts[1], parts[2]
        attn = torch.matmul(q, k.transpose(-2, -1))
        if self.window > 0:
            bias = self.relative_position_bias_table.index_select(0, self.relative_position_index)
            attn = attn + bias.view(T, T, H).permute(2, 0, 1).unsqueeze(0)
        if self.attn_mask is not None:
            nw = self.attn_mask.shape[0]
            attn = (attn.view(-1, nw, H, T, T) + self.attn_mask.unsqueeze(1).unsqueeze(0)).view(-1, H, T, T)
        attn = attn.softmax(-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(B, T, H * a)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim, m):
        super().__init__()
        self.fc1 = nn.Linear(dim, m)
        self.fc2 = nn.Linear(m, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact erf GELU, as timm's nn.GELU()


class VitBlock(nn.Module):
    def __init__(self, spec, width, scale, qkv_bias, eps):
        super().__init__()
        a, m = width
        self.has_attn, self.has_mlp = a > 0, m > 0
        if self.has_attn:
            self.norm1 = nn.LayerNorm(spec.dim, eps=eps)
            self.attn = Attention(spec.dim, spec.num_heads, a, scale, qkv_bias)
        if self.has_mlp:
            self.norm2 = nn.LayerNorm(spec.dim, eps=eps)
            self.mlp = Mlp(spec.dim, m)

    def forward(self, x):
        if self.has_attn:
            x = x + self.attn(self.norm1(x))
        if self.has_mlp:
            x = x + self.mlp(self.norm2(x))
        return x


class VisionTransformer(nn.Module):
    """timm VisionTransformer semantics: class token, learned position embedding, pre-norm blocks,
    class-token pooling."""

    def __init__(self, cfg, widths, scales):
        super().__init__()
        self.config = cfg
        dim, grid = cfg["embed_dim"], cfg["img_size"] // cfg["patch_size"]
        eps = cfg.get("norm_eps", 1e-6)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(cfg["in_chans"], dim, cfg["patch_size"], stride=cfg["patch_size"])
        self.blocks = nn.ModuleList([VitBlock(s, widths[s.index], scales[s.index], cfg["qkv_bias"], eps)
                                     for s in block_specs(cfg)])
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, cfg["num_classes"])

    def forward_features(self, x):
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1) + self.pos_embed
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)

    def forward_head(self, features, pre_logits=False):
        pooled = features[:, 0]
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


class SwinBlock(nn.Module):
    def __init__(self, spec, width, scale, qkv_bias, eps, cache=None):
        super().__init__()
        a, m = width
        self.window, self.shift = spec.window, spec.shift
        self.has_attn, self.has_mlp = a > 0, m > 0
        if self.has_attn:
            # Derived buffers are shared by the blocks of a model (one per window / per stage).
            cache = {} if cache is None else cache
            mask = None
            if spec.shift > 0:
                key = ("mask", spec.res, spec.window, spec.shift)
                if key not in cache:
                    cache[key] = shifted_window_mask(spec.res, spec.window, spec.shift)
                mask = cache[key]
            if ("index", spec.window) not in cache:
                cache[("index", spec.window)] = relative_position_index(spec.window).view(-1)
            self.norm1 = nn.LayerNorm(spec.dim, eps=eps)
            self.attn = Attention(spec.dim, spec.num_heads, a, scale, qkv_bias, spec.window, mask,
                                  cache[("index", spec.window)])
        if self.has_mlp:
            self.norm2 = nn.LayerNorm(spec.dim, eps=eps)
            self.mlp = Mlp(spec.dim, m)

    def forward(self, x):  # NHWC
        B, H, W, C = x.shape
        w, s = self.window, self.shift
        if self.has_attn:
            h = self.norm1(x)
            if s > 0:
                h = torch.roll(h, shifts=(-s, -s), dims=(1, 2))
            win = h.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, C)
            out = self.attn(win)
            h = out.view(B, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
            if s > 0:
                h = torch.roll(h, shifts=(s, s), dims=(1, 2))
            x = x + h
        if self.has_mlp:
            t = x.reshape(B, H * W, C)
            t = t + self.mlp(self.norm2(t))
            x = t.reshape(B, H, W, C)
        return x


class PatchMerging(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=eps)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):  # [B, H, W, C] -> [B, H/2, W/2, 2C]
        B, H, W, C = x.shape
        # channel order (dy, dx) = (0,0), (1,0), (0,1), (1,1)
        y = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(y))


class SwinStage(nn.Module):
    def __init__(self, downsample, blocks):
        super().__init__()
        if downsample is not None:
            self.downsample = downsample
        else:
            self.downsample = None
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        if self.downsample is not None:
            x = self.downsample(x)
        for blk in self.blocks:
            x = blk(x)
        return x


class SwinTransformer(nn.Module):
    """timm >= 0.9 Swin semantics: patch embed + norm, NHWC, shifted windows, relative position bias,
    PatchMerging at the start of stages 1.., final norm, average pooling."""

    def __init__(self, cfg, widths, scales):
        super().__init__()
        self.config = cfg
        dim = cfg["embed_dim"]
        eps = cfg.get("norm_eps", 1e-5)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(cfg["in_chans"], dim, cfg["patch_size"], stride=cfg["patch_size"])
        self.patch_embed.norm = nn.LayerNorm(dim, eps=eps)
        specs = block_specs(cfg)
        cache = {}
        stages = []
        for st in range(len(cfg["depths"])):
            down = PatchMerging((dim << st) // 2, eps) if st > 0 else None
            blocks = [SwinBlock(s, widths[s.index], scales[s.index], cfg["qkv_bias"], eps, cache)
                      for s in specs if s.stage == st]
            stages.append(SwinStage(down, blocks))
        self.layers = nn.ModuleList(stages)
        last = dim << (len(cfg["depths"]) - 1)
        self.norm = nn.LayerNorm(last, eps=eps)
        self.head = nn.Module()
        self.head.fc = nn.Linear(last, cfg["num_classes"])

    def forward_features(self, x):
        t = self.patch_embed.norm(self.patch_embed.proj(x).permute(0, 2, 3, 1))
        for stage in self.layers:
            t = stage(t)
        return self.norm(t)

    def forward_head(self, features, pre_logits=False):
        pooled = features.mean(dim=(1, 2))
        return pooled if pre_logits else self.head.fc(pooled)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def build_model(cfg, widths, scales):
    """An (uninitialised) module for a manifest config, per-block widths [[a, m], ...] and scales."""
    specs = block_specs(cfg)
    if len(widths) != len(specs) or len(scales) != len(specs):
        raise ValueError(f"{len(specs)} blocks, but {len(widths)} widths and {len(scales)} attention scales given")
    for s, (a, m) in zip(specs, widths):
        if not (0 <= a <= s.head_dim and 0 <= m <= s.mlp_hidden):
            raise ValueError(f"block {s.index}: width ({a}, {m}) outside [0, {s.head_dim}] x [0, {s.mlp_hidden}]")
    family = cfg.get("family")
    if family == "vit":
        return VisionTransformer(cfg, widths, scales)
    if family == "swin":
        return SwinTransformer(cfg, widths, scales)
    raise ValueError(f"config 'family' must be 'vit' or 'swin', got {family!r}")


def default_scales(cfg):
    """attention_scale() of every block (see config.attention_scales)."""
    from .config import attention_scales
    return attention_scales(cfg)
