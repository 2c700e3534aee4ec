// Labelled image datasets as the models consume them: per-example access to model-ready float
// tensors [C, H, W] (eval transform, or training augmentation when given an Rng), plus a batch
// fast path for in-memory datasets. Opening by spec: "fashion-mnist", an IDX folder, or an
// ImageNet-style folder (root/<class>/<image>).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "skd/data/image.h"
#include "skd/data/preprocess.h"

namespace skd::data {

struct Batch {
  torch::Tensor images;  // float32 [B, C, H, W], normalised
  torch::Tensor labels;  // int64 [B]
};

struct Sample {
  torch::Tensor image;  // float32 [C, H, W]
  int64_t label = -1;
};

// One example could not be read (corrupt or unreadable image); the loader may skip and count it.
class BadSampleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t num_classes() const = 0;
  // Example `index`; with `rng` the training augmentation is applied, without it the eval
  // transform. Throws BadSampleError for an unreadable example.
  virtual Sample get(int64_t index, Rng* rng) const = 0;
  // Eval-transformed batch (stacks get() unless a dataset has a faster way).
  virtual Batch get_batch(const std::vector<int64_t>& indices) const;
  virtual std::string describe() const = 0;
  // Where example `index` comes from (file path), "" when not from a file.
  virtual std::string path(int64_t index) const { return ""; }
  // Class names in label order (may be empty).
  virtual std::vector<std::string> class_names() const { return {}; }
  // How the examples are prepared (the eval transform's values; a training run records them in its
  // artifacts); nullopt for a dataset of ready tensors.
  virtual std::optional<Preprocess> preprocess() const { return std::nullopt; }
};

// Where Debian's dataset-fashion-mnist puts the IDX files.
inline constexpr const char* kFashionMnistDebianDir = "/usr/share/datasets/fashion-mnist";

struct FashionMnistOptions {
  std::string root = kFashionMnistDebianDir;  // folder with the four *-ubyte[.gz] files
  std::string split = "test";                  // "train" (60k) or "test" (10k)
  int64_t img_size = 28;                       // resized (bilinear) when not 28
  int64_t channels = 3;                        // gray replicated to this many channels
  // Training augmentation (get() with an Rng): random crop of the image zero-padded by train_pad
  // pixels on each side (0 = none), then a horizontal flip with probability 0.5.
  int64_t train_pad = 2;
  bool train_flip = true;
  // Normalization per channel (empty: Fashion-MNIST's own, fashion_mnist_preprocess).
  std::vector<double> mean, std;
};

// Fashion-MNIST from IDX files, normalised with its mean/std (0.2860, 0.3530) or the options'.
std::unique_ptr<Dataset> open_fashion_mnist(const FashionMnistOptions& options);

struct DataSpec {
  std::string spec = "fashion-mnist";  // "fashion-mnist", an IDX folder, or an image folder
  std::string split = "test";          // "train" | "test"/"val"
  int64_t img_size = 224;              // model input size
  int64_t channels = 3;                // model input channels
  // The eval transform's values and the normalization (input_size must be channels x img_size x
  // img_size); nullopt: the data's defaults (data_preprocess). Fashion-MNIST applies mean and std only:
  // its 28 x 28 images are resized bilinearly to img_size, never cropped.
  std::optional<Preprocess> preprocess;
  std::string class_index;             // image folders: optional class-index file
  bool train_augment = false;          // image folders: timm/DeiT training augmentation with an Rng
};

// Opens `spec.spec`: "fashion-mnist" (Debian location) or a folder. A folder holding the
// Fashion-MNIST IDX files is read as such; otherwise it is an image folder, using
// <folder>/<split> when that exists ("test" also tries "val"). Throws std::invalid_argument
// naming the value when it cannot be opened.
std::unique_ptr<Dataset> open_dataset(const DataSpec& spec);
// Whether `spec.spec` names Fashion-MNIST ("fashion-mnist", "fmnist" or a folder with its IDX files).
bool is_fashion_mnist(const DataSpec& spec);
// The data's own preprocessing for a model of spec.channels x spec.img_size: Fashion-MNIST's, or for
// image folders the official DeiT/Swin evaluation (imagenet_preprocess); with where it comes from.
// skd::ParameterError (key "data") for an image folder and a channel count other than 1 or 3.
ResolvedPreprocess data_preprocess(const DataSpec& spec);
// The preprocessing a consumer reads `spec` with: `entry` (the model's, from `path`) or the data's
// defaults, `overrides` on top (resolve_preprocess), logged with its source and set as spec.preprocess.
ResolvedPreprocess apply_preprocess(DataSpec& spec, const std::optional<Preprocess>& entry, const std::string& path,
                                    const PreprocessOverrides& overrides);
std::unique_ptr<Dataset> open_dataset(const std::string& spec, const std::string& split, int64_t img_size,
                                      int64_t channels);

}  // namespace skd::data
