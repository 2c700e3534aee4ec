// Fuzz target: the bytes of an image file through skd::data::decode_image (libjpeg for JPEG,
// OpenCV for the rest) and the uint8 part of the eval transform (shorter-side resize + crop).
#include <cstdint>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/data/eval_transform.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skd::fuzz::run_expecting<skd::FormatError>("image", [&] {
    // A lower pixel limit than the real one: the limit's path is the same, and a few header bytes
    // claiming 178 M pixels would otherwise spend the fuzzer's time on memset and resize.
    const skd::data::Image img = skd::data::decode_image(data, size, "fuzz.img", int64_t{1} << 22);
    if (img.width <= 0 || img.height <= 0 || img.channels != 3 ||
        img.pixels.size() != static_cast<size_t>(img.width) * img.height * 3)
      skd::fuzz::finding("image", "decoded image with inconsistent size");
    skd::data::EvalTransform t;
    t.size = 16;  // small: the decode is under test, not the resize speed
    const auto crop = skd::data::eval_crop(img, t);
    if (crop.width != 16 || crop.height != 16) skd::fuzz::finding("image", "eval crop is not 16x16");
  });
  return 0;
}
