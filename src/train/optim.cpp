#include "skd/train/optim.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <stdexcept>

#include "skd/core/error.h"

namespace skd::train {

bool no_weight_decay(const std::string& name, const torch::Tensor& param) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return param.dim() <= 1 || ends_with(".bias") || name == "cls_token" || name == "pos_embed" ||
         name.find("relative_position_bias_table") != std::string::npos;
}

AdamW::AdamW(NamedTensors params, const AdamWConfig& config) : params_(std::move(params)), config_(config) {
  slots_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    slots_[i].weight_decay = no_weight_decay(name, p) ? 0.0 : config_.weight_decay;
  }
}

// _fused_adamw_ (with a CPU kernel too) from LibTorch 2.4; a Tensor multiplier for _foreach_mul_ from 2.1.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SKD_HAVE_FUSED_ADAMW 1
#else
#define SKD_HAVE_FUSED_ADAMW 0
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define SKD_HAVE_FOREACH_TENSOR_MUL 1
#else
#define SKD_HAVE_FOREACH_TENSOR_MUL 0
#endif

bool fused_adamw_available() { return SKD_HAVE_FUSED_ADAMW != 0; }

OptimizerKernel AdamW::resolved_kernel() const {
  const auto k = config_.kernel;
  if (k == OptimizerKernel::FUSED) return fused_adamw_available() ? k : OptimizerKernel::FOREACH;
  if (k != OptimizerKernel::AUTO) return k;
  const bool cuda = !params_.empty() && params_.front().second.is_cuda();
  return cuda && fused_adamw_available() ? OptimizerKernel::FUSED : OptimizerKernel::FOREACH;
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  // Parameters with a grad, grouped by what the update takes as one scalar: the weight decay and the
  // step count (equal across a model unless some grads were undefined on some steps), and the
  // device/dtype that multi-tensor kernels need to share.
  std::vector<std::vector<size_t>> groups;
  std::vector<std::tuple<double, int64_t, torch::Device, torch::ScalarType>> keys;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    auto& s = slots_[i];
    if (!s.exp_avg.defined()) {
      s.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      s.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    }
    const auto key = std::make_tuple(s.weight_decay, s.step, p.device(), p.scalar_type());
    const auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      groups.push_back({i});
    } else {
      groups[static_cast<size_t>(it - keys.begin())].push_back(i);
    }
  }
  const auto kernel = resolved_kernel();
  for (const auto& g : groups) {
    for (size_t i : g) ++slots_[i].step;
    if (kernel == OptimizerKernel::PER_TENSOR) step_per_tensor(g, lr);
    else if (kernel == OptimizerKernel::FUSED) step_fused(g, lr);
    else step_foreach(g, lr);
  }
}

void AdamW::step_per_tensor(const std::vector<size_t>& group, double lr) {
  for (size_t i : group) {
    auto& p = params_[i].second;
    const auto& g = p.grad();
    auto& s = slots_[i];
    s.step_tensor = torch::Tensor();
    if (s.weight_decay != 0) p.mul_(1.0 - lr * s.weight_decay);
    s.exp_avg.mul_(config_.beta1).add_(g, 1.0 - config_.beta1);
    s.exp_avg_sq.mul_(config_.beta2).addcmul_(g, g, 1.0 - config_.beta2);
    const double bc1 = 1.0 - std::pow(config_.beta1, static_cast<double>(s.step));
    const double bc2 = 1.0 - std::pow(config_.beta2, static_cast<double>(s.step));
    const auto denom = (s.exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(config_.eps);
    p.addcdiv_(s.exp_avg, denom, -lr / bc1);
  }
}

void AdamW::step_foreach(const std::vector<size_t>& group, double lr) {
  std::vector<torch::Tensor> p, g, m, v;
  for (size_t i : group) {
    p.push_back(params_[i].second);
    g.push_back(params_[i].second.grad());
    m.push_back(slots_[i].exp_avg);
    v.push_back(slots_[i].exp_avg_sq);
    slots_[i].step_tensor = torch::Tensor();
  }
  const auto& s = slots_[group.front()];  // one weight decay and step count per group
  if (s.weight_decay != 0) at::_foreach_mul_(p, 1.0 - lr * s.weight_decay);
  at::_foreach_mul_(m, config_.beta1);
  at::_foreach_add_(m, g, 1.0 - config_.beta1);
  at::_foreach_mul_(v, config_.beta2);
  at::_foreach_addcmul_(v, g, g, 1.0 - config_.beta2);
  const double bc1 = 1.0 - std::pow(config_.beta1, static_cast<double>(s.step));
  const double bc2 = 1.0 - std::pow(config_.beta2, static_cast<double>(s.step));
  auto denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, config_.eps);
  at::_foreach_addcdiv_(p, m, denom, -lr / bc1);
}

