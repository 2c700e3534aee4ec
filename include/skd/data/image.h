// 8-bit images (HWC, RGB) and the eval/train image transforms with PIL/timm semantics.
// Everything here works on plain buffers; conversion to model tensors is in to_tensor().
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace skd::data {

struct Image {
  int width = 0, height = 0, channels = 3;  // channels: 3 (RGB) or 1 (gray)
  std::vector<uint8_t> pixels;              // row-major HWC, size width*height*channels

  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * channels; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * channels; }
};

// A zero-filled image.
inline Image blank_image(int width, int height, int channels) {
  Image im;
  im.width = width;
  im.height = height;
  im.channels = channels;
  im.pixels.assign(static_cast<size_t>(width) * height * channels, 0);
  return im;
}

using Rng = std::mt19937_64;

}  // namespace skd::data
