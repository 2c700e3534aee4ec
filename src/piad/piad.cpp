#include "skd/piad/piad.h"

#include <cmath>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/logging.h"
#include "skd/core/random.h"
#include "skd/distributed/communicator.h"
#include "skd/importance/taylor.h"
#include "skd/models/macs.h"
#include "skd/piad/operations.h"

namespace skd::piad {

namespace {
// What module sensitivity γ (eq. 13) is computed from: [summed cross-entropy, correct] of the smallest
// sub-network on this rank's proxy batches (slot 0), and with each present module skipped (slot
// 1 + 2·block + part, part 0 = attention, 1 = MLP; zeros for a removed module).
std::vector<double> skipped_module_costs(models::ElasticModelImpl& model, const data::Dataset& data,
                                         const std::vector<std::vector<int64_t>>& batches,
                                         const models::Widths& smallest, torch::Device device) {
  const size_t blocks = smallest.size();
  std::vector<double> sums(2 * (1 + 2 * blocks), 0.0);
  torch::NoGradGuard ng;
  auto measure = [&](const torch::Tensor& x, const torch::Tensor& y, const models::Widths& w, size_t slot) {
    models::ForwardOptions fo;
    fo.widths = &w;
    auto logits = model.forward(x, fo);
    sums[2 * slot] += torch::nn::functional::cross_entropy(
                          logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                          .item<double>();
    sums[2 * slot + 1] += logits.argmax(1).eq(y).sum().item<double>();
  };
  for (const auto& b : batches) {
    auto batch = data.get_batch(b);
    auto x = batch.images.to(device), y = batch.labels.to(device);
    measure(x, y, smallest, 0);
    for (size_t i = 0; i < blocks; ++i) {
      for (int part = 0; part < 2; ++part) {
        auto w = smallest;
        auto& width = part == 0 ? w[i].attn : w[i].mlp;
        if (width == 0) continue;
        width = 0;
        measure(x, y, w, 1 + 2 * i + static_cast<size_t>(part));
      }
    }
  }
  return sums;
}

}  // namespace

void check_options(const PiadOptions& o) {
  auto need = [](bool ok, const char* key, const char* what) {
    if (!ok) throw ParameterError(key, what);
  };
  need(o.progressive_epochs >= 1, "piad_progressive_epochs", " must be >= 1");
  need(o.budget_ratio > 0 && o.budget_ratio < 1, "piad_budget_ratio", " must be in (0, 1)");
  need(o.attn_group >= 1, "piad_attn_group", " must be >= 1");
  need(o.mlp_groups >= 1, "piad_mlp_groups", " must be >= 1");
  need(o.proxy_samples >= 1, "piad_proxy_samples", " must be >= 1");
  need(o.proxy_batch >= 1, "piad_proxy_batch", " must be >= 1");
  need(std::isfinite(o.distill_weight) && o.distill_weight >= 0, "piad_distill_weight",
       " (λ, the weight of the distillation term) must be a finite number >= 0");
  need(std::isfinite(o.distill_temperature) && o.distill_temperature > 0, "piad_distill_temperature",
       " (T) must be a finite number > 0");
}

int64_t progressive_teacher(const std::vector<int64_t>& macs, int64_t code) {
  if (code < 0 || code >= static_cast<int64_t>(macs.size()))
    throw std::invalid_argument(cat("progressive_teacher: code ", code, " outside 0..", macs.size() - 1));
  if (code == 0) return -1;
  const double want = 2.0 * static_cast<double>(macs[static_cast<size_t>(code)]);
  int64_t teacher = 0;
  for (int64_t c = 1; c < code; ++c)
    if (static_cast<double>(macs[static_cast<size_t>(c)]) >= want) teacher = c;
  return teacher;
}

std::vector<std::pair<double, double>> unit_macs(const models::ModelConfig& config, const models::Widths& full) {
  std::vector<std::pair<double, double>> out;
  auto cost = [&](size_t block, bool attn, int64_t width) {
    auto w = full;
    (attn ? w[block].attn : w[block].mlp) = width;
    return static_cast<double>(models::macs_count(config, w).macs_paper);
  };
  for (size_t i = 0; i < full.size(); ++i) {
    const double a = full[i].attn >= 2 ? cost(i, true, 2) - cost(i, true, 1) : 0.0;
    const double m = full[i].mlp >= 2 ? cost(i, false, 2) - cost(i, false, 1) : 0.0;
    out.emplace_back(a, m);
  }
  return out;
}

Piad::Piad(models::ModelConfig config, models::Widths full, PiadOptions options, models::MaskTable table,
           int64_t next_update_epoch)
    : config_(std::move(config)),
      full_(std::move(full)),
      options_(options),
      table_(std::move(table)),
      next_update_epoch_(next_update_epoch) {
  check_options(options_);
  if (table_.blocks() == 0) table_ = models::MaskTable(full_);
  if (table_.blocks() != static_cast<int64_t>(full_.size()) || table_.widths(0) != full_)
    throw std::invalid_argument("the mask table does not start at this model's full widths (code 0)");
  unit_macs_ = unit_macs(config_, full_);
  refresh_code_macs();
}

void Piad::refresh_code_macs() {
  code_macs_.clear();
  for (const auto& c : models::code_costs(config_, table_)) code_macs_.push_back(c.macs_paper);
}

Piad Piad::from_manifest(models::ModelConfig config, models::Widths full, PiadOptions options,
                         const nlohmann::json& manifest, const std::string& source) {
  if (!manifest.is_object() || !manifest.contains("mask_table")) return Piad(std::move(config), full, options);
  auto table = models::MaskTable::from_json(manifest.at("mask_table"), full, source + " mask_table");
  int64_t next = 0;
  if (manifest.contains("piad")) next = manifest.at("piad").value("next_update_epoch", int64_t{0});
  return Piad(std::move(config), std::move(full), options, std::move(table), next);
}

nlohmann::json Piad::manifest_entries() const {
  auto j = models::supernet_manifest_entries(config_, table_);
  j["piad"] = {{"next_update_epoch", next_update_epoch_},
               {"progressive_epochs", options_.progressive_epochs},
               {"budget_ratio", options_.budget_ratio},
               {"attn_group", options_.attn_group},
               {"mlp_groups", options_.mlp_groups},
               {"sensitivity", enum_name(options_.sensitivity, kSensitivityNames)}};
  if (options_.distill != Distill::NONE) {  // (the paper's runs keep their manifest as it was)
    j["piad"]["distill"] = enum_name(options_.distill, kDistillNames);
    j["piad"]["distill_weight"] = options_.distill_weight;
    j["piad"]["distill_temperature"] = options_.distill_temperature;
  }
  return j;
}

int64_t Piad::sample_code(data::Rng& rng) const {
  return static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(table_.last_code()) + 1));
}

