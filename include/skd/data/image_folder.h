// ImageNet-style image folders: root/<class>/<image>, classes sorted like torchvision's
// ImageFolder (or named by a class-index file), JPEG/PNG/WebP/... decoded with OpenCV into RGB.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "skd/data/dataset.h"
#include "skd/data/preprocess.h"

namespace skd::data {

// torchvision's IMG_EXTENSIONS (case-insensitive): .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp
bool has_image_extension(const std::string& path);

struct ImageFolderOptions {
  std::string root;
  std::string class_index;  // optional: .txt (one class per line) or .json ({"name": idx} or
                            // {"idx": ["wnid", "label"]}, the imagenet_class_index.json layout)
  int64_t img_size = 224;
  // The eval transform and the normalization (also of the training augmentation); nullopt:
  // imagenet_preprocess(channels, img_size), the official DeiT/Swin evaluation.
  std::optional<Preprocess> preprocess;
  bool train_augment = false;
  // Model input channels: 3 (RGB, normalised with the ImageNet mean/std) or 1 (each decoded image
  // converted as PIL's convert('L') does, then the same transforms; normalised with kGrayMean/kGrayStd).
  int64_t channels = 3;
};

// Normalisation of one-channel (L) images: ImageNet's mean and std weighted as L weights R, G, B
// (0.299, 0.587, 0.114), so a gray image normalises as its RGB replica would on average.
inline constexpr float kGrayMean = 0.299f * 0.485f + 0.587f * 0.456f + 0.114f * 0.406f;
inline constexpr float kGrayStd = 0.299f * 0.229f + 0.587f * 0.224f + 0.114f * 0.225f;

struct ImageFolderStats {
  int64_t images = 0;
  int64_t skipped_files = 0;  // files without an image extension
};

// Scans the folder (recursively inside each class, files sorted). Throws std::invalid_argument
// naming the folder for a missing root, a root without class folders, an empty class folder, or a
// class-index file that does not cover the folders.
std::unique_ptr<Dataset> open_image_folder(const ImageFolderOptions& options, ImageFolderStats* stats = nullptr);

}  // namespace skd::data
