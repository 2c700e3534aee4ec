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

namespace skd::distributed {
class Communicator;
}

namespace skd::piad {

enum class Sensitivity { LOSS, ACCURACY };
inline constexpr std::pair<const char*, Sensitivity> kSensitivityNames[] = {{"loss", Sensitivity::LOSS},
                                                                          {"accuracy", Sensitivity::ACCURACY}};

// In-place distillation of the sub-networks PIAD trains (beyond the paper; docs/algorithm.md §3.8):
// each trained sub-network's loss becomes CE(labels) + λ·T²·KL(teacher_T ‖ student_T) with teacher
//   NONE         no teacher: the paper's PIAD (the default)
//   FROZEN       the model as PIAD started (after WPAC: the pretrained function), a frozen copy in eval mode
//   FULL         code 0 of the current weights, no gradient (code 0 itself learns from the labels only)
//   PROGRESSIVE  a larger code of the same step: with the sandwich rule the chain full -> sampled ->
//                smallest, otherwise progressive_teacher() (about twice the sampled code's MACs)
enum class Distill { NONE, FROZEN, FULL, PROGRESSIVE };
inline constexpr std::pair<const char*, Distill> kDistillNames[] = {{"none", Distill::NONE},
                                                                    {"frozen", Distill::FROZEN},
                                                                    {"full", Distill::FULL},
                                                                    {"progressive", Distill::PROGRESSIVE}};

struct PiadOptions {
  int64_t progressive_epochs = 50;  // Pe: table updates before epochs 0 .. Pe-1
  double budget_ratio = 0.875;      // r: fraction of the full MACs removed by the end of the phase
  int64_t attn_group = 8;           // head dims per attention unit (shared by all heads and q/k/v)
  int64_t mlp_groups = 32;          // units per MLP (group = hidden / mlp_groups)
  int64_t proxy_samples = 1024;     // proxy images per update (drawn anew each epoch)
  int64_t proxy_batch = 64;         // per process
  Sensitivity sensitivity = Sensitivity::LOSS;
  bool sandwich = false;            // every step: code 0 and code K besides the sampled code
  Distill distill = Distill::NONE;  // the sub-networks' teacher (see Distill)
  double distill_weight = 1.0;      // λ >= 0
  double distill_temperature = 1.0;    // T > 0
  uint64_t seed = 0;                   // set by the run (its seed), not a key of its own
  torch::Device device = torch::kCPU;  // set by the run (its device)

  // The options a run config holds, by config key (skd/core/options.h; a training run's piad_* keys).
  template <typename V>
  void visit(V&& v) {
    v("piad_progressive_epochs", progressive_epochs, "mask-table updates before epochs 0 .. N-1 (Pe)");
    v("piad_budget_ratio", budget_ratio,
      "fraction of the full MACs removed by the end of the progressive phase (r)");
    v("piad_attn_group", attn_group, "head dims per attention unit");
    v("piad_mlp_groups", mlp_groups, "units per MLP (group = hidden / N)");
    v("piad_proxy_samples", proxy_samples, "proxy images per update");
    v("piad_proxy_batch", proxy_batch, "proxy batch per process");
    v("piad_sensitivity", sensitivity, kSensitivityNames,
      "module sensitivity from the proxy loss (paper) or top-1 accuracy (official code)");
    v("piad_sandwich", sandwich,
      "sandwich rule: train the full and the smallest network at every step too (3 forward/backward)");
    v("piad_distill", distill, kDistillNames,
      "in-place distillation of the sub-networks (beyond the paper): none (the paper), frozen (the model as "
      "PIAD started), full (code 0 of the current weights) or progressive (a larger code of the same step)");
    v("piad_distill_weight", distill_weight, "λ of CE + λ·T²·KL(teacher ‖ student), >= 0");
    v("piad_distill_temperature", distill_temperature, "T of the distillation term, > 0");
  }
};

// The ranges of the options (Pe >= 1, 0 < r < 1, unit groups and proxy sizes >= 1, λ >= 0, T > 0), checked
// once here: skd::ParameterError naming the run config key (piad_progressive_epochs, ...). The Piad checks
// its options with it; train::validate checks a run's config with it before any work.
void check_options(const PiadOptions& options);

// PROGRESSIVE's teacher without the sandwich rule: the smallest code whose MACs (paper convention,
// `macs[c]` for code c, non-increasing in c) are at least twice those of `code`, or code 0 when no
// code has that many; -1 (no teacher, labels only) for code 0 itself.
int64_t progressive_teacher(const std::vector<int64_t>& macs, int64_t code);

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
                                           const data::Dataset& data, distributed::Communicator* comm);

  // Widths of a uniformly sampled code in {0, ..., K} (a pointer into the table: valid until the
  // next update).
  const models::Widths* sample(data::Rng& rng) const;
  // The sub-networks of one training step: {sampled}, or with `sandwich` {code 0, code K, sampled}
  // (just {code 0} while the table has no other code); with `sandwich` and PROGRESSIVE distillation
  // the chain's order {code 0, sampled, code K}. Pointers as for sample().
  std::vector<const models::Widths*> step_subnets(data::Rng& rng) const;
  // The same draw as op codes (step_subnets(rng) is the widths of these codes).
  std::vector<int64_t> step_codes(data::Rng& rng) const;
  // The teacher code of each of a step's codes (step_codes order) under options().distill: -1 for no
  // teacher (NONE; code 0 under FULL/PROGRESSIVE; FROZEN's teacher is not a code and is given as
  // kFrozenTeacher). With the sandwich rule, PROGRESSIVE gives code 0 -> none, the sampled code ->
  // code 0, code K -> the sampled code (code 0 when the sampled code is K).
  static constexpr int64_t kFrozenTeacher = -2;
  std::vector<int64_t> step_teachers(const std::vector<int64_t>& codes) const;
  // Paper-convention MACs of every code of the table (kept up to date by the updates).
  const std::vector<int64_t>& code_macs() const { return code_macs_; }

 private:
  models::ModelConfig config_;
  models::Widths full_;
  PiadOptions options_;
  models::MaskTable table_;
  std::vector<std::pair<double, double>> unit_macs_;
  std::vector<int64_t> code_macs_;
  int64_t next_update_epoch_ = 0;
  void refresh_code_macs();
  int64_t sample_code(data::Rng& rng) const;  // uniform in {0, ..., K}
};

}  // namespace skd::piad
