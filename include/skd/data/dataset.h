// Labelled image datasets as the models consume them: random access to batches of model-ready
// float tensors [B, C, H, W] and int64 labels [B].
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace skd::data {

struct Batch {
  torch::Tensor images;  // float32 [B, C, H, W], normalised
  torch::Tensor labels;  // int64 [B]
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual Batch get_batch(const std::vector<int64_t>& indices) const = 0;
  virtual std::string describe() const = 0;
};

// Where Debian's dataset-fashion-mnist puts the IDX files.
inline constexpr const char* kFashionMnistDebianDir = "/usr/share/datasets/fashion-mnist";

struct FashionMnistOptions {
  std::string root = kFashionMnistDebianDir;  // folder with the four *-ubyte[.gz] files
  std::string split = "test";                  // "train" (60k) or "test" (10k)
  int64_t img_size = 28;                       // resized (bilinear) when not 28
  int64_t channels = 3;                        // gray replicated to this many channels
};

// Fashion-MNIST from IDX files, normalised with its mean/std (0.2860, 0.3530).
std::unique_ptr<Dataset> open_fashion_mnist(const FashionMnistOptions& options);

// `spec` is "fashion-mnist" (Debian location) or a folder holding the Fashion-MNIST IDX files.
// Throws std::invalid_argument naming the flag value when it cannot be opened.
std::unique_ptr<Dataset> open_dataset(const std::string& spec, const std::string& split, int64_t img_size,
                                      int64_t channels);

}  // namespace skd::data
