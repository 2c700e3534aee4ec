// Elastic building blocks shared by ViT and Swin (private to src/models): multi-head attention
// and MLP whose parameters are held at a stored width and can run at any smaller width.
#pragma once

#include <torch/torch.h>

#include "skd/models/model.h"

namespace skd::models::detail {

// While alive (this thread), Linear layers made by make_linear are not initialised.
class SkipInit {
 public:
  SkipInit();
  ~SkipInit();
  SkipInit(const SkipInit&) = delete;
  SkipInit& operator=(const SkipInit&) = delete;

 private:
  bool previous_;
};

// Fused-qkv multi-head attention. `stored` = dims per head held in the parameters (q, k and v
// share it). Optional Swin relative-position bias table [(2w-1)^2, heads].
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t heads, int64_t stored, bool qkv_bias, int64_t rel_window);

  // x [B*, T, C]; runs at width a (1 <= a <= stored). rel_index [T*T] (Swin), mask [nW, T, T].
  // opt.probes receives the qkv output; opt.attention chooses the kernel.
  torch::Tensor forward(const torch::Tensor& x, int64_t a, double scale, const ForwardOptions& opt,
                        const torch::Tensor& rel_index = {}, const torch::Tensor& mask = {});

  int64_t heads, stored;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor relative_position_bias_table;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t stored);
  torch::Tensor forward(const torch::Tensor& x, int64_t m, Probes* probes);

  int64_t stored;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

// torch::nn::Linear(in, out); under a SkipInit guard its parameters are allocated but left
// uninitialised (LibTorch's kaiming_uniform does not run): for models whose every parameter is about
// to be overwritten (slice_model).
torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias = true);
// timm-style init of an existing Linear (skipped under a SkipInit guard).
void init_linear(torch::nn::Linear& l);
// x Wᵀ + b through ATen's linear, as PyTorch's nn.Linear runs it. (The C++ frontend's
// torch::nn::functional::linear, and so torch::nn::Linear's forward, folds the bias into the GEMM
// only for 2-D input: on the [B, T, C] activations it runs matmul (the GEMM zeroes its output
// first) and then a second pass adding the bias; at::linear runs one addmm on the [B*T, C] view.
// Where the GEMM's reduction is one block, as in OpenBLAS for C <= its K block, both round alike.)
inline torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return at::linear(x, w, b);
}
// 0 * sum(params of `module`), to keep removed branches in the autograd graph.
torch::Tensor zero_touch(torch::nn::Module& module);

}  // namespace skd::models::detail
