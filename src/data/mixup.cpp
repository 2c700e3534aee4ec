// timm/DeiT tensor-side training augmentations: RandomErasing, the train transform, Mixup/CutMix.
#include "skd/data/mixup.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "skd/core/error.h"
#include "skd/data/eval_transform.h"

namespace skd::data {

namespace {

std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  std::ostringstream os;
  os << t.sizes() << " " << t.dtype().name();
  return os.str();
}

// timm's loader hands RandAugment RGB images (PIL convert('RGB')): gray is replicated.
Image as_rgb(const Image& img) {
  if (img.channels == 3) return img;
  Image out;
  out.width = img.width;
  out.height = img.height;
  out.channels = 3;
  out.pixels.resize(img.pixels.size() * 3);
  for (size_t i = 0; i < img.pixels.size(); ++i)
    out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = img.pixels[i];
  return out;
}

// torchvision ToTensor + Normalize of an RGB image, in float32 like torchvision (x / 255, then
// (x - m) / s): the same numbers as to_normalized_tensor (eval_transform.h), kept local so the
// augmentation files build and test without eval_transform.cpp and its image decoding.
// N(0, 1) values from a torch generator seeded by one draw of `rng`: still reproducible from the
// caller's seed, and vectorised (per-value Box-Muller from the Rng made erasing 4x slower than
// the PIL/torchvision pipeline).
torch::Tensor normal_tensor(const std::vector<int64_t>& shape, Rng& rng) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(rng());
  return torch::randn(shape, gen, torch::kFloat32);
}

// timm RandomErasing._erase on one [C, H, W] sample.
int erase_one(torch::Tensor img, const RandomErasingConfig& cfg, Rng& rng) {
  if (rng_uniform01(rng) > cfg.prob) return 0;
  const int64_t c = img.size(0), h = img.size(1), w = img.size(2);
  const double area = static_cast<double>(h) * w;
  const int count = cfg.min_count == cfg.max_count
                        ? cfg.min_count
                        : static_cast<int>(rng_int(rng, cfg.min_count, cfg.max_count));
  const double log_lo = std::log(cfg.min_aspect), log_hi = std::log(cfg.max_aspect);
  int erased = 0;
  for (int k = 0; k < count; ++k) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target_area = rng_uniform(rng, cfg.min_area, cfg.max_area) * area / count;
      const double aspect = std::exp(rng_uniform(rng, log_lo, log_hi));
      const auto bh = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));
      const auto bw = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
      if (bw < w && bh < h) {
        const int64_t top = rng_int(rng, 0, h - bh), left = rng_int(rng, 0, w - bw);
        auto region = img.slice(1, top, top + bh).slice(2, left, left + bw);
        switch (cfg.mode) {
          case EraseMode::PIXEL:
            region.copy_(normal_tensor({c, bh, bw}, rng));
            break;
          case EraseMode::RAND:
            region.copy_(normal_tensor({c, 1, 1}, rng).expand({c, bh, bw}));
            break;
          case EraseMode::CONST:
            region.zero_();
            break;
        }
        ++erased;
        break;
      }
    }
  }
  return erased;
}

}  // namespace

void validate(const RandomErasingConfig& cfg) {
  auto fail = [](const std::string& what) { return std::invalid_argument("RandomErasingConfig: " + what); };
  if (!(cfg.prob >= 0 && cfg.prob <= 1)) throw fail(cat("prob must be in [0, 1], got ", cfg.prob));
  if (!(cfg.min_area > 0 && cfg.min_area <= cfg.max_area && cfg.max_area <= 1))
    throw fail(cat("need 0 < min_area <= max_area <= 1, got ", cfg.min_area, ", ", cfg.max_area));
  if (!(cfg.min_aspect > 0 && cfg.min_aspect <= cfg.max_aspect && std::isfinite(cfg.max_aspect)))
    throw fail(cat("need 0 < min_aspect <= max_aspect, got ", cfg.min_aspect, ", ", cfg.max_aspect));
  if (!(cfg.min_count >= 1 && cfg.min_count <= cfg.max_count))
    throw fail(cat("need 1 <= min_count <= max_count, got ", cfg.min_count, ", ", cfg.max_count));
}

