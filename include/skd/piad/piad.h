// PIAD (docs/algorithm.md §3, paper §3.3): progressive importance-aware dropout. Before each epoch of the progressive
// phase the mask table grows by the operations that best fit that epoch's cumulative MACs budget,
// decided on the current smallest sub-network:
//   γ_m   module sensitivity: relative increase of the proxy loss when module m is skipped (paper
//         eq. 13; the official code uses top-1 accuracy, `Sensitivity::ACCURACY`). Skipping = the
//         branch is removed (x unchanged), as the paper describes (the official hook gives x + LN(x)).
//   Θ_m   first-order Taylor importance |g ⊙ f| of each remaining dim (attention: qkv outputs summed
//         over q, k, v and averaged over heads; MLP: post-GELU activations), cost = Σ ground-truth logits
//   I_m = γ_m · Θ_m / ΣΘ_m, then the operations of skd/piad/operations.h.
// Every statistic is all-reduced, so every rank builds the same table. During training each step
// samples an op code uniformly from {0, ..., K} (the full network and the current smallest included:
// the official code never trains code K: docs/algorithm.md §6 D4); with `sandwich` the full network (code 0)
// and the smallest (code K) are trained at every step too, next to the sampled one.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/data/dataset.h"
#include "skd/data/image.h"
#include "skd/models/model.h"
#include "skd/models/mask_table.h"

namespace skd::dist {
class Communicator;
}

namespace skd::piad {

enum class Sensitivity { LOSS, ACCURACY };
inline constexpr std::pair<const char*, Sensitivity> kSensitivityNames[] = {{"loss", Sensitivity::LOSS},
                                                                          {"accuracy", Sensitivity::ACCURACY}};

struct PiadOptions {
  int64_t progressive_epochs = 50;  // Pe: table updates before epochs 0 .. Pe-1
  double budget_ratio = 0.875;      // r: fraction of the full MACs removed by the end of the phase
  int64_t attn_group = 8;           // head dims per attention unit (shared by all heads and q/k/v)
  int64_t mlp_groups = 32;          // units per MLP (group = hidden / mlp_groups)
  int64_t proxy_samples = 1024;     // proxy images per update (drawn anew each epoch)
  int64_t proxy_batch = 64;         // per process
  Sensitivity sensitivity = Sensitivity::LOSS;
  bool sandwich = false;            // every step: code 0 and code K besides the sampled code
  uint64_t seed = 0;                   // set by the run (its seed), not a key of its own
  torch::Device device = torch::kCPU;  // set by the run (its device)

  // The options a run config holds, by config key (skd/core/options.h; a training run's piad_* keys).
  template <typename V>
  void visit(V&& v) {
    v("piad_progressive_epochs", progressive_epochs);
    v("piad_budget_ratio", budget_ratio);
    v("piad_attn_group", attn_group);
    v("piad_mlp_groups", mlp_groups);
    v("piad_proxy_samples", proxy_samples);
    v("piad_proxy_batch", proxy_batch);
    v("piad_sensitivity", sensitivity, kSensitivityNames);
    v("piad_sandwich", sandwich);
  }
};

// The ranges of the options (Pe >= 1, 0 < r < 1, unit groups and proxy sizes >= 1), checked once here:
// skd::ParameterError naming the run config key (piad_progressive_epochs, ...). The Piad checks its
// options with it; train::validate checks a run's config with it before any work.
void check_options(const PiadOptions& options);

// Exact paper-convention MACs of one attention dim (in every head, q/k/v and proj) and of one MLP
// unit, per block: the slopes of the closed-form count.
std::vector<std::pair<double, double>> unit_macs(const models::ModelConfig& config, const models::Widths& full);

// γ of one block's modules (paper eq. 13); nullopt for a module the smallest sub-network has removed.
struct ModuleSensitivity {
  std::optional<double> attn, mlp;
};

// One update of the dropout list (Piad::update_table), as a line of the run's piad.jsonl.
struct UpdateRecord {
  int64_t epoch = 0;
  int64_t proxy_images = 0;
  double smallest_top1 = 0, smallest_loss = 0;  // of the smallest sub-network before the update (percent, mean CE)
  std::vector<ModuleSensitivity> gamma;         // per block
  int64_t candidates = 0;                       // droppable units ranked
  int64_t added_codes = 0;                      // A: units appended to the dropout list (= op codes added)
  int64_t last_code = 0;                        // K after the update (codes 0..K)
  int64_t first_new_code = -1;                  // K_before + 1, or -1 when nothing was added
  double target_macs_removed = 0;               // the cumulative budget of this epoch
  double macs_removed = 0, smallest_macs = 0;   // of the smallest sub-network after the update
  nlohmann::json to_json() const;
};

class Piad {
 public:
  // `table` continues a run (resume); default: a fresh table at `full`. `next_update_epoch`: epochs
  // before it were already folded into `table`.
  Piad(models::ModelConfig config, models::Widths full, PiadOptions options, models::MaskTable table = {},
       int64_t next_update_epoch = 0);
  // Continues from an artifact/checkpoint manifest that holds a mask table and a "piad" entry (as
  // written by manifest_entries()); a manifest without them starts fresh.
  static Piad from_manifest(models::ModelConfig config, models::Widths full, PiadOptions options,
                            const nlohmann::json& manifest, const std::string& source);
  // Manifest entries of the super-network: "mask_table", "op_codes", "piad" (next update epoch).
  nlohmann::json manifest_entries() const;
  int64_t next_update_epoch() const { return next_update_epoch_; }

  const models::MaskTable& table() const { return table_; }
  const PiadOptions& options() const { return options_; }

  // Before epoch `epoch`: for next_update_epoch() <= epoch < progressive_epochs, grows the table
  // (statistics on `data`, the training set, eval transform) and returns the record (γ per module,
  // units added, MACs removed so far); otherwise returns nullopt (a resumed epoch is not updated
  // twice). The model is left in eval mode.
  std::optional<UpdateRecord> update_table(int64_t epoch, models::ElasticModelImpl& model,
                                           const data::Dataset& data, dist::Communicator* comm);

  // Widths of a uniformly sampled code in {0, ..., K} (a pointer into the table: valid until the
  // next update).
  const models::Widths* sample(data::Rng& rng) const;
  // The sub-networks of one training step: {sampled}, or with `sandwich` {code 0, code K, sampled}
  // (just {code 0} while the table has no other code). Pointers as for sample().
  std::vector<const models::Widths*> step_subnets(data::Rng& rng) const;

 private:
  models::ModelConfig config_;
  models::Widths full_;
  PiadOptions options_;
  models::MaskTable table_;
  std::vector<std::pair<double, double>> unit_macs_;
  int64_t next_update_epoch_ = 0;
};

}  // namespace skd::piad
