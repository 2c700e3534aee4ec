// ImageNet-style image folders: root/<class>/<image>, classes sorted like torchvision's
// ImageFolder (or named by a class-index file), JPEG/PNG/WebP/... decoded with OpenCV into RGB.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "skd/data/dataset.h"

namespace skd::data {

// torchvision's IMG_EXTENSIONS (case-insensitive): .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp
bool has_image_extension(const std::string& path);

struct ImageFolderOptions {
  std::string root;
  std::string class_index;  // optional: .txt (one class per line) or .json ({"name": idx} or
                            // {"idx": ["wnid", "label"]}, the imagenet_class_index.json layout)
  int64_t img_size = 224;
  double crop_pct = 0.875;
  bool train_augment = false;
};

struct ImageFolderStats {
  int64_t images = 0;
  int64_t skipped_files = 0;  // files without an image extension
};

// Scans the folder (recursively inside each class, files sorted). Throws std::invalid_argument
// naming the folder for a missing root, a root without class folders, an empty class folder, or a
// class-index file that does not cover the folders.
std::unique_ptr<Dataset> open_image_folder(const ImageFolderOptions& options, ImageFolderStats* stats = nullptr);

}  // namespace skd::data
