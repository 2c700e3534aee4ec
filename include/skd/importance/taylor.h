// Taylor importance on a proxy set (the paper's Θ, eq. 9): which images form the proxy set (a
// fixed-seed draw from the training data, sharded over ranks), the forward/backward pass that exposes
// intermediate tensors and their gradients (qkv outputs per block, post-GELU MLP activations), and
// the scores built from them, for WPAC and PIAD alike:
//   first order  (FO)  Θ = |g ⊙ f|
//   second order (SO)  0.5 · (g ⊙ f)²   (the official code's MLP criterion: docs/algorithm.md §2.5)
// where f is the tensor and g the gradient of the cost with respect to it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "skd/data/dataset.h"
#include "skd/models/model.h"

namespace skd::distributed {
class Communicator;
}

namespace skd::importance {

// The scalar whose gradient defines importance.
enum class Cost {
  LOGIT,  // sum over the batch of the ground-truth class logit (the official code; docs/algorithm.md §2.2)
  CE,     // summed cross-entropy (the paper's C(D))
};
inline constexpr std::pair<const char*, Cost> kCostNames[] = {{"logit", Cost::LOGIT}, {"ce", Cost::CE}};
const char* cost_name(Cost cost);

struct ProxyOptions {
  int64_t samples = 1024;    // proxy images (distinct dataset indices)
  int64_t batch_size = 64;   // images per forward/backward
  uint64_t seed = 0;         // which images: a seeded shuffle of the dataset, first `samples`
  Cost cost = Cost::LOGIT;
  torch::Device device = torch::kCPU;
  const models::Widths* widths = nullptr;  // run a sub-network at these widths (null: stored widths)
};

// `samples` distinct indices of a dataset of `dataset_size` images, a fixed function of `seed`.
// Throws std::invalid_argument (naming --proxy-samples) when samples < 1 or > dataset_size.
std::vector<int64_t> proxy_indices(int64_t dataset_size, int64_t samples, uint64_t seed);

// The proxy batches one rank processes: the proxy set is cut into batches of batch_size (the last
// may be smaller) and rank r takes batches r, r + world, r + 2·world, ... so the union over ranks is
// the same set of batches a single process sees. Throws std::invalid_argument when the proxy set is
// smaller than one batch (naming --proxy-samples and --batch-size).
std::vector<std::vector<int64_t>> proxy_batches(const std::vector<int64_t>& indices, int64_t batch_size, int rank,
                                                int world_size);

// One processed proxy batch: the captured tensors (detached) with the gradients of the cost.
struct ProbedBatch {
  int64_t images = 0;
  std::vector<int64_t> qkv_blocks, mlp_blocks;   // block index of each entry below
  std::vector<torch::Tensor> qkv, qkv_grad;      // [rows, tokens, 3·H·a]
  std::vector<torch::Tensor> mlp_act, mlp_grad;  // [B, tokens, m]
  torch::Tensor logits;                          // [B, classes], detached
  torch::Tensor labels;
};

// Called for every batch after its backward pass.
using BatchVisitor = std::function<void(const ProbedBatch&)>;
// Progress: (batches done, batches total) on this rank.
using ProxyProgress = std::function<void(int64_t, int64_t)>;

struct ProxyPassResult {
  int64_t images = 0;   // images this rank processed
  int64_t batches = 0;
  torch::Tensor first_images, first_logits;  // the first batch of this rank (for a function check)
  // Wall time spent loading batches, in the model (forward + backward), and in the visitor.
  double seconds_data = 0, seconds_model = 0, seconds_visit = 0;
};

// Runs the model (eval mode, options.widths or the stored widths) over `batches` of `dataset` (eval transform), computes
// the cost, and gradients of the cost with respect to the captured qkv outputs and/or MLP
// activations only (no parameter gradients). Throws std::runtime_error naming the batch when the
// logits or the cost are not finite (NaN/Inf in the weights or the images), and
// std::invalid_argument when a label is outside the model's classes.
ProxyPassResult run_proxy_pass(models::ElasticModelImpl& model, const data::Dataset& dataset,
                               const std::vector<std::vector<int64_t>>& batches, const ProxyOptions& options,
                               bool capture_qkv, bool capture_mlp, const BatchVisitor& visit,
                               const ProxyProgress& progress = nullptr);

// ---- Scores. The element-wise product g ⊙ f stays in the probes' precision (float32 features and
// gradients: exact to float32 rounding); every sum over tokens is float64. Callers keep their own
// chunking of the tokens: the float64 sums depend on it in the last bits.

// Over the rows of f and g ([n, d]): adds Σ 0.5 (g ⊙ f)² to `so` and Σ |g ⊙ f| to `fo` (d float64
// elements each, any shape), and returns |g ⊙ f| ([n, d], the probes' dtype) for a caller that
// weights tokens by it (WPAC).
torch::Tensor accumulate_taylor(const torch::Tensor& f, const torch::Tensor& g, torch::Tensor& fo, torch::Tensor& so);

// Σ over all rows of |g ⊙ f| ([..., d] -> [d], float64): the first-order score of each feature.
torch::Tensor taylor_fo_sum(const torch::Tensor& f, const torch::Tensor& g);

// Θ per dimension of every module (paper eq. 14's Θ_i^(m)), float64 on the CPU, per block:
//   attention  [a]  Σ |g ⊙ f| of the qkv outputs, summed over q, k and v and averaged over heads (one
//                   score per head dim, as one head dim is cut in every head at once)
//   MLP        [m]  Σ |g ⊙ f| of the post-GELU activations
// A removed module (width 0) has an empty tensor.
struct DimImportance {
  std::vector<torch::Tensor> attention, mlp;
};

// Θ of the model at `*options.widths` (null: its stored widths) over this rank's proxy `batches`,
// summed over the ranks of `comm` (may be null), so every rank returns the same scores.
DimImportance dim_importance(models::ElasticModelImpl& model, const data::Dataset& dataset,
                             const std::vector<std::vector<int64_t>>& batches, const ProxyOptions& options,
                             distributed::Communicator* comm);

}  // namespace skd::importance
