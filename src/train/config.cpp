#include "skd/train/config.h"

#include <functional>
#include <map>
#include <stdexcept>

#include "skd/core/error.h"
#include "skd/core/options.h"
#include "skd/train/piad_training.h"

namespace skd::train {

namespace {

// One table drives both directions so a new field cannot be forgotten in either.
template <typename F>
void for_each_field(TrainConfig& c, F&& f) {
  f("model", c.model);
  f("arch", c.arch);
  f("data", c.data);
  f("limit", c.limit);
  f("eval", c.eval);
  f("workers", c.workers);
  f("augment", c.augment);
  f("epochs", c.epochs);
  f("batch_size", c.batch_size);
  f("lr", c.lr);
  f("unscale_lr", c.unscale_lr);
  f("min_lr", c.min_lr);
  f("warmup_epochs", c.warmup_epochs);
  f("warmup_lr", c.warmup_lr);
  f("weight_decay", c.weight_decay);
  f("opt_eps", c.opt_eps);
  f("beta1", c.beta1);
  f("beta2", c.beta2);
  f("smoothing", c.smoothing);
  f("mixup", c.mixup);
  f("cutmix", c.cutmix);
  f("mixup_prob", c.mixup_prob);
  f("mixup_switch_prob", c.mixup_switch_prob);
  f("drop_path", c.drop_path);
  f("clip_grad", c.clip_grad);
  f("model_ema", c.model_ema);
  f("model_ema_decay", c.model_ema_decay);
  f("repeated_aug", c.repeated_aug);
  f("amp", c.amp);
  f("device", c.device);
  f("seed", c.seed);
  f("run_dir", c.run_dir);
  f("out", c.out);
  f("keep_last", c.keep_last);
  f("log_every", c.log_every);
  f("dist_backend", c.dist_backend);
  f("dist_timeout", c.dist_timeout);
  f("mode", c.mode);
  f("piad_progressive_epochs", c.piad_progressive_epochs);
  f("piad_budget_ratio", c.piad_budget_ratio);
  f("piad_attn_group", c.piad_attn_group);
  f("piad_mlp_groups", c.piad_mlp_groups);
  f("piad_proxy_samples", c.piad_proxy_samples);
  f("piad_proxy_batch", c.piad_proxy_batch);
  f("piad_sensitivity", c.piad_sensitivity);
  f("piad_sandwich", c.piad_sandwich);
}

}  // namespace

nlohmann::json config_to_json(const TrainConfig& config) {
  nlohmann::json j = nlohmann::json::object();
  TrainConfig c = config;
  for_each_field(c, [&](const char* key, auto& value) { j[key] = value; });
  return j;
}

TrainConfig config_from_json(const nlohmann::json& j, const std::string& source, TrainConfig base) {
  if (!j.is_object()) throw std::invalid_argument(cat(source, ": expected a JSON object"));
  std::map<std::string, bool> known;
  for_each_field(base, [&](const char* key, auto&) { known[key] = true; });
  for (const auto& [key, value] : j.items())
    if (!known.count(key)) throw std::invalid_argument(cat(source, ": unknown key '", key, "'"));
  for_each_field(base, [&](const char* key, auto& field) {
    if (j.contains(key)) options::detail::read_value(j.at(key), field, source, key);
  });
  return base;
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
  need(c.amp == "none" || c.amp == "bf16" || c.amp == "fp16", "amp", "must be none, bf16 or fp16");
  need(c.keep_last >= 1, "keep_last", "must be >= 1");
  need(c.limit >= 0, "limit", "must be >= 0");
  need(c.workers >= 0, "workers", "must be >= 0");
  need(c.log_every >= 0, "log_every", "must be >= 0");
  need(c.dist_backend == "auto" || c.dist_backend == "gloo" || c.dist_backend == "nccl", "dist_backend",
       "must be auto, gloo or nccl");
  need(c.dist_timeout > 0, "dist_timeout", "must be positive");
  need(c.mode == "train" || c.mode == "piad", "mode", "must be train or piad");
  check_piad_options(c);  // the ranges are piad's (piad::check_options)
  need(c.piad_sensitivity == "loss" || c.piad_sensitivity == "accuracy", "piad_sensitivity",
       "must be loss or accuracy");
  const bool mixing = c.mixup > 0 || c.cutmix > 0;
  need(!mixing || c.batch_size % 2 == 0, "batch_size",
       "must be even when mixup/cutmix is on (pairs are flipped)");
}

}  // namespace skd::train
