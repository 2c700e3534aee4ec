"""WPAC's statistics pass written in plain PyTorch, for timing next to the C++ one (skd-bench-step
--wpac, whose report's "statistics" seconds cover the same work): per proxy batch a forward of timm's
VisionTransformer with the qkv outputs and the post-GELU MLP activations kept (explicit attention,
timm's fused_attn off, as the C++ statistics pass runs it), the gradient of the summed true-class
logits with respect to those tensors only (torch.autograd.grad), and the float64 sums of
include/skd/wpac/wpac.h: per block, head and dim the first- and second-order Taylor sums |g * f| and
0.5 (g * f)^2 of q, k and v; per head the token weights mean_j |g * f|, the batch-centred weighted
scatter matrices S_v and S_qk; the MLP units' 0.5 (g * a)^2.

Random weights and random images (the time does not depend on the values). Prints one JSON line.
"""
import argparse
import json
import time

import torch
import timm

NAMED = {
    "deit_tiny": dict(img_size=224, patch_size=16, embed_dim=192, depth=12, num_heads=3, num_classes=1000),
    "deit_small": dict(img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=6, num_classes=1000),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", required=True, help="deit_tiny | deit_small | a JSON model config")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.arch in NAMED:
        kw = dict(NAMED[a.arch])
    else:
        j = json.load(open(a.arch))
        j = j.get("create_kwargs", j)
        kw = {k: v for k, v in j.items() if k in ("img_size", "patch_size", "in_chans", "num_classes",
                                                   "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias")}
    torch.manual_seed(1)
    model = timm.models.vision_transformer.VisionTransformer(**kw).eval()
    for q in model.parameters():
        q.requires_grad_(False)
    H = kw["num_heads"]
    C = kw["embed_dim"]
    hd = C // H
    kept = {}
    for i, blk in enumerate(model.blocks):
        blk.attn.fused_attn = False
        blk.attn.qkv.register_forward_hook(lambda m, inp, out, i=i: kept.__setitem__(("qkv", i), out))
        blk.mlp.act.register_forward_hook(lambda m, inp, out, i=i: kept.__setitem__(("mlp", i), out))
    depth = len(model.blocks)
    S_v = torch.zeros(depth, H, hd, hd, dtype=torch.float64)
    S_qk = torch.zeros(depth, H, hd, hd, dtype=torch.float64)
    mlp_score = [None] * depth
    fo = torch.zeros(depth, 3, H, hd, dtype=torch.float64)
    so = torch.zeros(depth, 3, H, hd, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    size, chans, classes = kw["img_size"], kw.get("in_chans", 3), kw["num_classes"]
    t0 = time.perf_counter()
    done = 0
    while done < a.samples:
        n = min(a.batch, a.samples - done)
        x = torch.randn(n, chans, size, size, generator=g).requires_grad_(True)
        y = torch.arange(done, done + n) % classes
        kept.clear()
        logits = model(x)
        cost = logits.gather(1, y[:, None]).sum()
        keys = [("qkv", i) for i in range(depth)] + [("mlp", i) for i in range(depth)]
        grads = torch.autograd.grad(cost, [kept[k] for k in keys])
        for (kind, i), gr in zip(keys, grads):
            f = kept[(kind, i)].detach()
            if kind == "mlp":
                s = (0.5 * (gr * f) ** 2).sum(dim=(0, 1)).double()
                mlp_score[i] = s if mlp_score[i] is None else mlp_score[i] + s
                continue
            B, T, _ = f.shape
            f5 = f.view(B, T, 3, H, hd)
            p5 = gr.view(B, T, 3, H, hd) * f5
            so[i] += (0.5 * p5.square()).sum(dim=(0, 1), dtype=torch.float64)
            fo[i] += p5.abs().sum(dim=(0, 1), dtype=torch.float64)
            w = p5.abs().mean(-1)                                        # [B, T, 3, H]
            xc = f5 - f5.mean(dim=(0, 1), keepdim=True)                  # batch-centred
            xc = xc.reshape(B * T, 3, H, hd).double()
            w = w.reshape(B * T, 3, H).double()
            for s_idx, target in ((2, S_v), (0, S_qk), (1, S_qk)):
                xs = xc[:, s_idx]                                         # [BT, H, hd]
                target[i] += torch.einsum("th,thi,thj->hij", w[:, s_idx], xs, xs)
        done += n
    secs = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "mode": "wpac_statistics", "arch": a.arch, "torch": torch.__version__,
                      "threads": a.threads, "proxy_images": a.samples, "batch": a.batch,
                      "seconds": round(secs, 3), "checksum": float(S_v.trace() if S_v.dim() == 2 else S_v.sum())}))


if __name__ == "__main__":
    main()
