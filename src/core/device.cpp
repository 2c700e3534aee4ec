#include "skd/core/device.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"

namespace skd {

torch::Device parse_device(const std::string& text) {
  torch::Device d(torch::kCPU);
  try {
    d = torch::Device(text);
  } catch (const std::exception&) {
    throw ParameterError("device", cat(" '", text, "': expected cpu, cuda or cuda:N"));
  }
  if (d.is_cuda()) {
    if (!torch::cuda::is_available())
      throw ParameterError("device", cat(" ", text, ": no CUDA device is available to this LibTorch build"));
    if (d.has_index() && d.index() >= static_cast<int>(torch::cuda::device_count()))
      throw ParameterError("device", cat(" ", text, ": only ", torch::cuda::device_count(), " CUDA device(s)"));
  } else if (!d.is_cpu()) {
    throw ParameterError("device", cat(" '", text, "': only cpu and cuda are supported"));
  }
  return d;
}

Amp parse_amp(const std::string& text, const torch::Device& device) {
  const auto a = text.empty() ? std::optional<Amp>(Amp::NONE) : find_enum(text, kAmpNames);
  if (!a) throw ParameterError("amp", cat(" '", text, "': expected bf16, fp16 or none"));
  check_amp_device(*a, device);
  return *a;
}

void check_amp_device(Amp amp, const torch::Device& device) {
  if (amp != Amp::NONE && !device.is_cuda())
    throw ParameterError([](const KeyNamer& name) { return name("amp") + " needs " + name("device") + " cuda"; });
}

// The autocast API moved in LibTorch 2.4 (device-type arguments); keep both paths exact.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SKD_AUTOCAST_DEVICE_API 1
#endif

AutocastGuard::AutocastGuard(Amp amp) {
  if (amp == Amp::NONE) return;
  active_ = true;
  const auto dtype = amp == Amp::BF16 ? torch::kBFloat16 : torch::kHalf;
#ifdef SKD_AUTOCAST_DEVICE_API
  prev_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
  prev_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  prev_enabled_ = at::autocast::is_enabled();
  prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(true);
#endif
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
#ifdef SKD_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_enabled(at::kCUDA, prev_enabled_);
  at::autocast::set_autocast_dtype(at::kCUDA, prev_dtype_);
#else
  at::autocast::set_enabled(prev_enabled_);
  at::autocast::set_autocast_gpu_dtype(prev_dtype_);
#endif
  at::autocast::clear_cache();
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

}  // namespace skd
