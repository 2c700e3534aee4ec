#include <filesystem>

#include "skd/core/error.h"
#include "skd/data/dataset.h"
#include "skd/data/image_folder.h"

namespace skd::data {

namespace fs = std::filesystem;

Batch Dataset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (int64_t i : indices) {
    auto s = get(i, nullptr);
    images.push_back(s.image);
    labels.push_back(s.label);
  }
  return {torch::stack(images), torch::tensor(labels, torch::kLong)};
}

namespace {

bool holds_fashion_mnist(const fs::path& dir) {
  for (const char* f : {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte",
                        "train-images-idx3-ubyte.gz"})
    if (fs::exists(dir / f)) return true;
  return false;
}

}  // namespace

bool is_fashion_mnist(const DataSpec& s) {
  std::error_code ec;
  return s.spec == "fashion-mnist" || s.spec == "fmnist" ||
         (fs::is_directory(s.spec, ec) && holds_fashion_mnist(s.spec));
}

ResolvedPreprocess data_preprocess(const DataSpec& s) {
  ResolvedPreprocess r;
  if (is_fashion_mnist(s)) {
    r.values = fashion_mnist_preprocess(s.channels, s.img_size);
    r.source = "the defaults of Fashion-MNIST (no preprocess entry)";
    return r;
  }
  const auto p = imagenet_preprocess(s.channels, s.img_size);
  if (!p)
    throw ParameterError("data", cat(" '", s.spec, "': image folders give 3-channel (RGB) or 1-channel ",
                                     "(grayscale) images, the model expects ", s.channels));
  r.values = *p;
  r.source = "the defaults of image folders, the official DeiT/Swin evaluation (no preprocess entry)";
  return r;
}

ResolvedPreprocess apply_preprocess(DataSpec& spec, const std::optional<Preprocess>& entry, const std::string& path,
                                    const PreprocessOverrides& overrides) {
  auto pp = resolve_preprocess(entry, path, data_preprocess(spec), overrides);
  log_preprocess("preprocess", pp);
  spec.preprocess = pp.values;
  return pp;
}

std::unique_ptr<Dataset> open_dataset(const DataSpec& s) {
  if (s.preprocess) check_preprocess_fits(*s.preprocess, s.channels, s.img_size, cat("data '", s.spec, "'"));
  if (is_fashion_mnist(s)) {
    FashionMnistOptions o;
    if (s.spec != "fashion-mnist" && s.spec != "fmnist") o.root = s.spec;
    o.split = s.split == "val" ? "test" : s.split;
    o.img_size = s.img_size;
    o.channels = s.channels;
    if (s.preprocess) {
      o.mean = s.preprocess->mean;
      o.std = s.preprocess->std;
    }
    return open_fashion_mnist(o);
  }
  if (!fs::is_directory(s.spec))
    throw ParameterError("data", cat(" '", s.spec, "': not 'fashion-mnist' and not a folder"));
  ImageFolderOptions o;
  o.root = s.spec;
  // A dataset root with train/ and val/ (ImageNet layout) is entered at the requested split.
  std::vector<std::string> candidates = {s.split};
  if (s.split == "test") candidates.push_back("val");
  if (s.split == "val") candidates.push_back("test");
  for (const auto& c : candidates) {
    if (fs::is_directory(fs::path(s.spec) / c)) {
      o.root = (fs::path(s.spec) / c).string();
      break;
    }
  }
  o.class_index = s.class_index;
  o.img_size = s.img_size;
  o.preprocess = s.preprocess;
  o.train_augment = s.train_augment;
  o.channels = s.channels;
  if (s.channels != 3 && s.channels != 1)
    throw ParameterError("data", cat(" '", s.spec, "': image folders give 3-channel (RGB) or 1-channel ",
                                    "(grayscale) images, the model expects ", s.channels));
  return open_image_folder(o);
}

std::unique_ptr<Dataset> open_dataset(const std::string& spec, const std::string& split, int64_t img_size,
                                      int64_t channels) {
  DataSpec s;
  s.spec = spec;
  s.split = split;
  s.img_size = img_size;
  s.channels = channels;
  return open_dataset(s);
}

}  // namespace skd::data