void AdamW::step_fused(const std::vector<size_t>& group, double lr) {
#if SKD_HAVE_FUSED_ADAMW
  std::vector<torch::Tensor> p, g, m, v, steps;
  for (size_t i : group) {
    auto& s = slots_[i];
    p.push_back(params_[i].second);
    g.push_back(params_[i].second.grad());
    m.push_back(s.exp_avg);
    v.push_back(s.exp_avg_sq);
    // The step tensors mirror s.step (already incremented here); the kernel reads them as they are, so
    // they are advanced here too (as torch.optim.AdamW(fused=True) does before calling it).
    if (!s.step_tensor.defined() || s.step_tensor.device() != p.back().device())
      s.step_tensor = torch::full({}, static_cast<double>(s.step - 1),
                                  torch::TensorOptions().dtype(torch::kFloat32).device(p.back().device()));
    steps.push_back(s.step_tensor);
  }
  at::_foreach_add_(steps, 1.0);
  at::_fused_adamw_(p, g, m, v, {}, steps, lr, config_.beta1, config_.beta2, slots_[group.front()].weight_decay,
                    config_.eps, /*amsgrad=*/false, /*maximize=*/false);
#else
  step_foreach(group, lr);
#endif
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) p.mutable_grad() = torch::Tensor();
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& name = params_[i].first;
    const auto& s = slots_[i];
    out[name + "/step"] = torch::tensor(s.step, torch::kLong);
    if (s.exp_avg.defined()) {
      out[name + "/exp_avg"] = s.exp_avg;
      out[name + "/exp_avg_sq"] = s.exp_avg_sq;
    }
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    auto& s = slots_[i];
    auto it = state.find(name + "/step");
    if (it == state.end()) throw std::runtime_error(cat(source, ": optimizer state lacks '", name, "/step'"));
    s.step = it->second.item<int64_t>();
    s.step_tensor = torch::Tensor();
    auto a = state.find(name + "/exp_avg"), b = state.find(name + "/exp_avg_sq");
    if (a == state.end() || b == state.end()) {
      if (s.step != 0) throw std::runtime_error(cat(source, ": optimizer state lacks the moments of '", name, "'"));
      s.exp_avg = s.exp_avg_sq = torch::Tensor();
      continue;
    }
    if (a->second.sizes() != p.sizes() || b->second.sizes() != p.sizes())
      throw std::runtime_error(cat(source, ": optimizer moments of '", name, "' have shape ", a->second.sizes(),
                                   ", the parameter ", p.sizes()));
    s.exp_avg = a->second.to(p.options()).clone();
    s.exp_avg_sq = b->second.to(p.options()).clone();
  }
}

double LrSchedule::at(double epoch) const {
  if (epoch < warmup_epochs) return warmup_lr + (peak - warmup_lr) * epoch / warmup_epochs;
  const double span = std::max(1e-9, static_cast<double>(epochs) - warmup_epochs);
  const double t = std::min(1.0, std::max(0.0, (epoch - warmup_epochs) / span));
  return min_lr + 0.5 * (peak - min_lr) * (1 + std::cos(M_PI * t));
}