int random_erasing(torch::Tensor& img, const RandomErasingConfig& cfg, Rng& rng) {
  validate(cfg);
  if (!img.defined() || (img.dim() != 3 && img.dim() != 4) || !img.is_floating_point())
    throw std::invalid_argument(
        cat("random_erasing: expected a float [C, H, W] or [B, C, H, W] tensor, got ", describe(img)));
  if (img.dim() == 3) return erase_one(img, cfg, rng);
  int erased = 0;
  for (int64_t b = 0; b < img.size(0); ++b) erased += erase_one(img[b], cfg, rng);
  return erased;
}

torch::Tensor train_transform(const Image& img, const TrainTransform& t, Rng& rng) {
  if (t.erasing.prob > 0) validate(t.erasing);  // before spending any work on the image
  if (img.channels != 1 && img.channels != 3)
    throw std::invalid_argument(cat("train_transform: expected 1 or 3 channels, got ", img.channels));
  const Image crop = train_crop(img.channels == 3 ? img : as_rgb(img), t, rng);
  torch::Tensor x = to_normalized_tensor(crop, t.mean, t.std);
  if (t.erasing.prob > 0) random_erasing(x, t.erasing, rng);
  return x;
}

// ---------------------------------------------------------------------------------------------
// Mixup / CutMix

void validate(const MixupConfig& cfg) {
  auto fail = [](const std::string& what) { return std::invalid_argument("MixupConfig: " + what); };
  if (!(cfg.mixup_alpha >= 0) || !(cfg.cutmix_alpha >= 0))
    throw fail(cat("alphas must be >= 0, got mixup ", cfg.mixup_alpha, ", cutmix ", cfg.cutmix_alpha));
  if (cfg.mixup_alpha == 0 && cfg.cutmix_alpha == 0)
    throw fail("one of mixup_alpha and cutmix_alpha must be > 0");
  if (!(cfg.prob >= 0 && cfg.prob <= 1)) throw fail(cat("prob must be in [0, 1], got ", cfg.prob));
  if (!(cfg.switch_prob >= 0 && cfg.switch_prob <= 1))
    throw fail(cat("switch_prob must be in [0, 1], got ", cfg.switch_prob));
  if (!(cfg.label_smoothing >= 0 && cfg.label_smoothing < 1))
    throw fail(cat("label_smoothing must be in [0, 1), got ", cfg.label_smoothing));
  if (cfg.num_classes < 1) throw fail(cat("num_classes must be >= 1, got ", cfg.num_classes));
}

CutmixBox cutmix_box(int64_t height, int64_t width, double& lam, bool correct_lam, Rng& rng) {
  if (height <= 0 || width <= 0)
    throw std::invalid_argument(cat("cutmix_box: empty image ", height, "x", width));
  if (!(lam >= 0 && lam <= 1))
    throw std::invalid_argument(cat("cutmix_box: lam must be in [0, 1], got ", lam));
  const double ratio = std::sqrt(1.0 - lam);
  const auto cut_h = static_cast<int64_t>(height * ratio), cut_w = static_cast<int64_t>(width * ratio);
  const int64_t cy = rng_int(rng, 0, height - 1), cx = rng_int(rng, 0, width - 1);
  CutmixBox b;
  b.y0 = std::clamp<int64_t>(cy - cut_h / 2, 0, height);
  b.y1 = std::clamp<int64_t>(cy + cut_h / 2, 0, height);
  b.x0 = std::clamp<int64_t>(cx - cut_w / 2, 0, width);
  b.x1 = std::clamp<int64_t>(cx + cut_w / 2, 0, width);
  if (correct_lam)
    lam = 1.0 - static_cast<double>((b.y1 - b.y0) * (b.x1 - b.x0)) / static_cast<double>(height * width);
  return b;
}

