// ViT/DeiT (timm VisionTransformer semantics: class token, learned position embedding added to all
// tokens, pre-norm blocks, fused qkv, LayerNorm eps 1e-6, erf GELU, class-token pooling).
#pragma once

#include <torch/torch.h>

#include "skd/models/model.h"

namespace skd::models {

namespace detail {
class AttentionImpl;
class MlpImpl;
}  // namespace detail

class VitBlockImpl : public torch::nn::Module {
 public:
  VitBlockImpl(const BlockSpec& spec, BlockWidth stored, bool qkv_bias, double eps);
  torch::Tensor forward(torch::Tensor x, BlockWidth run, double scale, const ForwardOptions& opt);

  BlockSpec spec;
  BlockWidth stored;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  std::shared_ptr<detail::AttentionImpl> attn;
  std::shared_ptr<detail::MlpImpl> mlp;
};
TORCH_MODULE(VitBlock);

class VisionTransformerImpl : public ElasticModelImpl {
 public:
  explicit VisionTransformerImpl(ModelConfig config);
  torch::Tensor forward_features(const torch::Tensor& x, const ForwardOptions& opt = {}) override;
  torch::Tensor forward_head(const torch::Tensor& features, bool pre_logits = false) override;

  torch::Tensor cls_token, pos_embed;
  torch::nn::Conv2d patch_embed_proj{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};
};

}  // namespace skd::models
