// The tests' in-memory dataset: images given as a tensor, labels i % classes. Header-only, beside
// test_util.h rather than in it: test_util.cpp is also linked into the torch-free skd_io tests.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

#include "skd/data/dataset.h"

namespace skd::test {

class TensorDataset : public data::Dataset {
 public:
  // images [N, C, H, W], already normalised; image i has label i % classes.
  TensorDataset(torch::Tensor images, int64_t classes, std::string description = "tensor data")
      : images_(std::move(images)), classes_(classes), description_(std::move(description)) {}
  int64_t size() const override { return images_.size(0); }
  int64_t num_classes() const override { return classes_; }
  data::Sample get(int64_t i, data::Rng*) const override { return {images_[i].clone(), i % classes_}; }
  std::string describe() const override { return description_; }

 private:
  torch::Tensor images_;
  int64_t classes_;
  std::string description_;
};

}  // namespace skd::test
