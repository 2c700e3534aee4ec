// Swin Transformer (timm >= 0.9 semantics: patch embed + norm, NHWC, shifted windows with the -100
// mask, relative position bias, PatchMerging at the start of stages 1.., final norm, avg pool).
#pragma once

#include <torch/torch.h>

#include "skd/models/model.h"

namespace skd::models {

namespace detail {
class AttentionImpl;
class MlpImpl;
}  // namespace detail

// Relative-position index [w*w, w*w] (int64) and the shifted-window mask [nW, w*w, w*w] (-100/0).
torch::Tensor swin_relative_position_index(int64_t window);
torch::Tensor swin_attention_mask(int64_t res_h, int64_t res_w, int64_t window, int64_t shift);

class SwinBlockImpl : public torch::nn::Module {
 public:
  // A block with attention (stored.attn > 0) keeps a relative-position index and, when shifted, a
  // window mask: the given ones (shared with the other blocks of its stage), else its own.
  SwinBlockImpl(const BlockSpec& spec, BlockWidth stored, bool qkv_bias, double eps,
                torch::Tensor rel_index = {}, torch::Tensor attn_mask = {});
  // x NHWC [B, H, W, C].
  torch::Tensor forward(torch::Tensor x, BlockWidth run, double scale, const ForwardOptions& opt);

  BlockSpec spec;
  BlockWidth stored;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  std::shared_ptr<detail::AttentionImpl> attn;
  std::shared_ptr<detail::MlpImpl> mlp;
  torch::Tensor rel_index, attn_mask;  // derived, not part of the state_dict
};
TORCH_MODULE(SwinBlock);

class PatchMergingImpl : public torch::nn::Module {
 public:
  PatchMergingImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // [B,H,W,C] -> [B,H/2,W/2,2C]
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear reduction{nullptr};
};
TORCH_MODULE(PatchMerging);

class SwinTransformerImpl : public ElasticModelImpl {
 public:
  explicit SwinTransformerImpl(ModelConfig config);
  torch::Tensor forward_features(const torch::Tensor& x, const ForwardOptions& opt = {}) override;
  torch::Tensor forward_head(const torch::Tensor& features, bool pre_logits = false) override;

  torch::nn::Conv2d patch_embed_proj{nullptr};
  torch::nn::LayerNorm patch_embed_norm{nullptr};
  std::vector<PatchMerging> downsample;  // per stage; null for stage 0
  std::vector<SwinBlock> blocks;         // all blocks, in order
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head_fc{nullptr};

 private:
  // Moves the blocks' derived buffers to `device`, one copy per shared buffer.
  void move_derived(const torch::Device& device);
};

}  // namespace skd::models
