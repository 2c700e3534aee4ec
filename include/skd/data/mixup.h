// Tensor-side training augmentations of timm/DeiT: the normalised train transform with
// RandomErasing, batch Mixup/CutMix with label-smoothed soft targets, SoftTargetCrossEntropy.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>

#include "skd/data/augment.h"

namespace skd::data {

// timm RandomErasing on a float tensor [C, H, W] or [B, C, H, W] (each sample independently),
// in place. With probability cfg.prob, erases count boxes (up to 10 placement tries each) whose
// area is U(min_area, max_area) * area / count and log aspect h/w uniform; fills per cfg.mode
// with N(0, 1) values drawn from rng. Returns the number of boxes erased.
int random_erasing(torch::Tensor& img, const RandomErasingConfig& cfg, Rng& rng);
void validate(const RandomErasingConfig& cfg);

// The whole DeiT training transform: train_crop (RandomResizedCrop, flip, RandAugment), ToTensor +
// Normalize with t.mean/t.std, random_erasing (skipped without a draw when t.erasing.prob is 0, as
// timm leaves it out). Gray images are made RGB first, as timm's loader does. float32 [3, size, size].
torch::Tensor train_transform(const Image& img, const TrainTransform& t, Rng& rng);

// timm Mixup in 'batch' mode (one lam and one mode per batch). Defaults: DeiT's flags.
struct MixupConfig {
  double mixup_alpha = 0.8;   // Beta(alpha, alpha) for mixup; 0 disables mixup
  double cutmix_alpha = 1.0;  // Beta(alpha, alpha) for cutmix; 0 disables cutmix
  double prob = 1.0;          // probability of mixing a batch at all
  double switch_prob = 0.5;   // with both enabled: probability of cutmix instead of mixup
  double label_smoothing = 0.1;
  int64_t num_classes = 1000;
  bool correct_lam = true;  // cutmix: lam = 1 - (clipped box area) / (H * W)
};
void validate(const MixupConfig& cfg);

struct CutmixBox {  // rows [y0, y1), columns [x0, x1)
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
};

struct MixupResult {
  torch::Tensor targets;  // float32 [B, num_classes], rows sum to 1
  double lam = 1.0;       // weight of the original sample (1: batch left unmixed)
  bool cutmix = false;
  CutmixBox box;  // the pasted region when cutmix
};

// timm rand_bbox: a box of sides int(H * sqrt(1 - lam)), int(W * sqrt(1 - lam)) centred at a
// uniform pixel, clipped to the image. With correct_lam, lam becomes 1 - box area / (H * W).
CutmixBox cutmix_box(int64_t height, int64_t width, double& lam, bool correct_lam, Rng& rng);

// One-hot targets with label smoothing (off = s / K, on = 1 - s + off), mixed with the flipped
// batch's: y * lam + y.flip(0) * (1 - lam).
torch::Tensor mixup_target(const torch::Tensor& labels, int64_t num_classes, double lam, double smoothing);

// Mixes `images` [B, C, H, W] (float, B even as timm requires) in place with the batch flipped
// along dim 0: mixup x * lam + flip(x) * (1 - lam), or cutmix pasting flip(x)'s box.
// labels: int64 [B] in [0, num_classes). Throws std::invalid_argument on bad shapes/labels.
MixupResult mixup_batch(torch::Tensor& images, const torch::Tensor& labels, const MixupConfig& cfg, Rng& rng);

// timm SoftTargetCrossEntropy: mean over rows of sum(-target * log_softmax(logits, -1)).
torch::Tensor soft_target_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace skd::data
