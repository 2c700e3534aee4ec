// A new classification head for another number of classes (DeiT/timm fine-tuning): a pretrained
// model, a super-network or an extracted sub-network keeps its backbone (every other parameter,
// its widths and attention scales) and gets a freshly initialised head.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "skd/models/model.h"

namespace skd::models {

// Replaces `model` by a copy whose config has `num_classes` classes: every parameter except the
// head's is copied (same device, same train/eval mode); the head (ViT "head", Swin "head.fc") is
// re-initialised as timm does for a new classifier: weight ~ trunc_normal(std 0.02, cut at +-2),
// bias 0, drawn from a generator seeded with `seed` (the same seed gives the same head). MACs and
// params of the manifest follow the new class count. Throws std::invalid_argument naming
// num_classes when it is outside [1, kMaxNumClasses].
void replace_head(ElasticModel& model, int64_t num_classes, uint64_t seed);

// Head parameter names of a family: {"head.weight", "head.bias"} or {"head.fc.weight", "head.fc.bias"}.
std::pair<std::string, std::string> head_keys(const ModelConfig& config);

}  // namespace skd::models