namespace {

void check_labels(const torch::Tensor& labels, int64_t num_classes, const char* fn) {
  if (!labels.defined() || labels.dim() != 1 || labels.scalar_type() != torch::kInt64)
    throw std::invalid_argument(cat(fn, ": labels must be an int64 [B] tensor, got ", describe(labels)));
  if (num_classes < 1) throw std::invalid_argument(cat(fn, ": num_classes must be >= 1, got ", num_classes));
  if (labels.numel() == 0) return;
  const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
  if (lo < 0 || hi >= num_classes)
    throw std::invalid_argument(
        cat(fn, ": labels must be in [0, ", num_classes, "), got values in [", lo, ", ", hi, "]"));
}

}  // namespace

torch::Tensor mixup_target(const torch::Tensor& labels, int64_t num_classes, double lam, double smoothing) {
  check_labels(labels, num_classes, "mixup_target");
  const double off = smoothing / static_cast<double>(num_classes);
  const double on = 1.0 - smoothing + off;
  auto one_hot = [&](const torch::Tensor& y) {
    return torch::full({y.size(0), num_classes}, off, torch::kFloat32).scatter_(1, y.view({-1, 1}), on);
  };
  return one_hot(labels) * lam + one_hot(labels.flip(0)) * (1.0 - lam);
}

MixupResult mixup_batch(torch::Tensor& images, const torch::Tensor& labels, const MixupConfig& cfg,
                        Rng& rng) {
  validate(cfg);
  if (!images.defined() || images.dim() != 4 || !images.is_floating_point())
    throw std::invalid_argument(
        cat("mixup_batch: images must be a float [B, C, H, W] tensor, got ", describe(images)));
  const int64_t batch = images.size(0);
  if (batch % 2 != 0)
    throw std::invalid_argument(cat("mixup_batch: batch size must be even (timm), got ", batch));
  // Checked before anything is mixed: the batch is modified in place.
  check_labels(labels, cfg.num_classes, "mixup_batch");
  if (labels.size(0) != batch)
    throw std::invalid_argument(cat("mixup_batch: ", batch, " images but ", labels.size(0), " labels"));
  MixupResult r;
  if (rng_uniform01(rng) < cfg.prob) {
    if (cfg.mixup_alpha > 0 && cfg.cutmix_alpha > 0) {
      r.cutmix = rng_uniform01(rng) < cfg.switch_prob;
      r.lam = r.cutmix ? rng_beta(rng, cfg.cutmix_alpha, cfg.cutmix_alpha)
                       : rng_beta(rng, cfg.mixup_alpha, cfg.mixup_alpha);
    } else if (cfg.mixup_alpha > 0) {
      r.lam = rng_beta(rng, cfg.mixup_alpha, cfg.mixup_alpha);
    } else {
      r.cutmix = true;
      r.lam = rng_beta(rng, cfg.cutmix_alpha, cfg.cutmix_alpha);
    }
  }
  if (r.lam != 1.0) {
    torch::NoGradGuard no_grad;
    if (r.cutmix) {
      r.box = cutmix_box(images.size(2), images.size(3), r.lam, cfg.correct_lam, rng);
      const auto& b = r.box;
      // flip() copies, so the pasted patch never aliases the region it overwrites.
      auto patch = images.flip(0).slice(2, b.y0, b.y1).slice(3, b.x0, b.x1);
      images.slice(2, b.y0, b.y1).slice(3, b.x0, b.x1).copy_(patch);
    } else {
      auto flipped = images.flip(0).mul_(1.0 - r.lam);
      images.mul_(r.lam).add_(flipped);
    }
  }
  r.targets = mixup_target(labels, cfg.num_classes, r.lam, cfg.label_smoothing);
  return r;
}

torch::Tensor soft_target_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  if (!logits.defined() || !targets.defined() || logits.sizes() != targets.sizes() || logits.dim() < 1)
    throw std::invalid_argument(cat("soft_target_cross_entropy: logits ", describe(logits), " and targets ",
                                    describe(targets), " must have the same shape"));
  return torch::sum(-targets * torch::log_softmax(logits, -1), -1).mean();
}

}  // namespace skd::data
