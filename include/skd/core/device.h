// Devices and mixed precision: parsing --device, autocast scopes that work on LibTorch 1.13 and 2.x.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

namespace skd {

// "cpu", "cuda", "cuda:N". Throws std::invalid_argument when CUDA is asked for but not available.
torch::Device parse_device(const std::string& text);

enum class Amp { NONE, BF16, FP16 };
// The names of the precisions (config key amp; skd/core/options.h).
inline constexpr std::pair<const char*, Amp> kAmpNames[] = {
    {"none", Amp::NONE}, {"bf16", Amp::BF16}, {"fp16", Amp::FP16}};
// "", "none", "bf16", "fp16"; std::invalid_argument otherwise or when AMP is asked for on a CPU.
Amp parse_amp(const std::string& text, const torch::Device& device);
// skd::ParameterError (keys amp and device) when `amp` is not NONE and `device` is not CUDA.
void check_amp_device(Amp amp, const torch::Device& device);

// Enables CUDA autocast at the given precision for its lifetime (no-op for Amp::NONE).
class AutocastGuard {
 public:
  explicit AutocastGuard(Amp amp);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool prev_enabled_ = false;
  torch::ScalarType prev_dtype_ = torch::kHalf;
};

// Waits for queued GPU work (for timing); no-op on CPU.
void synchronize(const torch::Device& device);

}  // namespace skd
