// Image decoding (OpenCV, to RGB like PIL's convert('RGB')) and the timm/DeiT eval transform:
// resize the shorter side to int(size / crop_pct) with PIL bicubic, center crop, normalize.
#pragma once

#include <torch/torch.h>

#include <array>
#include <string>

#include "skd/data/image.h"
#include "skd/data/resize.h"

namespace skd::data {

inline constexpr std::array<float, 3> kImagenetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImagenetStd = {0.229f, 0.224f, 0.225f};

// Decodes JPEG/PNG/WebP/BMP/PPM/PGM/TIFF from a file or memory into RGB (gray and alpha images are
// converted as PIL's convert('RGB') does). Throws skd::FormatError (a std::runtime_error) naming
// `source` when it cannot decode, for another format, and for an image of more than
// kMaxImagePixels pixels: the dimensions are read from the header and refused before any pixel
// buffer is allocated (a few corrupt header bytes could otherwise claim gigabytes). `max_pixels`
// lowers that limit (1..kMaxImagePixels; std::invalid_argument otherwise), as the fuzz target does.
inline constexpr int64_t kMaxImagePixels = 178956970;  // PIL's decompression-bomb error limit
Image decode_image_file(const std::string& path);
Image decode_image(const uint8_t* data, size_t size, const std::string& source,
                   int64_t max_pixels = kMaxImagePixels);

// The longest side / shortest side an image may have: the eval transform resizes the shorter side to
// about the model's input size, so a 100000x1 image would become 256 x 25.6 M pixels (20 GB); any
// image within the ratio resizes to at most kMaxAspectRatio x size^2 pixels. Real photos stay far below.
inline constexpr int kMaxAspectRatio = 64;
// Throws skd::FormatError naming `source` (the file) for an empty image or one beyond kMaxAspectRatio
// (docs/reliability.md, "Hostile input"). Image folders call it after decoding, so such a file is an
// unreadable image under --on-bad-image; resize_shorter_side calls it too.
void check_image_shape(const Image& img, const std::string& source);

// torchvision Resize(int): shorter side to `size`, the other int(size * long / short) (PIL rounding
// as torchvision 0.14 does), with PIL's `filter` (bicubic by default).
Image resize_shorter_side(const Image& img, int size, Filter filter = Filter::BICUBIC);
// torchvision CenterCrop (with its rounding of the offsets; pads with 0 if the image is smaller).
Image center_crop(const Image& img, int width, int height);

struct EvalTransform {
  int size = 224;
  double crop_pct = 0.875;  // resize to int(size / crop_pct) first
  Filter interpolation = Filter::BICUBIC;
  std::array<float, 3> mean = kImagenetMean, std = kImagenetStd;
};

// The shorter-side size eval_crop resizes to: int(size / crop_pct) exactly as Python computes it
// (e.g. 256 for 224 / 0.875). Throws std::invalid_argument for non-positive size or crop_pct.
int eval_resize_size(const EvalTransform& t);
// The uint8 crop (HWC) before normalisation.
Image eval_crop(const Image& img, const EvalTransform& t);
// ToTensor + Normalize: float32 CHW.
torch::Tensor to_normalized_tensor(const Image& img, const std::array<float, 3>& mean,
                                   const std::array<float, 3>& std);
torch::Tensor eval_transform(const Image& img, const EvalTransform& t);

}  // namespace skd::data
