// Shared by the train tests: a tiny in-memory dataset, model and recipe that train in well
// under a second.
#pragma once

#include <torch/torch.h>

#include <string>

#include "skd/data/augment.h"
#include "skd/data/dataset.h"
#include "skd/models/model.h"
#include "skd/train/config.h"

namespace skd::test {

// 4 classes of 1x8x8 images with a class-dependent bright quadrant plus noise; the training
// "augmentation" adds per-example noise drawn from the Rng, so the per-example seeds matter.
class TinyData : public data::Dataset {
 public:
  explicit TinyData(int64_t n, bool poison = false) : n_(n), poison_(poison) {
    torch::manual_seed(11);
    images_ = torch::randn({n, 1, 8, 8}) * 0.3;
    labels_ = torch::arange(n) % 4;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = labels_[i].item<int64_t>();
      images_[i].narrow(1, (c / 2) * 4, 4).narrow(2, (c % 2) * 4, 4).add_(1.0);
    }
  }
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return 4; }
  data::Sample get(int64_t i, data::Rng* rng) const override {
    auto x = images_[i].clone();
    if (rng) x.add_(static_cast<float>(data::rng_normal(*rng, 0.0, 0.1)));
    if (poison_) x.fill_(NAN);
    return {x, labels_[i].item<int64_t>()};
  }
  std::string describe() const override { return "tiny"; }

 private:
  int64_t n_;
  bool poison_;
  torch::Tensor images_, labels_;
};

inline models::ElasticModel tiny_model() {
  torch::manual_seed(1);
  return models::create_model(models::config_from_json(
      {{"family", "vit"}, {"name", "tiny"}, {"img_size", 8}, {"patch_size", 4}, {"in_chans", 1},
       {"num_classes", 4}, {"embed_dim", 16}, {"depth", 2}, {"num_heads", 2}, {"mlp_ratio", 2}}));
}

inline train::TrainConfig tiny_config(const std::string& run_dir) {
  train::TrainConfig c;
  c.epochs = 3;
  c.batch_size = 8;
  c.lr = 2e-3;
  c.unscale_lr = true;
  c.warmup_epochs = 1;
  c.drop_path = 0.1;
  c.clip_grad = 1.0;
  c.model_ema = true;
  c.model_ema_decay = 0.9;
  c.workers = 0;
  c.log_every = 0;
  c.run_dir = run_dir;
  c.seed = 7;
  return c;
}

}  // namespace skd::test
