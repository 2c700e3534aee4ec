#!/usr/bin/python3
"""PyTorch eager counterpart of skd-train: images/s of a plain ViT training loop on Fashion-MNIST.

Run with Debian's /usr/bin/python3 (python3-torch); plain PyTorch, no timm. The model follows timm's
VisionTransformer (class token, learned position embedding, pre-norm blocks, LayerNorm eps 1e-6,
exact GELU, no dropout / drop-path) and is built from a JSON model config such as
configs/models/vit_fmnist_demo.json. The loop mirrors src/train/trainer.cpp: randperm per epoch from a
seeded generator, drop_last batches gathered by index from the in-memory tensor, cross entropy with
label smoothing, AdamW with two parameter groups (no decay for 1-D params, cls_token, pos_embed),
per-step warmup + cosine LR, loss.item() every step (NaN check).

Prints one JSON line at the end:
{"impl":"python-eager","torch":..,"threads":..,"batch_size":..,"images":..,"seconds":..,
 "images_per_s":..,"images_per_s_after_warmup":..,"final_loss":..}
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # same constants as src/data/fashion_mnist.cpp
ARCH_KEYS = {"img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads",
             "mlp_ratio", "qkv_bias"}
IGNORED_KEYS = {"family", "name"}


# ---- model (timm VisionTransformer semantics) ----

class Attention(nn.Module):
    def __init__(self, dim, num_heads, qkv_bias):
        super().__init__()
        assert dim % num_heads == 0, "embed_dim must be divisible by num_heads"
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf), timm's default
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, dim):
        super().__init__()
        assert img_size % patch_size == 0, "img_size must be divisible by patch_size"
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads,
                 mlp_ratio=4.0, qkv_bias=True):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.patch_embed.num_patches, embed_dim))
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        # timm's default init: trunc_normal(.02) for pos_embed / cls_token / Linear weights, zero biases,
        # LayerNorm weight 1 bias 0 (PyTorch default), Conv2d PyTorch default.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


# Named architectures (timm's), for --data random: DeiT-Ti as `skd-bench-step --arch deit_tiny` builds it.
NAMED_ARCHS = {
    "deit_tiny": {"img_size": 224, "patch_size": 16, "in_chans": 3, "num_classes": 1000, "embed_dim": 192,
                  "depth": 12, "num_heads": 3, "mlp_ratio": 4, "qkv_bias": True},
    "deit_small": {"img_size": 224, "patch_size": 16, "in_chans": 3, "num_classes": 1000, "embed_dim": 384,
                   "depth": 12, "num_heads": 6, "mlp_ratio": 4, "qkv_bias": True},
}


def load_arch(path):
    if path in NAMED_ARCHS:
        return dict(NAMED_ARCHS[path])
    with open(path) as f:
        cfg = json.load(f)
    if not isinstance(cfg, dict):
        sys.exit(f"--arch '{path}': expected a JSON object")
    unknown = sorted(set(cfg) - ARCH_KEYS - IGNORED_KEYS)
    if unknown:
        sys.exit(f"--arch '{path}': unknown key(s) {unknown}")
    if cfg.get("family", "vit") != "vit":
        sys.exit(f"--arch '{path}': family '{cfg['family']}' not supported (only 'vit')")
    missing = sorted(ARCH_KEYS - {"mlp_ratio", "qkv_bias"} - set(cfg))
    if missing:
        sys.exit(f"--arch '{path}': missing key(s) {missing}")
    return {k: cfg[k] for k in ARCH_KEYS if k in cfg}


# ---- data ----

def read_idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    zero, dtype_code, ndim = buf[0] << 8 | buf[1], buf[2], buf[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def random_train(n, in_chans, img_size, num_classes, seed):
    """n standard-normal images and uniform labels, held in memory (as skd-bench-step's RandomImages)."""
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, in_chans, img_size, img_size, generator=gen)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    return x, y


