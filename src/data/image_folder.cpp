#include "skd/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/core/json_file.h"
#include "skd/data/augment.h"
#include "skd/data/eval_transform.h"
#include "skd/data/mixup.h"

namespace skd::data {

namespace fs = std::filesystem;

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> kExt = {".jpg", ".jpeg", ".png", ".ppm", ".bmp",
                                             ".pgm", ".tif",  ".tiff", ".webp"};
  return kExt.count(ext) > 0;
}

namespace {

// Class name -> index from a class-index file.
std::map<std::string, int64_t> read_class_index(const std::string& path) {
  std::map<std::string, int64_t> out;
  std::error_code ec;  // a FIFO or device would block the read: refused before opening
  if (fs::exists(path, ec)) check_input_file(path, "class_index");
  if (fs::path(path).extension() == ".json") {
    const nlohmann::json j = read_json_file_of("class_index", path, " file");
    if (!j.is_object()) throw ParameterError("class_index", cat(" '", path, "': expected a JSON object"));
    for (const auto& [key, value] : j.items()) {
      if (value.is_number_integer()) {
        out[key] = value.get<int64_t>();  // {"n01440764": 0}
      } else if (value.is_array() && !value.empty() && value[0].is_string()) {
        try {
          out[value[0].get<std::string>()] = std::stoll(key);  // {"0": ["n01440764", "tench"]}
        } catch (const std::exception&) {
          throw ParameterError("class_index", cat(" '", path, "': key '", key, "' is not an index"));
        }
      } else {
        throw ParameterError("class_index",
                             cat(" '", path, "': entry '", key, "' is neither an index nor [name, label]"));
      }
    }
  } else {
    std::ifstream in(path);
    if (!in) throw ParameterError("class_index", cat(": cannot open '", path, "'"));
    std::string line;
    int64_t i = 0;
    while (std::getline(in, line)) {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
      if (line.empty()) continue;
      out[line.substr(0, line.find_first_of(" \t"))] = i++;
    }
  }
  if (out.empty()) throw ParameterError("class_index", cat(" '", path, "' names no classes"));
  return out;
}

class ImageFolder : public Dataset {
 public:
  ImageFolder(const ImageFolderOptions& o, ImageFolderStats* stats) : opt_(o) {
    const fs::path root(o.root);
    if (!fs::is_directory(root)) throw std::invalid_argument(cat("image folder '", o.root, "' does not exist"));
    std::vector<std::string> classes;
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory()) classes.push_back(e.path().filename().string());
    std::sort(classes.begin(), classes.end());
    if (classes.empty())
      throw std::invalid_argument(cat("image folder '", o.root, "' has no class folders (expected root/<class>/<image>)"));
    std::map<std::string, int64_t> index;
    if (!o.class_index.empty()) {
      index = read_class_index(o.class_index);
      for (const auto& c : classes)
        if (!index.count(c))
          throw ParameterError([=, index_file = o.class_index, root = o.root](const KeyNamer& name) {
            return cat("class folder '", c, "' of '", root, "' is not in ", name("class_index"), " '",
                       index_file, "'");
          });
      num_classes_ = 0;
      for (const auto& kv : index) num_classes_ = std::max(num_classes_, kv.second + 1);
      names_.assign(static_cast<size_t>(num_classes_), "");
      for (const auto& kv : index) names_[static_cast<size_t>(kv.second)] = kv.first;
    } else {
      for (size_t i = 0; i < classes.size(); ++i) index[classes[i]] = static_cast<int64_t>(i);
      num_classes_ = static_cast<int64_t>(classes.size());
      names_ = classes;
    }
    ImageFolderStats st;
    for (const auto& c : classes) {
      std::vector<std::string> files;
      for (const auto& e : fs::recursive_directory_iterator(root / c, fs::directory_options::follow_directory_symlink)) {
        if (!e.is_regular_file()) continue;
        if (has_image_extension(e.path().string())) {
          files.push_back(e.path().string());
        } else {
          ++st.skipped_files;
        }
      }
      if (files.empty())
        throw std::invalid_argument(cat("class folder '", (root / c).string(), "' holds no image files (",
                                        "extensions .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp)"));
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        paths_.push_back(std::move(f));
        labels_.push_back(index.at(c));
      }
    }
    st.images = static_cast<int64_t>(paths_.size());
    if (stats) *stats = st;
    train_.crop.size = static_cast<int>(o.img_size);
    if (o.channels != 1 && o.channels != 3)
      throw std::invalid_argument(cat("image folder '", o.root, "': the model expects ", o.channels,
                                      "-channel input; image folders give 3 (RGB) or 1 (grayscale)"));
    preprocess_ = o.preprocess ? *o.preprocess : *imagenet_preprocess(o.channels, o.img_size);
    check_preprocess_fits(preprocess_, o.channels, o.img_size, cat("image folder '", o.root, "'"));
    eval_ = eval_transform_of(preprocess_);
    train_.mean = eval_.mean;
    train_.std = eval_.std;
  }

  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  int64_t num_classes() const override { return num_classes_; }
  std::string path(int64_t i) const override { return paths_.at(static_cast<size_t>(i)); }
  std::vector<std::string> class_names() const override { return names_; }
  std::optional<Preprocess> preprocess() const override { return preprocess_; }
  std::string describe() const override {
    return cat("image folder ", opt_.root, " (", size(), " images, ", num_classes_, " classes",
               opt_.channels == 1 ? ", as grayscale" : "", ")");
  }

  Sample get(int64_t i, Rng* rng) const override {
    const auto& p = paths_.at(static_cast<size_t>(i));
    Image img;
    try {
      img = decode_image_file(p);
      check_image_shape(img, p);  // bounded transform work (a 100000x1 PNG), under the bad-image policy
    } catch (const std::exception& e) {
      throw BadSampleError(e.what());
    }
    Sample s;
    s.label = labels_[static_cast<size_t>(i)];
    // One channel: L as PIL's convert('L') computes it, before any transform (as a torchvision
    // loader that opens images in 'L' mode). The transforms replicate it to 3 equal channels with
    // equal normalisation; the first is the model's input.
    if (opt_.channels == 1) img = to_gray(img);
    s.image = (rng && opt_.train_augment) ? train_transform(img, train_, *rng) : eval_transform(img, eval_);
    if (opt_.channels == 1) s.image = s.image.narrow(0, 0, 1).contiguous();
    return s;
  }

 private:
  ImageFolderOptions opt_;
  std::vector<std::string> paths_;
  std::vector<int64_t> labels_;
  std::vector<std::string> names_;
  int64_t num_classes_ = 0;
  Preprocess preprocess_;
  EvalTransform eval_;
  TrainTransform train_;
};

}  // namespace

std::unique_ptr<Dataset> open_image_folder(const ImageFolderOptions& options, ImageFolderStats* stats) {
  return std::make_unique<ImageFolder>(options, stats);
}

}  // namespace skd::data
