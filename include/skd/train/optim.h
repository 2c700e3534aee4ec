// Optimisation pieces of the training engine, with state that checkpoints can save and restore
// exactly: AdamW (torch.optim.AdamW arithmetic, DeiT's no-decay groups), the warmup + cosine LR
// schedule, a dynamic loss scaler for fp16, and the EMA of the weights (timm ModelEma).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "skd/io/tensor_record.h"

namespace skd::train {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// DeiT/timm: no weight decay on 1-D parameters (norms, biases), cls_token, pos_embed and Swin
// relative-position bias tables.
bool no_weight_decay(const std::string& name, const torch::Tensor& param);

// How an optimizer step is computed; every kind is the same arithmetic as torch.optim.AdamW.
// PER_TENSOR: one op per tensor and moment (the reference form); FOREACH: torch's _foreach_* ops over
// the parameter list (on CPU the same ops in the same order: bit-identical to PER_TENSOR; on CUDA a
// few multi-tensor kernels); FUSED: torch's _fused_adamw_ (one kernel for the whole update, LibTorch
// >= 2.4; CUDA, and CPU); AUTO: FUSED for CUDA parameters where available, else FOREACH.
enum class OptimizerKernel { AUTO, PER_TENSOR, FOREACH, FUSED };
// Whether this LibTorch has _fused_adamw_ (FUSED otherwise falls back to FOREACH).
bool fused_adamw_available();

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.05;
  OptimizerKernel kernel = OptimizerKernel::AUTO;
};

// AdamW as torch.optim.AdamW (decoupled decay, bias-corrected moments, per-parameter step count).
// Parameters whose grad is undefined are skipped, as torch does.
class AdamW {
 public:
  AdamW(NamedTensors params, const AdamWConfig& config);
  void step(double lr);
  void zero_grad();  // sets grads to undefined (set_to_none)
  const NamedTensors& params() const { return params_; }
  // State as tensors: "<name>/exp_avg", "<name>/exp_avg_sq", "<name>/step" (int64 scalar).
  std::map<std::string, torch::Tensor> state() const;
  // Restores state(); throws std::runtime_error naming `source` and the key on a missing key or
  // a shape mismatch.
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  struct Slot {
    torch::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
    double weight_decay = 0;
    torch::Tensor step_tensor;  // FUSED: the kernel's own step count (float, on the parameter's device)
  };
  void step_per_tensor(const std::vector<size_t>& group, double lr);
  void step_foreach(const std::vector<size_t>& group, double lr);
  void step_fused(const std::vector<size_t>& group, double lr);
  OptimizerKernel resolved_kernel() const;
  NamedTensors params_;
  std::vector<Slot> slots_;
  AdamWConfig config_;
};

// Learning rate at fractional epoch `epoch`: linear warmup from warmup_lr to peak over
// warmup_epochs, then cosine from peak to min_lr at `epochs`.
struct LrSchedule {
  double peak = 5e-4, min_lr = 1e-5, warmup_lr = 1e-6, warmup_epochs = 0;
  int64_t epochs = 1;
  double at(double epoch) const;
};

// Dynamic loss scaling for fp16 (torch.cuda.amp.GradScaler defaults). Disabled: scale 1, never
// skips.
class GradScaler {
 public:
  explicit GradScaler(bool enabled, double init_scale = 65536.0, double growth_factor = 2.0,
                      double backoff_factor = 0.5, int64_t growth_interval = 2000);
  bool enabled() const { return enabled_; }
  double scale() const { return enabled_ ? scale_ : 1.0; }
  torch::Tensor scale_loss(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }
  // Divides the grads by the scale; returns true when any is Inf/NaN (the step must be skipped).
  bool unscale_and_check(const NamedTensors& params);
  // After a step (or a skipped one): back off on overflow, grow after growth_interval clean steps.
  void update(bool found_inf);
  int64_t growth_tracker() const { return growth_tracker_; }
  void set_state(double scale, int64_t growth_tracker);

 private:
  bool enabled_;
  double scale_, growth_, backoff_;
  int64_t interval_, growth_tracker_ = 0;
};

// Exponential moving average of a model's parameters and floating buffers:
// ema = decay * ema + (1 - decay) * value, every step.
// The update is one multi-tensor op pair (_foreach_mul_, _foreach_add_), bit-identical on CPU to the
// per-tensor form.
class ModelEma {
 public:
  ModelEma(const NamedTensors& values, double decay);
  void update(const NamedTensors& values);
  const NamedTensors& values() const { return ema_; }
  // Copies the averages into `values` (same names and shapes).
  void copy_to(const NamedTensors& values) const;
  void load(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  NamedTensors ema_;
  double decay_;
};

// Runs `fn` with the EMA averages in `values` (the live weights, as given to the ModelEma) and puts
// the live weights back afterwards, also when `fn` throws: the EMA artifact is saved this way.
void with_ema_weights(const ModelEma& ema, const NamedTensors& values, const std::function<void()>& fn);

// Global L2 norm of the grads; scales them to at most max_norm (torch clip_grad_norm_). Returns
// the norm before clipping as a 0-dim float64 tensor on the grads' device: on LibTorch >= 2.1 the
// clipping itself reads nothing back to the host (no device synchronisation).
torch::Tensor clip_grad_norm(const NamedTensors& params, double max_norm);

}  // namespace skd::train