def load_fmnist_train(limit, in_chans, img_size):
    images = read_idx(os.path.join(FMNIST_DIR, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(FMNIST_DIR, "train-labels-idx1-ubyte.gz"))
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    if in_chans != 1 or img_size != images.shape[1]:
        sys.exit(f"this benchmark feeds Fashion-MNIST as-is: needs in_chans 1 and img_size {images.shape[1]}")
    x = torch.from_numpy(images.copy()).float().div_(255).sub_(MEAN).div_(STD).unsqueeze(1).contiguous()
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ---- training ----

def lr_at(args, epoch):  # skd::train::LrSchedule with warmup_lr 0: linear warmup, then cosine lr -> min_lr
    if epoch < args.warmup_epochs:
        return args.lr * epoch / args.warmup_epochs
    span = max(1e-9, args.epochs - args.warmup_epochs)
    t = min(1.0, (epoch - args.warmup_epochs) / span)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * t))


def param_groups(model, weight_decay):
    decay, plain = [], []
    for name, p in model.named_parameters():
        (plain if p.dim() <= 1 or name in ("cls_token", "pos_embed") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", required=True,
                    help="JSON model config (timm ViT keys), or " + " | ".join(sorted(NAMED_ARCHS)))
    ap.add_argument("--data", choices=("fashion-mnist", "random"), default="fashion-mnist",
                    help="Fashion-MNIST's training images, or --limit random images of the model's input size")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (0 = all)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--warmup-epochs", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup-steps", type=int, default=5, help="steps left out of images_per_s_after_warmup")
    ap.add_argument("--log-every", type=int, default=0, help="steps between progress lines on stderr (0 = none)")
    args = ap.parse_args()
    if args.epochs <= 0 or args.batch_size <= 0 or args.threads <= 0 or args.warmup_steps < 0:
        ap.error("--epochs, --batch-size, --threads must be positive, --warmup-steps >= 0")
    if not 0 <= args.warmup_epochs <= args.epochs:
        ap.error("--warmup-epochs must be in [0, --epochs]")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = load_arch(args.arch)
    model = VisionTransformer(**cfg)
    if args.data == "random":
        if args.limit <= 0:
            ap.error("--data random needs --limit N (the number of images)")
        x_all, y_all = random_train(args.limit, cfg["in_chans"], cfg["img_size"], cfg["num_classes"], args.seed)
    else:
        x_all, y_all = load_fmnist_train(args.limit, cfg["in_chans"], cfg["img_size"])
    n = x_all.shape[0]
    steps_per_epoch = n // args.batch_size  # drop_last
    if steps_per_epoch == 0:
        sys.exit(f"training set of {n} images is smaller than one batch of {args.batch_size}")
    total_steps = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)

    step_total, loss_value, t_after_warmup = 0, float("nan"), None
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for step in range(steps_per_epoch):
            lr = lr_at(args, epoch + step / steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            images, labels = x_all.index_select(0, idx), y_all.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels, label_smoothing=args.smoothing)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                sys.exit(f"loss is {loss_value} at epoch {epoch} step {step}")
            loss.backward()
            opt.step()
            loss_sum += loss_value
            step_total += 1
            if step_total == args.warmup_steps:
                t_after_warmup = time.perf_counter()
            if args.log_every > 0 and (step_total % args.log_every == 0 or step_total == total_steps):
                el = time.perf_counter() - t0
                print(f"epoch {epoch + 1} step {step + 1}/{steps_per_epoch} loss {loss_sum / (step + 1):.4f} "
                      f"(epoch mean, like skd-train; this batch {loss_value:.4f}) lr {lr:.3g} "
                      f"| {step_total * args.batch_size / el:.1f} img/s", file=sys.stderr, flush=True)
    t1 = time.perf_counter()

    seconds = t1 - t0
    images = total_steps * args.batch_size
    if args.warmup_steps == 0:
        after = images / seconds
    elif t_after_warmup is not None and total_steps > args.warmup_steps:
        after = (total_steps - args.warmup_steps) * args.batch_size / (t1 - t_after_warmup)
    else:
        after = None  # not enough steps to leave the warm-up out
    print(json.dumps({"impl": "python-eager", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "batch_size": args.batch_size, "images": images, "seconds": round(seconds, 4),
                      "images_per_s": round(images / seconds, 2),
                      "images_per_s_after_warmup": None if after is None else round(after, 2),
                      "final_loss": round(loss_value, 5)}), flush=True)


if __name__ == "__main__":
    main()
