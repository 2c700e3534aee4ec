// WPAC (docs/algorithm.md §2, paper §3.2): importance-weighted PCA per attention head, injected into the qkv and proj
// weights, plus the importance sort of MLP hidden units; and the baseline criteria of the pruning
// comparison (paper Table 3). Every criterion is a function-preserving change of basis inside each
// head (a rotation for WPAC, a permutation for the others), so afterwards the leading dims of every
// head are the most important ones by that criterion and truncating q/k/v to them is meaningful.
//
// Per block and head, from a proxy set (float64 throughout):
//   token weight      w_s[t] = mean_j Θ[t, s, h, j]                s ∈ {q, k, v}
//                     (Θ = |g ⊙ f|, paper eq. 9; w is its token-wise aggregate Θ^token, eq. 10)
//   scatter (V)       S_v = Σ_t w_v[t] x̃_t x̃_tᵀ                       x̃ = centred v features
//   scatter (Q,K)     S_qk = Σ_t w_q[t] q̃_t q̃_tᵀ + Σ_t w_k[t] k̃_t k̃_tᵀ
//   P = eigenvectors of S_v, R = eigenvectors of S_qk, descending eigenvalues
//   W_v ← Pᵀ W_v, b_v ← Pᵀ b_v, W_o[:, head] ← W_o[:, head] P;  W_q,b_q,W_k,b_k ← Rᵀ (·)
// q and k share R, so q·k (and Swin's relative position bias) is unchanged.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/data/dataset.h"
#include "skd/importance/taylor.h"
#include "skd/models/model.h"

namespace skd::distributed {
class Communicator;
}

