// Classification accuracy of a model on a dataset (top-1, top-5, cross-entropy), with progress.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "skd/data/dataset.h"
#include "skd/models/model.h"

namespace skd::eval {

struct EvalOptions {
  int64_t batch_size = 256;
  int64_t limit = 0;        // evaluate only the first N images (0 = all)
  bool keep_logits = false; // return every image's logits in dataset order
  const models::Widths* widths = nullptr;
};

struct EvalResult {
  double top1 = 0, top5 = 0, loss = 0;  // percent, percent, mean cross-entropy
  int64_t images = 0;
  double seconds = 0, images_per_s = 0;
  torch::Tensor logits;  // [images, classes] when keep_logits
};

// Called after each batch with (images done, images total).
using ProgressFn = std::function<void(int64_t, int64_t)>;

EvalResult evaluate(models::ElasticModelImpl& model, const data::Dataset& dataset, const EvalOptions& options,
                    const ProgressFn& progress = nullptr);

}  // namespace skd::eval
