#include "skd/train/config.h"

#include <stdexcept>
#include <utility>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/options.h"

namespace skd::train {

nlohmann::json config_to_json(const TrainConfig& config) { return options::to_json(config); }

TrainConfig config_from_json(const nlohmann::json& j, const std::string& source, TrainConfig base) {
  return options::from_json(j, source, std::move(base));
}

void validate(const TrainConfig& c) {
  auto need = [](bool ok, const char* key, const std::string& what) {
    if (!ok) throw ParameterError(key, " " + what);
  };
  need(c.epochs > 0, "epochs", "must be positive");
  need(c.batch_size > 0, "batch_size", "must be positive");
  need(c.lr > 0, "lr", "must be positive");
  need(c.min_lr >= 0, "min_lr", "must be >= 0");
  need(c.warmup_epochs >= 0, "warmup_epochs", "must be >= 0");
  need(c.warmup_lr >= 0, "warmup_lr", "must be >= 0");
  need(c.weight_decay >= 0, "weight_decay", "must be >= 0");
  need(c.opt_eps > 0, "opt_eps", "must be positive");
  need(c.beta1 >= 0 && c.beta1 < 1, "beta1", "must be in [0, 1)");
  need(c.beta2 >= 0 && c.beta2 < 1, "beta2", "must be in [0, 1)");
  need(c.smoothing >= 0 && c.smoothing < 1, "smoothing", "must be in [0, 1)");
  need(c.mixup >= 0, "mixup", "must be >= 0");
  need(c.cutmix >= 0, "cutmix", "must be >= 0");
  need(c.mixup_prob >= 0 && c.mixup_prob <= 1, "mixup_prob", "must be in [0, 1]");
  need(c.mixup_switch_prob >= 0 && c.mixup_switch_prob <= 1, "mixup_switch_prob", "must be in [0, 1]");
  need(c.drop_path >= 0 && c.drop_path < 1, "drop_path", "must be in [0, 1)");
  need(c.clip_grad >= 0, "clip_grad", "must be >= 0");
  need(c.model_ema_decay > 0 && c.model_ema_decay < 1, "model_ema_decay", "must be in (0, 1)");
  need(c.keep_last >= 1, "keep_last", "must be >= 1");
  need(c.limit >= 0, "limit", "must be >= 0");
  need(c.workers >= 0, "workers", "must be >= 0");
  need(c.log_every >= 0, "log_every", "must be >= 0");
  need(c.dist_timeout > 0, "dist_timeout", "must be positive");
  piad::check_options(c.piad);  // the ranges are piad's
  need(c.mode == Mode::PIAD || c.piad.distill == piad::Distill::NONE, "piad_distill",
       cat("'", enum_name(c.piad.distill, piad::kDistillNames), "' distills the sub-networks of a PIAD run ",
           "from its mask table, and mode is 'train' (no table): use mode 'piad', or piad_distill 'none'"));
  const bool mixing = c.mixup > 0 || c.cutmix > 0;
  need(!mixing || c.batch_size % 2 == 0, "batch_size",
       "must be even when mixup/cutmix is on (pairs are flipped)");
}

}  // namespace skd::train