namespace skd::wpac {

// How the dims of every head are ordered.
enum class Criterion {
  WPAC,       // importance-weighted PCA (rotation)
  TAYLOR,     // first-order Taylor |g ⊙ f| summed over tokens (q+k for Q/K, v for V)
  TAYLOR2,    // second-order 0.5 (g ⊙ f)²
  MAGNITUDE,  // L2 norm of the weight row (q+k rows for Q/K, v row for V); needs no data
  RANDOM,     // a seeded random permutation; needs no data
};
inline constexpr std::pair<const char*, Criterion> kCriterionNames[] = {{"wpac", Criterion::WPAC},
                                                                       {"taylor", Criterion::TAYLOR},
                                                                       {"taylor2", Criterion::TAYLOR2},
                                                                       {"magnitude", Criterion::MAGNITUDE},
                                                                       {"random", Criterion::RANDOM}};
Criterion parse_criterion(const std::string& name);  // throws std::invalid_argument naming --criterion
const char* criterion_name(Criterion criterion);

// How MLP hidden units are ordered. AUTO: TAYLOR2 for wpac (the official code's criterion; measured
// better than first order at small MLP widths, docs/wpac.md) and taylor2, TAYLOR for taylor,
// MAGNITUDE (fc1 row norm) for magnitude, RANDOM for random.
enum class MlpCriterion { AUTO, TAYLOR, TAYLOR2, MAGNITUDE, RANDOM, KEEP };
inline constexpr std::pair<const char*, MlpCriterion> kMlpCriterionNames[] = {
    {"auto", MlpCriterion::AUTO},           {"taylor", MlpCriterion::TAYLOR}, {"taylor2", MlpCriterion::TAYLOR2},
    {"magnitude", MlpCriterion::MAGNITUDE}, {"random", MlpCriterion::RANDOM}, {"keep", MlpCriterion::KEEP}};
const char* mlp_criterion_name(MlpCriterion criterion);

// Centring of the features before the weighted scatter.
enum class Centering {
  BATCH,   // each proxy batch centred by its own unweighted token mean (the official code; docs/algorithm.md §2.3)
  GLOBAL,  // centred by the importance-weighted mean over the whole proxy set
  NONE,    // uncentred weighted second moment
};
inline constexpr std::pair<const char*, Centering> kCenteringNames[] = {
    {"batch", Centering::BATCH}, {"global", Centering::GLOBAL}, {"none", Centering::NONE}};
Centering parse_centering(const std::string& name);  // throws naming --centering
const char* centering_name(Centering centering);

// Float64 sums over the proxy set for one block; all-reducible (every field is a plain sum).
struct BlockStatistics {
  int64_t block = 0;
  int64_t heads = 0, dims = 0, mlp = 0;  // dims = stored q/k/v dims per head (0: no attention)
  // [H, a, a]: batch-centred weighted scatter of v, and of q plus k (docs/algorithm.md §2.3)
  torch::Tensor scatter_v, scatter_qk;
  // [3, H, a, a]: uncentred weighted second moments Σ w x xᵀ of q, k, v
  torch::Tensor moment;
  // [3, H, a]: Σ w x;  [3, H]: Σ w
  torch::Tensor weighted_sum, weight;
  // [3, H, a]: Σ_t |g ⊙ f| (Θ^dim) and Σ_t 0.5 (g ⊙ f)² per dim
  torch::Tensor fo, so;
  // [m]: the same for MLP hidden units (post-GELU activations)
  torch::Tensor mlp_fo, mlp_so;
};

struct Statistics {
  std::vector<BlockStatistics> blocks;  // one per model block
  torch::Tensor images;                 // int64 scalar: proxy images folded in
  // Every tensor, in a fixed order (for all-reduce).
  std::vector<torch::Tensor> tensors();
};

// Zeroed statistics of one block with `heads` heads of `dims` q/k/v dims (0: no attention) and `mlp`
// hidden units (0: no MLP), on `device`.
BlockStatistics make_block_statistics(int64_t block, int64_t heads, int64_t dims, int64_t mlp, torch::Device device);
// Zeroed statistics for `model` (its stored widths), on `device`.
Statistics make_statistics(const models::ElasticModelImpl& model, torch::Device device);
// Folds one probed proxy batch into `stats`.
void accumulate(Statistics& stats, const importance::ProbedBatch& batch);

// Per block: the new basis of every head ([H, a, a], float64; column j = new dim j in the old
// coordinates) for V/O and for Q/K, and the MLP unit order (int64 [m], new unit i = old unit
// order[i]). Undefined tensors = left as is (removed branch, or KEEP).
struct BlockTransform {
  int64_t block = 0;
  torch::Tensor v_basis, qk_basis, mlp_order;
  // Diagnostics (float64, [H, a]; undefined without statistics): eigenvalues of the weighted
  // covariance (descending), and its variance along the new dims in their new order.
  torch::Tensor v_eigenvalues, qk_eigenvalues, v_ordered, qk_ordered;
  std::vector<int64_t> degenerate_heads;  // zero weighted variance: kept unrotated
};

struct ConvertOptions {
  Criterion criterion = Criterion::WPAC;
  MlpCriterion mlp = MlpCriterion::AUTO;
  Centering centering = Centering::BATCH;
  importance::ProxyOptions proxy;
  uint64_t seed = 0;  // random criterion
};

// Transforms from statistics (may be null for magnitude/random with a data-free MLP criterion).
// Throws std::runtime_error naming the block when a statistic is not finite.
std::vector<BlockTransform> compute_transforms(const models::ElasticModelImpl& model, const Statistics* stats,
                                               const ConvertOptions& options);
// Applies the transforms to the model's parameters in place (function preserving).
void apply_transforms(models::ElasticModelImpl& model, const std::vector<BlockTransform>& transforms);

// Whether a criterion pair needs a proxy pass (data).
bool needs_data(const ConvertOptions& options);

// ---- The conversion report (written next to the artifact as JSON; its keys are a contract for
// scripts, see docs/wpac.md). Every fraction below is an array over the leading 25, 50 and 75 % of
// the dims (JSON keys "0.25", "0.5", "0.75").
using Captured = std::array<double, 3>;

struct SpectrumReport {  // V or Q/K of one head
  std::vector<double> eigenvalues;  // of the weighted covariance, descending
  Captured captured{};              // weighted variance along the new leading dims
  Captured captured_by_pca{};       // the same for the eigenvectors (the best any basis can do)
};

struct HeadReport {
  int64_t head = 0;
  bool degenerate = false;  // no importance-weighted variance: left unrotated
  SpectrumReport v, qk;
};

struct BlockReport {
  int64_t block = 0;
  std::string prefix;  // state_dict key prefix
  int64_t heads = 0, head_dims = 0, mlp_units = 0;
  std::optional<std::vector<HeadReport>> attention;  // with attention statistics
  struct ModuleTaylor {
    double attention = 0, mlp = 0;
  };
  // With statistics: module-level first-order Taylor importance (Σ over dims and tokens of |g ⊙ f|).
  std::optional<ModuleTaylor> taylor_fo;
  std::optional<Captured> mlp_taylor_captured;  // with MLP statistics: Σ|g ⊙ f| held by the leading units
};

struct ProxyReport {  // with proxy data
  std::string cost, centering;  // the options' names
  int64_t images = 0, requested = 0, batch_size = 0, batches = 0;
  uint64_t seed = 0;
  std::string dataset;  // its description; the transform is always the eval transform
};

struct FunctionCheck {  // logits of a fixed batch before and after
  int64_t images = 0;
  bool proxy_images = false;  // the first proxy images (else seeded random inputs)
  double max_abs_logit_diff = 0, max_abs_logit = 0;
};

struct HeadIndex {
  int64_t block = 0, head = 0;
};

struct ConversionSeconds {
  double statistics = 0, transform = 0, total = 0;              // wall time of the phases
  double proxy_data = 0, proxy_model = 0, proxy_accumulate = 0;  // of the proxy pass, by part
};

struct ConversionReport {
  std::string criterion, mlp_criterion;  // names; mlp_criterion resolved (never "auto")
  std::string model;                     // config name
  int world_size = 1;
  std::optional<uint64_t> seed;       // of the random criterion, when one is random
  std::optional<ProxyReport> proxy;   // with proxy data
  FunctionCheck function_check;
  std::vector<HeadIndex> degenerate_heads;
  std::optional<Captured> mean_captured_v, mean_captured_qk;  // mean over blocks and heads (attention data)
  std::vector<BlockReport> blocks;
  ConversionSeconds seconds;
  std::string source, artifact;  // set by the caller (paths); omitted from the JSON when empty

  nlohmann::json to_json() const;
  // The options part (criterion, mlp_criterion, and when present cost, centering, proxy, seed), as
  // recorded in the converted artifact's provenance.
  nlohmann::json options_json() const;
};

// The whole conversion: proxy pass (this rank's share), all-reduce of the statistics over `comm`
// (may be null), transforms, application, a function check on the first proxy batch, and the
// report (options, proxy set, timings, per block/head eigenvalue spectra and the fraction of
// weighted variance captured by the leading 25/50/75 % dims). Every rank ends with the same model;
// a disagreement between ranks is an error. `dataset` may be null only when !needs_data(options).
ConversionReport convert(models::ElasticModelImpl& model, const data::Dataset* dataset,
                         const ConvertOptions& options, distributed::Communicator* comm = nullptr,
                         const importance::ProxyProgress& progress = nullptr);

}  // namespace skd::wpac
