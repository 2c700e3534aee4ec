#include "skd/train/trainer.h"

#include <chrono>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "skd/core/error.h"
#include "skd/core/logging.h"
#include "skd/eval/evaluate.h"
#include "skd/models/checkpoint.h"

namespace skd::train {

double lr_at(const TrainOptions& o, double epoch) {
  if (epoch < o.warmup_epochs) return o.lr * epoch / o.warmup_epochs;
  const double span = std::max(1e-9, static_cast<double>(o.epochs) - o.warmup_epochs);
  const double t = std::min(1.0, (epoch - o.warmup_epochs) / span);
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + std::cos(M_PI * t));
}

namespace {

bool no_decay(const std::string& key, const torch::Tensor& p) {
  return p.dim() <= 1 || key == "cls_token" || key == "pos_embed" ||
         key.find("relative_position_bias_table") != std::string::npos;
}

void validate(const TrainOptions& o) {
  if (o.epochs <= 0) throw std::invalid_argument("--epochs must be positive");
  if (o.batch_size <= 0) throw std::invalid_argument("--batch-size must be positive");
  if (!(o.lr > 0)) throw std::invalid_argument("--lr must be positive");
  if (o.min_lr < 0 || o.min_lr > o.lr) throw std::invalid_argument("--min-lr must be in [0, --lr]");
  if (o.weight_decay < 0) throw std::invalid_argument("--weight-decay must be >= 0");
  if (o.warmup_epochs < 0 || o.warmup_epochs > o.epochs) throw std::invalid_argument("--warmup-epochs must be in [0, --epochs]");
  if (o.label_smoothing < 0 || o.label_smoothing >= 1) throw std::invalid_argument("--smoothing must be in [0, 1)");
}

}  // namespace

TrainSummary train_classifier(models::ElasticModelImpl& model, const data::Dataset& train_set,
                              const data::Dataset* eval_set, const TrainOptions& o) {
  validate(o);
  const int64_t n = o.limit > 0 ? std::min(o.limit, train_set.size()) : train_set.size();
  const int64_t steps_per_epoch = n / o.batch_size;  // drop_last
  if (steps_per_epoch == 0)
    throw std::invalid_argument(cat("training set of ", n, " images is smaller than one batch of ", o.batch_size));
  std::vector<torch::Tensor> decay, plain;
  for (auto& p : model.named_parameters(true)) (no_decay(p.key(), p.value()) ? plain : decay).push_back(p.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay)));
  groups.emplace_back(plain, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.lr).weight_decay(0.0)));
  torch::optim::AdamW opt(std::move(groups));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::ofstream metrics;
  if (!o.metrics_jsonl.empty()) {
    metrics.open(o.metrics_jsonl, std::ios::app);
    if (!metrics) throw std::runtime_error(cat("cannot open metrics file '", o.metrics_jsonl, "'"));
  }
  TrainSummary summary;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const auto run_start = std::chrono::steady_clock::now();
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    model.train();
    const auto epoch_start = std::chrono::steady_clock::now();
    const auto perm = torch::randperm(n, gen, torch::kLong);
    const auto* order = perm.data_ptr<int64_t>();
    double loss_sum = 0;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      const double lr = lr_at(o, epoch + static_cast<double>(step) / steps_per_epoch);
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      std::vector<int64_t> idx(order + step * o.batch_size, order + (step + 1) * o.batch_size);
      const auto batch = train_set.get_batch(idx);
      opt.zero_grad();
      const auto logits = model.forward(batch.images);
      const auto loss = torch::nn::functional::cross_entropy(
          logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(o.label_smoothing));
      const double lv = loss.item<double>();
      if (!std::isfinite(lv))
        throw std::runtime_error(cat("loss is ", lv, " at epoch ", epoch, " step ", step,
                                     "; stopping (lower --lr or check the data)"));
      loss.backward();
      opt.step();
      loss_sum += lv;
      summary.last_loss = lv;
      ++summary.steps;
      if (o.log_every > 0 && (summary.steps % o.log_every == 0 || summary.steps == total_steps)) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
        const double rate = summary.steps * o.batch_size / el;
        const double eta = (total_steps - summary.steps) * o.batch_size / std::max(rate, 1e-9);
        log_info("epoch ", epoch + 1, "/", o.epochs, " step ", step + 1, "/", steps_per_epoch, " loss ",
                 loss_sum / (step + 1), " lr ", lr, " | ", static_cast<int64_t>(rate), " img/s, ETA ",
                 static_cast<int64_t>(eta), " s");
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    nlohmann::json rec = {{"epoch", epoch + 1},
                          {"train_loss", loss_sum / steps_per_epoch},
                          {"lr", lr_at(o, epoch + 1.0 - 1e-9)},
                          {"images_per_s", steps_per_epoch * o.batch_size / secs},
                          {"epoch_seconds", secs}};
    summary.images_per_s = steps_per_epoch * o.batch_size / secs;
    if (eval_set) {
      eval::EvalOptions eo;
      eo.batch_size = std::max<int64_t>(o.batch_size, 256);
      const auto r = eval::evaluate(model, *eval_set, eo);
      rec["top1"] = r.top1;
      rec["top5"] = r.top5;
      rec["eval_loss"] = r.loss;
      summary.eval_top1 = r.top1;
      log_info("epoch ", epoch + 1, " eval: top-1 ", r.top1, "% top-5 ", r.top5, "% loss ", r.loss);
    }
    if (metrics) metrics << rec.dump() << std::endl;
  }
  if (!o.out.empty()) {
    nlohmann::json prov = {{"trained_by", "skd-train"},
                           {"epochs", o.epochs},
                           {"batch_size", o.batch_size},
                           {"lr", o.lr},
                           {"seed", o.seed},
                           {"train_data", train_set.describe()}};
    if (summary.eval_top1 >= 0) prov["eval_top1"] = summary.eval_top1;
    models::save_artifact(o.out, model, prov);
    log_info("wrote ", o.out);
  }
  return summary;
}

}  // namespace skd::train