const models::Widths* Piad::sample(data::Rng& rng) const { return &table_.widths(sample_code(rng)); }

std::vector<int64_t> Piad::step_codes(data::Rng& rng) const {
  const int64_t sampled = sample_code(rng), k = table_.last_code();
  if (!options_.sandwich || k == 0) return {sampled};
  if (options_.distill == Distill::PROGRESSIVE) return {0, sampled, k};  // the chain's order
  return {0, k, sampled};
}

std::vector<const models::Widths*> Piad::step_subnets(data::Rng& rng) const {
  std::vector<const models::Widths*> out;
  for (const int64_t c : step_codes(rng)) out.push_back(&table_.widths(c));
  return out;
}

std::vector<int64_t> Piad::step_teachers(const std::vector<int64_t>& codes) const {
  std::vector<int64_t> out;
  const bool chain = options_.sandwich && codes.size() == 3;
  for (size_t i = 0; i < codes.size(); ++i) {
    const int64_t c = codes[i];
    int64_t t = -1;
    switch (options_.distill) {
      case Distill::NONE:
        break;
      case Distill::FROZEN:
        t = kFrozenTeacher;
        break;
      case Distill::FULL:
        t = c == 0 ? -1 : 0;
        break;
      case Distill::PROGRESSIVE:
        if (c == 0) break;
        if (!chain)
          t = progressive_teacher(code_macs_, c);
        else if (i == 1)
          t = 0;  // the sampled code learns from the full network
        else
          t = codes[1] < c ? codes[1] : 0;  // code K from the sampled code (or code 0)
        break;
    }
    out.push_back(t);
  }
  return out;
}

nlohmann::json UpdateRecord::to_json() const {
  nlohmann::json gammas = nlohmann::json::array();
  for (size_t i = 0; i < gamma.size(); ++i) {
    nlohmann::json g = {{"block", i}};
    g["attn"] = gamma[i].attn ? nlohmann::json(*gamma[i].attn) : nlohmann::json(nullptr);
    g["mlp"] = gamma[i].mlp ? nlohmann::json(*gamma[i].mlp) : nlohmann::json(nullptr);
    gammas.push_back(g);
  }
  return {{"epoch", epoch},
          {"proxy_images", static_cast<uint64_t>(proxy_images)},
          {"smallest_top1", smallest_top1},
          {"smallest_loss", smallest_loss},
          {"gamma", gammas},
          {"candidates", static_cast<uint64_t>(candidates)},
          {"added_codes", added_codes},
          {"codes", nlohmann::json::array({0, last_code})},
          {"first_new_code", first_new_code},
          {"target_macs_removed", target_macs_removed},
          {"macs_removed", macs_removed},
          {"smallest_macs", smallest_macs}};
}

