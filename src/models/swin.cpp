#include "skd/models/swin.h"

#include <map>
#include <tuple>

#include "layers.h"

namespace skd::models {

torch::Tensor swin_relative_position_index(int64_t w) {
  auto coords = torch::stack(torch::meshgrid({torch::arange(w), torch::arange(w)}, "ij")).flatten(1);
  auto rel = (coords.unsqueeze(2) - coords.unsqueeze(1)).permute({1, 2, 0}).contiguous();
  auto dy = rel.select(2, 0) + (w - 1);
  auto dx = rel.select(2, 1) + (w - 1);
  return (dy * (2 * w - 1) + dx).to(torch::kLong);
}

torch::Tensor swin_attention_mask(int64_t H, int64_t W, int64_t w, int64_t s) {
  auto img = torch::zeros({H, W});
  const int64_t hb[4] = {0, H - w, H - s, H};
  const int64_t wb[4] = {0, W - w, W - s, W};
  float label = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      img.slice(0, hb[i], hb[i + 1]).slice(1, wb[j], wb[j + 1]).fill_(label);
      label += 1;
    }
  auto win = img.view({H / w, w, W / w, w}).permute({0, 2, 1, 3}).reshape({-1, w * w});
  auto diff = win.unsqueeze(1) - win.unsqueeze(2);
  return torch::where(diff != 0, torch::full_like(diff, -100.0), torch::zeros_like(diff));
}

SwinBlockImpl::SwinBlockImpl(const BlockSpec& s, BlockWidth st, bool qkv_bias, double eps,
                             torch::Tensor index, torch::Tensor mask)
    : spec(s), stored(st) {
  if (stored.attn > 0) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.dim}).eps(eps)));
    attn = register_module("attn", std::make_shared<detail::AttentionImpl>(s.dim, s.num_heads, stored.attn, qkv_bias, s.window));
  }
  if (stored.mlp > 0) {
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.dim}).eps(eps)));
    mlp = register_module("mlp", std::make_shared<detail::MlpImpl>(s.dim, stored.mlp));
  }
  // Only blocks with attention use them; validate() bounds their size (kMaxDerivedBufferBytes).
  if (stored.attn > 0) {
    rel_index = index.defined() ? index : swin_relative_position_index(s.window).view({-1});
    if (s.shift > 0)
      attn_mask = mask.defined() ? mask : swin_attention_mask(s.res_h, s.res_w, s.window, s.shift);
  }
}

torch::Tensor SwinBlockImpl::forward(torch::Tensor x, BlockWidth run, double scale,
                                     const ForwardOptions& opt) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t w = spec.window, s = spec.shift;
  const double dp = opt.drop_path > 0 ? block_drop_path(opt.drop_path, spec.index, spec.total_blocks) : 0.0;
  if (run.attn > 0) {
    if (rel_index.device() != x.device()) {
      rel_index = rel_index.to(x.device());
      if (attn_mask.defined()) attn_mask = attn_mask.to(x.device());
    }
    if (opt.probes && opt.probes->capture_qkv) opt.probes->qkv_blocks.push_back(spec.index);
    auto h = norm1(x);
    if (s > 0) h = torch::roll(h, {-s, -s}, {1, 2});
    auto win = h.view({B, H / w, w, W / w, w, C}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, w * w, C});
    auto out = attn->forward(win, run.attn, scale, opt, rel_index,
                             attn_mask.defined() ? attn_mask.to(win.dtype()) : attn_mask);
    h = out.view({B, H / w, W / w, w, w, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B, H, W, C});
    if (s > 0) h = torch::roll(h, {s, s}, {1, 2});
    x = x + drop_path(h, dp, is_training());
  } else if (attn && opt.zero_grad_removed) {
    x = x + (detail::zero_touch(*attn) + detail::zero_touch(*norm1));
  }
  if (run.mlp > 0) {
    if (opt.probes && opt.probes->capture_mlp_act) opt.probes->mlp_blocks.push_back(spec.index);
    auto t = x.reshape({B, H * W, C});
    t = t + drop_path(mlp->forward(norm2(t), run.mlp, opt.probes), dp, is_training());
    x = t.reshape({B, H, W, C});
  } else if (mlp && opt.zero_grad_removed) {
    x = x + (detail::zero_touch(*mlp) + detail::zero_touch(*norm2));
  }
  return x;
}

PatchMergingImpl::PatchMergingImpl(int64_t dim, double eps) {
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * dim}).eps(eps)));
  reduction = register_module("reduction", detail::make_linear(4 * dim, 2 * dim, false));
  detail::init_linear(reduction);
}

