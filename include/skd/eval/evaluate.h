// Classification accuracy of a model on a dataset (top-1, top-5, cross-entropy) through the
// threaded loader, on CPU or CUDA (optionally under autocast), and forward latency.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "skd/core/device.h"
#include "skd/data/dataset.h"
#include "skd/data/loader.h"
#include "skd/extract/latency_table.h"
#include "skd/models/model.h"

namespace skd::eval {

struct EvalOptions {
  int64_t batch_size = 256;
  int64_t limit = 0;         // evaluate only the first N images (0 = all)
  int workers = 2;           // decoding threads (0 = in the calling thread)
  data::BadImagePolicy on_bad_image = data::BadImagePolicy::SKIP;
  bool keep_logits = false;  // return every evaluated image's logits, in dataset order
  bool keep_inputs =
      false;  // with keep_logits: also the images as the data gave them (after the eval transform)
  const models::Widths* widths = nullptr;
  torch::Device device = torch::kCPU;
  Amp amp = Amp::NONE;
};

struct EvalResult {
  double top1 = 0, top5 = 0, loss = 0;  // percent, percent, mean cross-entropy
  int64_t images = 0;
  int64_t bad_images = 0;
  std::vector<std::string> bad_paths;  // first 100
  double seconds = 0, images_per_s = 0;
  torch::Tensor logits;          // [images, classes] (float32, CPU) when keep_logits
  torch::Tensor inputs;          // [images, C, H, W] (float32, CPU) when keep_inputs
  std::vector<int64_t> indices;  // dataset index of each logits row
};

// Called after each batch with (images done, images total).
using ProgressFn = std::function<void(int64_t, int64_t)>;

// The model must already be on options.device.
EvalResult evaluate(models::ElasticModelImpl& model, const data::Dataset& dataset, const EvalOptions& options,
                    const ProgressFn& progress = nullptr);

// A forward that maps a batch of images [B, C, H, W] (on options.device) to logits [B, classes]: a model
// in another runtime (skd/deploy/runtime.h). options.widths and options.amp do not apply.
using BatchForward = std::function<torch::Tensor(const torch::Tensor&)>;
// The same evaluation through `forward`, for a model of `num_classes` outputs (logits of another number
// of classes are a std::runtime_error).
EvalResult evaluate(const BatchForward& forward, int64_t num_classes, const data::Dataset& dataset,
                    const EvalOptions& options, const ProgressFn& progress = nullptr);

// One model's forward latency at one batch size: the row type of the latency-table file format.
using extract::LatencyResult;

// Forward latency on random inputs: untimed runs until `warmup` runs and extract::kWarmupSeconds are done
// (kSettleSeconds more before the first measurement of the process), then `repeats` timed runs, each
// synchronised on CUDA; median and 10th/90th percentiles.
LatencyResult measure_latency(models::ElasticModelImpl& model, int64_t batch_size, const torch::Device& device,
                              Amp amp, int warmup = 5, int repeats = 20, const models::Widths* widths = nullptr);

}  // namespace skd::eval
