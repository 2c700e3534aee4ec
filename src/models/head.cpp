#include "skd/models/head.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "layers.h"
#include "skd/core/error.h"

namespace skd::models {

std::pair<std::string, std::string> head_keys(const ModelConfig& config) {
  if (config.family == Family::VIT) return {"head.weight", "head.bias"};
  return {"head.fc.weight", "head.fc.bias"};
}

void replace_head(ElasticModel& model, int64_t num_classes, uint64_t seed) {
  SKD_CHECK(model != nullptr, "replace_head: no model");
  if (num_classes < 1 || num_classes > kMaxNumClasses)
    throw std::invalid_argument(cat("new head: num_classes ", num_classes, " must be in [1, ", kMaxNumClasses, "]"));
  ModelConfig config = model->config();
  config.widths = model->widths();
  config.num_classes = num_classes;
  // Every parameter but the head is overwritten below: skip the Linear initialisations.
  ElasticModel out = [&] {
    detail::SkipInit skip;
    return create_model(config);
  }();
  const auto [weight_key, bias_key] = head_keys(config);
  const auto src = model->named_parameters(true);
  auto dst = out->named_parameters(true);
  torch::NoGradGuard guard;
  for (auto& d : dst) {
    if (d.key() == weight_key || d.key() == bias_key) continue;
    const auto* v = src.find(d.key());
    SKD_CHECK(v != nullptr && v->sizes() == d.value().sizes(), "replace_head: cannot copy ", d.key());
    d.value().copy_(*v);
  }
  // timm's trunc_normal_(std=.02) (cut at the absolute bounds -2, 2) by the inverse-CDF method:
  // uniform in [cdf(a), cdf(b)] mapped through erfinv. With std 0.02 the cut never binds in practice,
  // but it is the documented distribution.
  const double stdev = 0.02, a = -2.0, b = 2.0;
  auto cdf = [&](double x) { return 0.5 * (1.0 + std::erf(x / stdev / std::sqrt(2.0))); };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto w = torch::empty(dst[weight_key].sizes(), torch::kFloat32);
  w.uniform_(2 * cdf(a) - 1, 2 * cdf(b) - 1, gen).erfinv_().mul_(stdev * std::sqrt(2.0)).clamp_(a, b);
  dst[weight_key].copy_(w);
  dst[bias_key].zero_();
  const auto params = model->parameters();
  if (!params.empty()) out->to(params.front().device());
  out->train(model->is_training());
  model = out;
}

}  // namespace skd::models
