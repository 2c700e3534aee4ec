#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "skd/core/error.h"
#include "skd/data/augment.h"
#include "skd/data/dataset.h"
#include "skd/io/idx.h"

namespace skd::data {
namespace {

std::string find_idx(const std::string& root, const std::string& stem) {
  for (const char* ext : {".gz", ""}) {
    const auto p = std::filesystem::path(root) / (stem + ext);
    if (std::filesystem::exists(p)) return p.string();
  }
  throw ParameterError([=](const KeyNamer& name) {
    return cat("Fashion-MNIST: '", stem, "[.gz]' not found in '", root,
               "' (install Debian's dataset-fashion-mnist or pass ", name("data"), " <folder>)");
  });
}

class FashionMnist : public Dataset {
 public:
  explicit FashionMnist(const FashionMnistOptions& o) : opt_(o) {
    if (o.split != "train" && o.split != "test")
      throw ParameterError("split", cat(" '", o.split, "': Fashion-MNIST has 'train' and 'test'"));
    if (o.img_size <= 0 || o.channels <= 0)
      throw std::invalid_argument("Fashion-MNIST: image size and channels must be positive");
    const Preprocess own = fashion_mnist_preprocess(o.channels, o.img_size);
    if (opt_.mean.empty()) opt_.mean = own.mean;
    if (opt_.std.empty()) opt_.std = own.std;
    if (opt_.mean.size() != static_cast<size_t>(o.channels) ||
        opt_.std.size() != static_cast<size_t>(o.channels))
      throw std::invalid_argument(
          cat("Fashion-MNIST: ", o.channels, " channels need as many means and stds"));
    const std::string prefix = o.split == "train" ? "train" : "t10k";
    const std::string ipath = find_idx(o.root, prefix + "-images-idx3-ubyte");
    const std::string lpath = find_idx(o.root, prefix + "-labels-idx1-ubyte");
    auto images = io::read_idx(ipath);
    auto labels = io::read_idx(lpath);
    if (images.shape.size() != 3 || images.shape[1] != 28 || images.shape[2] != 28)
      throw FormatError(cat(ipath, ": expected images [N, 28, 28]"));
    if (labels.shape.size() != 1 || labels.shape[0] != images.shape[0])
      throw FormatError(cat(lpath, ": ", labels.shape.empty() ? 0 : labels.shape[0], " labels for ",
                            images.shape[0], " images in ", ipath));
    for (uint8_t l : labels.data)
      if (l >= 10) throw FormatError(cat(lpath, ": label ", int{l}, " outside 0..9"));
    images_ = torch::from_blob(images.data.data(), {images.shape[0], 28, 28}, torch::kUInt8).clone();
    labels_ = torch::from_blob(labels.data.data(), {labels.shape[0]}, torch::kUInt8).to(torch::kLong);
    source_ = ipath;
  }

  int64_t size() const override { return images_.size(0); }
  int64_t num_classes() const override { return 10; }
  std::string describe() const override {
    return cat("Fashion-MNIST ", opt_.split, " (", size(), " images, ", source_, ")");
  }

  Batch get_batch(const std::vector<int64_t>& indices) const override {
    auto idx = torch::tensor(indices, torch::kLong);
    return {prepare(images_.index_select(0, idx)), labels_.index_select(0, idx)};
  }

  // With an Rng: the training augmentation (random crop of the zero-padded image, horizontal flip).
  Sample get(int64_t index, Rng* rng) const override {
    if (index < 0 || index >= size()) throw std::out_of_range(cat("Fashion-MNIST index ", index));
    auto img = images_[index];
    if (rng) {
      if (opt_.train_pad > 0) {
        const int64_t p = opt_.train_pad;
        auto padded = torch::zeros({28 + 2 * p, 28 + 2 * p}, torch::kUInt8);
        padded.narrow(0, p, 28).narrow(1, p, 28).copy_(img);
        const int64_t dy = rng_int(*rng, 0, 2 * p), dx = rng_int(*rng, 0, 2 * p);
        img = padded.narrow(0, dy, 28).narrow(1, dx, 28);
      }
      if (opt_.train_flip && rng_uniform01(*rng) < 0.5) img = img.flip({1});
    }
    return {prepare(img.unsqueeze(0))[0], labels_[index].item<int64_t>()};
  }
  std::optional<Preprocess> preprocess() const override {
    Preprocess p = fashion_mnist_preprocess(opt_.channels, opt_.img_size);
    p.mean = opt_.mean;
    p.std = opt_.std;
    return p;
  }
  std::vector<std::string> class_names() const override {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  }

 private:
  // uint8 [B, 28, 28] -> normalised float [B, channels, img_size, img_size].
  torch::Tensor prepare(const torch::Tensor& u8) const {
    auto x = u8.to(torch::kFloat32).div_(255.0).unsqueeze(1);
    if (opt_.img_size != 28)
      x = torch::nn::functional::interpolate(
          x, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{opt_.img_size, opt_.img_size})
                 .mode(torch::kBilinear)
                 .align_corners(false));
    const bool uniform =
        std::all_of(opt_.mean.begin(), opt_.mean.end(), [&](double m) { return m == opt_.mean[0]; }) &&
        std::all_of(opt_.std.begin(), opt_.std.end(), [&](double s) { return s == opt_.std[0]; });
    if (uniform) {  // one scalar step for every channel (the arithmetic of Fashion-MNIST's own values)
      x = x.sub_(opt_.mean[0]).div_(opt_.std[0]);
      if (opt_.channels != 1) x = x.expand({-1, opt_.channels, -1, -1}).contiguous();
      return x;
    }
    x = x.expand({-1, opt_.channels, -1, -1}).contiguous();
    return x.sub_(channel_tensor(opt_.mean)).div_(channel_tensor(opt_.std));
  }

  FashionMnistOptions opt_;
  torch::Tensor images_, labels_;
  std::string source_;
};

}  // namespace

std::unique_ptr<Dataset> open_fashion_mnist(const FashionMnistOptions& options) {
  return std::make_unique<FashionMnist>(options);
}

}  // namespace skd::data
