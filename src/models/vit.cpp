#include "skd/models/vit.h"

#include "layers.h"

namespace skd::models {

VitBlockImpl::VitBlockImpl(const BlockSpec& s, BlockWidth st, bool qkv_bias, double eps)
    : spec(s), stored(st) {
  if (stored.attn > 0) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.dim}).eps(eps)));
    attn = register_module("attn", std::make_shared<detail::AttentionImpl>(s.dim, s.num_heads, stored.attn, qkv_bias, 0));
  }
  if (stored.mlp > 0) {
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.dim}).eps(eps)));
    mlp = register_module("mlp", std::make_shared<detail::MlpImpl>(s.dim, stored.mlp));
  }
}

torch::Tensor VitBlockImpl::forward(torch::Tensor x, BlockWidth run, double scale,
                                    const ForwardOptions& opt) {
  const double dp = opt.drop_path > 0 ? block_drop_path(opt.drop_path, spec.index, spec.total_blocks) : 0.0;
  if (run.attn > 0) {
    if (opt.probes && opt.probes->capture_qkv) opt.probes->qkv_blocks.push_back(spec.index);
    x = x + drop_path(attn->forward(norm1(x), run.attn, scale, opt), dp, is_training());
  } else if (attn && opt.zero_grad_removed) {
    x = x + (detail::zero_touch(*attn) + detail::zero_touch(*norm1));
  }
  if (run.mlp > 0) {
    if (opt.probes && opt.probes->capture_mlp_act) opt.probes->mlp_blocks.push_back(spec.index);
    x = x + drop_path(mlp->forward(norm2(x), run.mlp, opt.probes), dp, is_training());
  } else if (mlp && opt.zero_grad_removed) {
    x = x + (detail::zero_touch(*mlp) + detail::zero_touch(*norm2));
  }
  return x;
}

VisionTransformerImpl::VisionTransformerImpl(ModelConfig cfg) : ElasticModelImpl(std::move(cfg)) {
  const auto& c = config_;
  const int64_t grid = c.img_size / c.patch_size;
  cls_token = register_parameter("cls_token", torch::empty({1, 1, c.embed_dim}).normal_(0.0, 1e-6));
  pos_embed = register_parameter("pos_embed", torch::empty({1, 1 + grid * grid, c.embed_dim}).normal_(0.0, 0.02));
  // Registered through a holder module so the key is "patch_embed.proj.*" as in timm.
  auto pe = std::make_shared<torch::nn::Module>();
  patch_embed_proj = pe->register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in_chans, c.embed_dim, c.patch_size).stride(c.patch_size)));
  register_module("patch_embed", pe);
  blocks = register_module("blocks", torch::nn::ModuleList());
  const auto specs = block_specs(c);
  const auto stored = stored_widths(c);
  for (size_t i = 0; i < specs.size(); ++i)
    blocks->push_back(VitBlock(specs[i], stored[i], c.qkv_bias, c.norm_eps));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.embed_dim}).eps(c.norm_eps)));
  head = register_module("head", detail::make_linear(c.embed_dim, c.num_classes));
  detail::init_linear(head);
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& x, const ForwardOptions& opt) {
  check_input(x);
  Widths storage;
  const Widths& run = run_widths(opt, storage);
  auto t = patch_embed_proj(x).flatten(2).transpose(1, 2);  // token index = y * grid + x
  t = torch::cat({cls_token.expand({t.size(0), -1, -1}), t}, 1) + pos_embed;
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto* blk = blocks[i]->as<VitBlockImpl>();
    t = blk->forward(t, run[i], attention_scale(config_, blk->spec), opt);
    if (opt.probes && opt.probes->capture_blocks) opt.probes->blocks.push_back(t);
  }
  return norm(t);
}

torch::Tensor VisionTransformerImpl::forward_head(const torch::Tensor& features, bool pre_logits) {
  auto pooled = features.select(1, 0);
  return pre_logits ? pooled : head(pooled);
}

}  // namespace skd::models
