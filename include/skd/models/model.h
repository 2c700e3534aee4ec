// The elastic model interface shared by ViT/DeiT and Swin, and the factory.
//
// One class per family serves the pretrained model, the super-network and extracted sub-networks:
// a block holds parameters at its stored widths (config.widths), and a forward may ask for
// smaller per-block widths, which slices the stored parameters (gradients land in the full
// tensors, zeros elsewhere). Parameter names are timm's state_dict keys.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "skd/models/config.h"

namespace skd::models {

// Intermediate tensors a forward can expose (for Taylor importance / WPAC and for debugging).
// Tensors are appended per executed block, in block order; a removed branch appends nothing
// and records its block index in the *_blocks vectors.
struct Probes {
  bool capture_qkv = false;      // qkv Linear output [B*, T, 3*H*a] (Swin: per window)
  bool capture_mlp_act = false;  // post-GELU MLP activation [B, T, m]
  bool capture_blocks = false;   // block outputs (ViT [B,T,C], Swin NHWC)
  bool retain_grad = false;      // call retain_grad() on captured qkv/mlp tensors
  std::vector<torch::Tensor> qkv, mlp_act, blocks;
  std::vector<int64_t> qkv_blocks, mlp_blocks;
};

// How attention is computed. FUSED: torch's scaled_dot_product_attention with the block's own scale
// (sub-networks keep the original head dim's) on LibTorch >= 2.1, the explicit form elsewhere;
// EXPLICIT: softmax(q kᵀ · scale + bias + mask) v written out (WPAC statistics, parity tests).
// Both are the same function (tested to 1e-5, forward and gradients).
enum class AttentionKernel { FUSED, EXPLICIT };
// Whether this LibTorch has the fused kernel (else FUSED runs the explicit form).
bool fused_attention_available();

struct ForwardOptions {
  // Per-block widths to run at (each <= the stored width); null = stored widths.
  const Widths* widths = nullptr;
  Probes* probes = nullptr;
  // Keep parameters of branches removed by `widths` in the autograd graph with zero gradient
  // (0 * sum(params)), so optimizers treat them exactly like the reference (PIAD).
  bool zero_grad_removed = false;
  // Stochastic depth (timm drop_path): in training mode each residual branch of block i is dropped
  // per sample with probability drop_path * i / (blocks - 1) (kept samples scaled by 1/keep).
  // Draws come from torch's default generator.
  double drop_path = 0;
  AttentionKernel attention = AttentionKernel::FUSED;
};

// timm DropPath on a residual branch output x [B, ...] (identity when rate is 0 or not training).
torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training);
// Drop-path rate of block `index` of `blocks` under the linear rule for a maximum `rate`.
double block_drop_path(double rate, int64_t index, int64_t blocks);

class ElasticModelImpl;
// Folds every block's softmax scale into its query weights (declared in slice.h).
void fold_attention_scale(ElasticModelImpl& model);

class ElasticModelImpl : public torch::nn::Module {
 public:
  explicit ElasticModelImpl(ModelConfig config) : config_(std::move(config)) {}
  ~ElasticModelImpl() override = default;

  const ModelConfig& config() const { return config_; }
  // Widths of the parameters this model holds.
  Widths widths() const { return stored_widths(config_); }

  // Logits [B, num_classes] for an input [B, in_chans, img, img].
  torch::Tensor forward(const torch::Tensor& x, const ForwardOptions& opt = {});
  // Backbone output after the final norm: ViT [B, 1+N, C]; Swin NHWC [B, H', W', C].
  virtual torch::Tensor forward_features(const torch::Tensor& x, const ForwardOptions& opt = {}) = 0;
  // Pooling (+ head unless pre_logits): ViT takes the class token, Swin averages over H, W.
  virtual torch::Tensor forward_head(const torch::Tensor& features, bool pre_logits = false) = 0;

 protected:
  // Checks an input batch against the config; throws std::invalid_argument naming the shape.
  void check_input(const torch::Tensor& x) const;
  const Widths& run_widths(const ForwardOptions& opt, Widths& storage) const;
  friend void fold_attention_scale(ElasticModelImpl& model);  // marks the config folded

  ModelConfig config_;
};
// Handle to a model of either family.
using ElasticModel = std::shared_ptr<ElasticModelImpl>;

// Builds an (untrained, timm-initialised) model for `config`, validating it first.
ElasticModel create_model(const ModelConfig& config);

// Slicing helpers shared by the families (exposed for tests and for extraction).
// qkv weight [3*H*a_s, C] -> [3*H*a, C] keeping the leading `a` dims of every head in q, k, v.
torch::Tensor slice_qkv_rows(const torch::Tensor& w, int64_t heads, int64_t a);
// proj weight [C, H*a_s] -> [C, H*a] keeping the leading `a` input dims of every head.
torch::Tensor slice_proj_cols(const torch::Tensor& w, int64_t heads, int64_t a);

}  // namespace skd::models
