#!/usr/bin/python3
"""Writes a DeiT-shaped checkpoint ({'model': state_dict}, timm key names) with random N(0, 0.02) weights,
for timing benchmarks where no pretrained weights are available. Needs Debian's python3-torch."""
import argparse

import torch

DIMS = {"deit_tiny": (192, 3), "deit_small": (384, 6), "deit_base": (768, 12)}

p = argparse.ArgumentParser()
p.add_argument("--arch", choices=sorted(DIMS), required=True)
p.add_argument("--out", required=True)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
C, _ = DIMS[a.arch]
D, depth, classes, tokens = 4 * C, 12, 1000, 197
g = torch.Generator().manual_seed(a.seed)
r = lambda *s: torch.randn(*s, generator=g) * 0.02
sd = {"cls_token": r(1, 1, C), "pos_embed": r(1, tokens, C), "patch_embed.proj.weight": r(C, 3, 16, 16),
      "patch_embed.proj.bias": torch.zeros(C)}
for i in range(depth):
    b = f"blocks.{i}."
    sd.update({b + "norm1.weight": torch.ones(C), b + "norm1.bias": torch.zeros(C),
               b + "attn.qkv.weight": r(3 * C, C), b + "attn.qkv.bias": r(3 * C),
               b + "attn.proj.weight": r(C, C), b + "attn.proj.bias": torch.zeros(C),
               b + "norm2.weight": torch.ones(C), b + "norm2.bias": torch.zeros(C),
               b + "mlp.fc1.weight": r(D, C), b + "mlp.fc1.bias": torch.zeros(D),
               b + "mlp.fc2.weight": r(C, D), b + "mlp.fc2.bias": torch.zeros(C)})
sd.update({"norm.weight": torch.ones(C), "norm.bias": torch.zeros(C), "head.weight": r(classes, C),
           "head.bias": torch.zeros(classes)})
torch.save({"model": sd}, a.out)