std::optional<UpdateRecord> Piad::update_table(int64_t epoch, models::ElasticModelImpl& model,
                                               const data::Dataset& data, distributed::Communicator* comm) {
  if (epoch >= options_.progressive_epochs || epoch < next_update_epoch_) return std::nullopt;
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->world_size() : 1;
  const size_t blocks = full_.size();
  const models::Widths smallest = table_.widths(-1);
  const auto ids = importance::proxy_indices(data.size(), std::min(options_.proxy_samples, data.size()),
                                             options_.seed * 1000003ULL + static_cast<uint64_t>(epoch));
  const auto batches = importance::proxy_batches(ids, std::min<int64_t>(options_.proxy_batch, static_cast<int64_t>(ids.size())),
                                                 rank, world);
  model.eval();
  std::vector<double> sums = skipped_module_costs(model, data, batches, smallest, options_.device);
  // Dimension importance Θ (first-order Taylor, summed over the ranks) of the smallest sub-network.
  importance::ProxyOptions po;
  po.samples = static_cast<int64_t>(ids.size());
  po.batch_size = std::min<int64_t>(options_.proxy_batch, po.samples);
  po.device = options_.device;
  po.widths = &smallest;
  const auto theta = importance::dim_importance(model, data, batches, po, comm);
  if (comm && world > 1) {
    std::vector<torch::Tensor> all{torch::tensor(sums, torch::kFloat64)};
    comm->all_reduce_sum(all);
    auto s = all[0].contiguous();
    sums.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  }

  // γ_m and Θ -> normalised importances I = γ_m · Θ / ΣΘ (eq. 14) -> candidate droppable units -> table.
  UpdateRecord rec;
  const double loss0 = sums[0], correct0 = sums[1];
  DropoutList candidates;
  for (size_t i = 0; i < blocks; ++i) {
    ModuleSensitivity& gammas = rec.gamma.emplace_back();
    for (int part = 0; part < 2; ++part) {
      const int64_t w0 = part == 0 ? smallest[i].attn : smallest[i].mlp;
      if (w0 == 0) continue;
      const size_t slot = 1 + 2 * i + static_cast<size_t>(part);
      double gamma = 0;
      if (options_.sensitivity == Sensitivity::LOSS) {
        gamma = loss0 > 0 ? (sums[2 * slot] - loss0) / loss0 : 0.0;
      } else {
        gamma = correct0 > 0 ? (correct0 - sums[2 * slot + 1]) / correct0 : 0.0;
      }
      if (!std::isfinite(gamma))
        throw std::runtime_error(cat("PIAD epoch ", epoch, ": block ", i, " ", part == 0 ? "attn" : "mlp",
                                     " sensitivity is not finite"));
      (part == 0 ? gammas.attn : gammas.mlp) = gamma;
      const auto& th = part == 0 ? theta.attention[i] : theta.mlp[i];
      const double total = th.sum().item<double>();
      std::vector<double> imp(static_cast<size_t>(w0), 0.0);
      if (total > 0) {
        auto c = (th * (gamma / total)).contiguous();
        imp.assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
      }
      const int64_t group = part == 0 ? options_.attn_group
                                      : std::max<int64_t>(1, full_[i].mlp / options_.mlp_groups);
      const double per_dim = part == 0 ? unit_macs_[i].first : unit_macs_[i].second;
      auto units = module_operations(static_cast<int64_t>(i), part == 0, imp, group, per_dim);
      candidates.insert(candidates.end(), units.begin(), units.end());
    }
  }
  const double full_macs = static_cast<double>(models::macs_count(config_, full_).macs_paper);
  const double removed = full_macs - static_cast<double>(models::macs_count(config_, smallest).macs_paper);
  const double target = options_.budget_ratio * full_macs * static_cast<double>(epoch + 1) /
                        static_cast<double>(options_.progressive_epochs);
  const int64_t before = table_.last_code();
  const auto r = apply_operations(table_, candidates, target - removed);
  refresh_code_macs();
  next_update_epoch_ = epoch + 1;
  const double now_removed =
      full_macs - static_cast<double>(models::macs_count(config_, table_.widths(-1)).macs_paper);
  rec.epoch = epoch;
  rec.proxy_images = static_cast<int64_t>(ids.size());
  rec.smallest_top1 = 100.0 * correct0 / std::max(1.0, static_cast<double>(ids.size()));
  rec.smallest_loss = loss0 / std::max(1.0, static_cast<double>(ids.size()));
  rec.candidates = static_cast<int64_t>(r.ranked.size());
  rec.added_codes = r.added;
  rec.last_code = table_.last_code();
  rec.first_new_code = r.added > 0 ? before + 1 : -1;
  rec.target_macs_removed = target;
  rec.macs_removed = now_removed;
  rec.smallest_macs = full_macs - now_removed;
  return rec;
}

}  // namespace skd::piad
