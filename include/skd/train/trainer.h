// Plain supervised training of a classifier (AdamW, warmup + cosine LR, label smoothing), with
// progress lines, per-epoch JSON-lines metrics and an atomically written artifact at the end.
// The full DeiT recipe (mixup, EMA, AMP, resume, distributed) builds on this loop.
#pragma once

#include <string>

#include "skd/data/dataset.h"
#include "skd/models/model.h"

namespace skd::train {

struct TrainOptions {
  int64_t epochs = 1;
  int64_t batch_size = 128;
  double lr = 1e-3;            // peak learning rate
  double min_lr = 1e-5;
  double weight_decay = 0.05;  // not applied to 1-D params, cls_token, pos_embed, bias tables
  double warmup_epochs = 0;
  double label_smoothing = 0.1;
  int64_t limit = 0;           // use only the first N training images (0 = all)
  uint64_t seed = 0;
  int64_t log_every = 50;      // steps between progress lines
  std::string out;             // artifact written at the end ("" = none)
  std::string metrics_jsonl;   // per-epoch metrics ("" = none)
};

struct TrainSummary {
  int64_t steps = 0;
  double last_loss = 0;
  double images_per_s = 0;
  double eval_top1 = -1;  // on the eval dataset, when one is given
};

TrainSummary train_classifier(models::ElasticModelImpl& model, const data::Dataset& train_set,
                              const data::Dataset* eval_set, const TrainOptions& options);

// Learning rate at a fractional epoch: linear warmup from 0, then cosine from lr to min_lr.
double lr_at(const TrainOptions& options, double epoch);

}  // namespace skd::train
