// PIL-compatible resampling of 8-bit images (Pillow's Image.resize semantics, including its
// antialiasing when downscaling and the optional source box), so that eval crops match the
// torchvision/PIL pipelines DeiT's published accuracies were measured with.
#pragma once

#include "skd/data/image.h"

namespace skd::data {

enum class Filter { NEAREST, BILINEAR, BICUBIC };

struct Box {  // source region in pixel coordinates (floats, as PIL's box argument)
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

// Resizes `src` to width x height with Pillow's algorithm for `filter`. `box` (if non-null)
// selects the source region. Throws std::invalid_argument on empty images or sizes <= 0.
Image resize_pil(const Image& src, int width, int height, Filter filter, const Box* box = nullptr);

// Enables/disables the AVX2 kernels (used when the CPU has AVX2; results are identical either way).
// For tests and benchmarks; returns the previous setting.
bool set_resize_simd(bool enabled);

}  // namespace skd::data