torch::Tensor PatchMergingImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  // Channel order (dy, dx) = (0,0), (1,0), (0,1), (1,1), as timm and the Microsoft code.
  auto y = x.reshape({B, H / 2, 2, W / 2, 2, C}).permute({0, 1, 3, 4, 2, 5}).flatten(3);
  return reduction(norm(y));
}

SwinTransformerImpl::SwinTransformerImpl(ModelConfig cfg) : ElasticModelImpl(std::move(cfg)) {
  const auto& c = config_;
  auto pe = std::make_shared<torch::nn::Module>();
  patch_embed_proj = pe->register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in_chans, c.embed_dim, c.patch_size).stride(c.patch_size)));
  patch_embed_norm = pe->register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.embed_dim}).eps(c.norm_eps)));
  register_module("patch_embed", pe);
  auto layers = register_module("layers", torch::nn::ModuleList());
  const auto specs = block_specs(c);
  const auto stored = stored_widths(c);
  // Derived buffers, built once and shared: what swin_derived_buffer_bytes counts and validate() bounds.
  std::map<int64_t, torch::Tensor> indices;                              // by window
  std::map<std::tuple<int64_t, int64_t, int64_t>, torch::Tensor> masks;  // by (res, window, shift)
  size_t next = 0;
  for (size_t st = 0; st < c.depths.size(); ++st) {
    auto stage = std::make_shared<torch::nn::Module>();
    if (st > 0) {
      downsample.push_back(stage->register_module("downsample", PatchMerging((c.embed_dim << st) / 2, c.norm_eps)));
    } else {
      downsample.push_back(PatchMerging(nullptr));
    }
    auto list = stage->register_module("blocks", torch::nn::ModuleList());
    for (int64_t b = 0; b < c.depths[st]; ++b, ++next) {
      const BlockSpec& sp = specs[next];
      torch::Tensor index, mask;
      if (stored[next].attn > 0) {
        auto& i = indices[sp.window];
        if (!i.defined()) i = swin_relative_position_index(sp.window).view({-1});
        index = i;
        if (sp.shift > 0) {
          auto& m = masks[{sp.res_h, sp.window, sp.shift}];
          if (!m.defined()) m = swin_attention_mask(sp.res_h, sp.res_w, sp.window, sp.shift);
          mask = m;
        }
      }
      blocks.push_back(SwinBlock(sp, stored[next], c.qkv_bias, c.norm_eps, index, mask));
      list->push_back(blocks.back());
    }
    layers->push_back(stage);
  }
  const int64_t last = c.embed_dim << (c.depths.size() - 1);
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({last}).eps(c.norm_eps)));
  auto head = std::make_shared<torch::nn::Module>();
  head_fc = head->register_module("fc", detail::make_linear(last, c.num_classes));
  detail::init_linear(head_fc);
  register_module("head", head);
}

torch::Tensor SwinTransformerImpl::forward_features(const torch::Tensor& x, const ForwardOptions& opt) {
  check_input(x);
  Widths storage;
  const Widths& run = run_widths(opt, storage);
  move_derived(x.device());
  auto t = patch_embed_norm(patch_embed_proj(x).permute({0, 2, 3, 1}));
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto& spec = blocks[i]->spec;
    if (spec.stage > 0 && (i == 0 || blocks[i - 1]->spec.stage != spec.stage))
      t = downsample[spec.stage]->forward(t);
    t = blocks[i]->forward(t, run[i], attention_scale(config_, spec), opt);
    if (opt.probes && opt.probes->capture_blocks) opt.probes->blocks.push_back(t);
  }
  return norm(t);
}

void SwinTransformerImpl::move_derived(const torch::Device& device) {
  // Keyed by the buffer's TensorImpl; the originals stay referenced here until all blocks are done,
  // so no address is reused for another buffer meanwhile.
  std::map<const void*, std::pair<torch::Tensor, torch::Tensor>> moved;
  auto move = [&](torch::Tensor& t) {
    if (!t.defined() || t.device() == device) return;
    auto [it, fresh] = moved.try_emplace(t.unsafeGetTensorImpl());
    if (fresh) it->second = {t, t.to(device)};
    t = it->second.second;
  };
  for (auto& b : blocks) {
    move(b->rel_index);
    move(b->attn_mask);
  }
}

torch::Tensor SwinTransformerImpl::forward_head(const torch::Tensor& features, bool pre_logits) {
  auto pooled = features.mean({1, 2});
  return pre_logits ? pooled : head_fc(pooled);
}

}  // namespace skd::models