GradScaler::GradScaler(bool enabled, double init_scale, double growth_factor, double backoff_factor,
                       int64_t growth_interval)
    : enabled_(enabled), scale_(init_scale), growth_(growth_factor), backoff_(backoff_factor),
      interval_(growth_interval) {}

bool GradScaler::unscale_and_check(const NamedTensors& params) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flags;
  const double inv = 1.0 / scale();
  for (const auto& [name, p] : params) {
    auto g = p.grad();
    if (!g.defined()) continue;
    if (enabled_) g.mul_(inv);
    flags.push_back(torch::isfinite(g).all().logical_not());
  }
  if (flags.empty()) return false;
  return torch::stack(flags).any().item<bool>();
}

void GradScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_ *= backoff_;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ >= interval_) {
    scale_ *= growth_;
    growth_tracker_ = 0;
  }
}

void GradScaler::set_state(double scale, int64_t growth_tracker) {
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

ModelEma::ModelEma(const NamedTensors& values, double decay) : decay_(decay) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, v] : values)
    if (v.is_floating_point()) ema_.emplace_back(name, v.detach().clone());
}

void ModelEma::update(const NamedTensors& values) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ema, live;
  ema.reserve(ema_.size());
  live.reserve(ema_.size());
  size_t j = 0;
  for (const auto& [name, v] : values) {
    if (!v.is_floating_point()) continue;
    SKD_CHECK(j < ema_.size() && ema_[j].first == name, "EMA: parameter list changed at '", name, "'");
    ema.push_back(ema_[j++].second);
    live.push_back(v.detach());
  }
  at::_foreach_mul_(ema, decay_);
  at::_foreach_add_(ema, live, 1.0 - decay_);
}

void ModelEma::copy_to(const NamedTensors& values) const {
  torch::NoGradGuard no_grad;
  size_t j = 0;
  for (const auto& [name, v] : values) {
    if (!v.is_floating_point()) continue;
    SKD_CHECK(j < ema_.size() && ema_[j].first == name, "EMA: parameter list changed at '", name, "'");
    const_cast<torch::Tensor&>(v).copy_(ema_[j++].second);
  }
}

void with_ema_weights(const ModelEma& ema, const NamedTensors& values, const std::function<void()>& fn) {
  std::vector<torch::Tensor> saved;
  for (const auto& [name, t] : values) saved.push_back(t.detach().clone());
  auto restore = [&] {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < values.size(); ++i) values[i].second.copy_(saved[i]);
  };
  ema.copy_to(values);
  try {
    fn();
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

void ModelEma::load(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (auto& [name, v] : ema_) {
    auto it = state.find(name);
    if (it == state.end()) throw std::runtime_error(cat(source, ": EMA state lacks '", name, "'"));
    if (it->second.sizes() != v.sizes())
      throw std::runtime_error(cat(source, ": EMA '", name, "' has shape ", it->second.sizes(), ", expected ",
                                   v.sizes()));
    v.copy_(it->second);
  }
}

torch::Tensor clip_grad_norm(const NamedTensors& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& [name, p] : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({}, torch::kFloat64);
  std::vector<torch::Tensor> norms;
  for (const auto& n : at::_foreach_norm(grads, 2)) norms.push_back(n.to(torch::kFloat64));
  const auto total = torch::stack(norms).norm(2);
#if SKD_HAVE_FOREACH_TENSOR_MUL
  // min(1, max_norm / (total + 1e-6)) stays on the device; a factor of exactly 1 changes no grad.
  const auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0).to(grads.front().scalar_type());
  at::_foreach_mul_(grads, coef);
#else
  const double coef = max_norm / (total.item<double>() + 1e-6);
  if (coef < 1) at::_foreach_mul_(grads, coef);
#endif
  return total;
}

}  // namespace skd::train
