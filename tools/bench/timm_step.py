"""timm's own training step, timed like skd-bench-step: images/s of forward + backward + AdamW on
timm's VisionTransformer, with timm's Mixup/CutMix and SoftTargetCrossEntropy, on random images held
in memory.

Per step = (t(W + N steps) - t(W steps)) / N over two fresh runs (model built anew each time), the
same difference skd-bench-step takes. The recipe matches skd-bench-step's: AdamW (timm's
create_optimizer_v2: weight decay 0.05, none on 1-D params / cls_token / pos_embed), lr 5e-4 cosine,
Mixup 0.8 / CutMix 1.0 / label smoothing 0.1, drop_path 0.1, one loss.item() per step (the NaN check
timm's train loop does not do, skd-train's does on the CPU).

--data device holds the images on the device (no host copy per step); --compile runs the model
through torch.compile (its compile time falls in the untimed first run).
Run with the Python of scripts/setup_venv.sh (torch 2.x + timm) or Debian's (torch 1.13, if timm is
importable there). Prints one JSON line.
"""
import argparse
import json
import math
import time

import torch
import timm
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2

NAMED = {
    "deit_tiny": dict(img_size=224, patch_size=16, embed_dim=192, depth=12, num_heads=3, num_classes=1000),
    "deit_small": dict(img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=6, num_classes=1000),
    "deit_base": dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=1000),
}
ARCH_KEYS = {"img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads",
             "mlp_ratio", "qkv_bias"}


def config(arch):
    if arch in NAMED:
        return dict(NAMED[arch])
    with open(arch) as f:
        j = json.load(f)
    j = j.get("create_kwargs", j)
    if j.get("family", "vit") != "vit":
        raise SystemExit(f"{arch}: only ViT configs (timm's VisionTransformer)")
    return {k: v for k, v in j.items() if k in ARCH_KEYS}


def run(kw, args, steps, device):
    torch.manual_seed(1)
    model = timm.models.vision_transformer.VisionTransformer(drop_path_rate=0.1, **kw).to(device)
    model.train()
    fwd = torch.compile(model) if args.compile else model
    opt = create_optimizer_v2(model, "adamw", lr=5e-4, weight_decay=0.05)
    mix = Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, label_smoothing=0.1,
                num_classes=kw["num_classes"])
    crit = SoftTargetCrossEntropy()
    g = torch.Generator().manual_seed(0)
    size, chans = kw["img_size"], kw.get("in_chans", 3)
    n = args.batch * (steps + 1)
    images = torch.randn(n, chans, size, size, generator=g)
    labels = torch.randint(kw["num_classes"], (n,), generator=g)
    if args.data == "device":  # batches already on the device, as skd-bench-step --data device
        images, labels = images.to(device), labels.to(device)
    amp = args.amp == "bf16"
    t0 = time.perf_counter()
    for s in range(steps):
        x = images[s * args.batch:(s + 1) * args.batch].to(device, non_blocking=True)
        y = labels[s * args.batch:(s + 1) * args.batch].to(device, non_blocking=True)
        x, t = mix(x, y)
        lr = 1e-5 + 0.5 * (5e-4 - 1e-5) * (1 + math.cos(math.pi * s / max(1, steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
            loss = crit(fwd(x), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cpu" or (s + 1) % 50 == 0 or s + 1 == steps:
            loss.item()
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mixup", type=float, default=0.8)
    p.add_argument("--cutmix", type=float, default=1.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="none")
    p.add_argument("--data", default="host", choices=["host", "device"],
                   help="host: images in host memory, copied per step; device: held on --device")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (torch >= 2)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    kw = config(args.arch)
    run(kw, args, 1, args.device)  # untimed: one-time costs of the process, as skd-bench-step does
    t_warm = run(kw, args, args.warmup, args.device)
    t_all = run(kw, args, args.warmup + args.steps, args.device)
    per_step = (t_all - t_warm) / args.steps
    print(json.dumps({"impl": "timm-compiled" if args.compile else "timm", "mode": "train", "arch": args.arch,
                      "torch": torch.__version__, "timm": timm.__version__, "threads": args.threads,
                      "device": args.device, "amp": args.amp, "data": args.data, "batch": args.batch,
                      "steps": args.steps, "seconds_per_step": round(per_step, 5),
                      "images_per_s": round(args.batch / per_step, 2)}), flush=True)


if __name__ == "__main__":
    main()
