// resize_pil: hand-derived cases, invariants, argument errors, and Pillow 9.4 golden outputs.
#include "skd/data/resize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "skd/io/safetensors.h"
#include "test_util.h"

using namespace skd::data;

namespace {

Image make(int w, int h, int c, std::vector<uint8_t> px) {
  Image im;
  im.width = w;
  im.height = h;
  im.channels = c;
  im.pixels = std::move(px);
  return im;
}

Image pattern(int w, int h, int c) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * c);
  uint32_t s = 12345;
  for (auto& v : px) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(s >> 24);
  }
  return make(w, h, c, std::move(px));
}

const Filter kFilters[] = {Filter::NEAREST, Filter::BILINEAR, Filter::BICUBIC};

}  // namespace

TEST(ResizePil, IdentityKeepsPixels) {
  const Image src = pattern(17, 11, 3);
  for (Filter f : kFilters) {
    const Image out = resize_pil(src, 17, 11, f);
    EXPECT_EQ(out.width, 17);
    EXPECT_EQ(out.height, 11);
    EXPECT_EQ(out.channels, 3);
    EXPECT_EQ(out.pixels, src.pixels);
    const Box full{0, 0, 17, 11};
    EXPECT_EQ(resize_pil(src, 17, 11, f, &full).pixels, src.pixels);
  }
}

TEST(ResizePil, ConstantImageStaysConstant) {
  // Normalised weights sum to 1 in fixed point to within rounding that the half-LSB start absorbs,
  // including bicubic's negative lobes and clipped windows at the borders.
  for (int c : {1, 3}) {
    for (uint8_t value : {uint8_t{0}, uint8_t{1}, uint8_t{128}, uint8_t{254}, uint8_t{255}}) {
      const Image src = make(23, 19, c, std::vector<uint8_t>(23 * 19 * c, value));
      const Box box{1.25, 0.5, 20.75, 18.0};
      for (Filter f : kFilters) {
        for (auto [w, h] : {std::pair{7, 5}, {46, 38}, {23, 3}, {1, 1}, {100, 9}, {5, 60}}) {
          for (const Box* b : {static_cast<const Box*>(nullptr), &box}) {
            const Image out = resize_pil(src, w, h, f, b);
            ASSERT_EQ(out.pixels.size(), static_cast<size_t>(w) * h * c);
            for (uint8_t v : out.pixels)
              ASSERT_EQ(v, value) << "filter " << static_cast<int>(f) << " " << w << "x" << h;
          }
        }
      }
    }
  }
}

TEST(ResizePil, BilinearRowDownscaleByHand) {
  // 8 -> 4 pixels: scale 2 stretches the triangle to support 2. Output i is centred at 2i + 1 and
  // weighs input j by 1 - |j + 0.5 - (2i + 1)| / 2, renormalised where the window hits a border:
  //   i=0: inputs 0,1,2 weights 3/7,3/7,1/7 -> (0*3 + 10*3 + 20) / 7 = 7.14 -> 7
  //   i=1: inputs 1..4 weights 1/8,3/8,3/8,1/8 -> 25;  i=2: inputs 3..6 -> 45
  //   i=3: inputs 5,6,7 weights 1/7,3/7,3/7 -> (50 + 180 + 210) / 7 = 62.86 -> 63
  const Image src = make(8, 1, 1, {0, 10, 20, 30, 40, 50, 60, 70});
  EXPECT_EQ(resize_pil(src, 4, 1, Filter::BILINEAR).pixels, (std::vector<uint8_t>{7, 25, 45, 63}));
  // Same row as RGB with channels offset by 100/200: channels are independent.
  std::vector<uint8_t> rgb;
  for (uint8_t v : src.pixels) rgb.insert(rgb.end(), {v, uint8_t(v + 100), uint8_t(255 - v)});
  EXPECT_EQ(resize_pil(make(8, 1, 3, rgb), 4, 1, Filter::BILINEAR).pixels,
            (std::vector<uint8_t>{7, 107, 248, 25, 125, 230, 45, 145, 210, 63, 163, 192}));
  // Nearest samples at output pixel centres: 1, 3, 5, 7.
  EXPECT_EQ(resize_pil(src, 4, 1, Filter::NEAREST).pixels, (std::vector<uint8_t>{10, 30, 50, 70}));
  // Vertical direction is the same computation.
  EXPECT_EQ(resize_pil(make(1, 8, 1, src.pixels), 1, 4, Filter::BILINEAR).pixels,
            (std::vector<uint8_t>{7, 25, 45, 63}));
}

TEST(ResizePil, BoxSelectsTheSourceRegion) {
  const Image src = pattern(8, 6, 3);
  // An integer box of the target size is an exact crop, for every filter.
  const Box b{2, 1, 6, 4};
  for (Filter f : kFilters) {
    const Image out = resize_pil(src, 4, 3, f, &b);
    ASSERT_EQ(out.width, 4);
    ASSERT_EQ(out.height, 3);
    for (int y = 0; y < 3; ++y)
      EXPECT_EQ(0, std::memcmp(out.row(y), src.row(y + 1) + 2 * 3, 4 * 3)) << "row " << y;
  }
  // Scaling a box: nearest picks the box's pixel centres (2 + 1 = 3 and 5 horizontally).
  const Box b2{2, 1, 6, 2};
  const Image near = resize_pil(src, 2, 1, Filter::NEAREST, &b2);
  EXPECT_EQ(0, std::memcmp(near.pixels.data(), src.row(1) + 3 * 3, 3));
  EXPECT_EQ(0, std::memcmp(near.pixels.data() + 3, src.row(1) + 5 * 3, 3));
  // Filtering a box reads past its edges (unlike resizing a crop): rows 2..3 of an image whose
  // rows are 0, 10, ..., 50 squeezed to one row are centred at y = 3 with support 2, i.e. rows
  // 1..4 weighted 1:3:3:1 -> (10 + 60 + 90 + 40) / 8 = 25.
  Image rows = make(8, 6, 1, std::vector<uint8_t>(48));
  for (int y = 0; y < 6; ++y) std::memset(rows.row(y), 10 * y, 8);
  const Box band{0, 2, 8, 4};
  EXPECT_EQ(resize_pil(rows, 8, 1, Filter::BILINEAR, &band).pixels, std::vector<uint8_t>(8, 25));
  // The box's edges set the sampling grid (pixel j is centred at j + 0.5): [1, 5) halved samples
  // at 2 and 4, between pixels, weights 1:3:3:1 -> 15 and 35; [1.5, 5.5) samples at 2.5 and 4.5,
  // the centres of pixels 2 and 4, weights 1:2:1 -> 20 and 40.
  const Image ramp = make(8, 1, 1, {0, 10, 20, 30, 40, 50, 60, 70});
  const Box whole{1, 0, 5, 1}, frac{1.5, 0, 5.5, 1};
  EXPECT_EQ(resize_pil(ramp, 2, 1, Filter::BILINEAR, &whole).pixels, (std::vector<uint8_t>{15, 35}));
  EXPECT_EQ(resize_pil(ramp, 2, 1, Filter::BILINEAR, &frac).pixels, (std::vector<uint8_t>{20, 40}));
}

TEST(ResizePil, InvalidArgumentsThrow) {
  const Image src = pattern(8, 6, 3);
  EXPECT_THROW(resize_pil(src, 0, 6, Filter::BILINEAR), std::invalid_argument);
  EXPECT_THROW(resize_pil(src, 4, -1, Filter::BICUBIC), std::invalid_argument);
  EXPECT_THROW(resize_pil(src, 0, 0, Filter::NEAREST), std::invalid_argument);
  EXPECT_THROW(resize_pil(Image{}, 4, 4, Filter::BILINEAR), std::invalid_argument);
  Image bad = src;
  bad.pixels.pop_back();
  EXPECT_THROW(resize_pil(bad, 4, 4, Filter::BILINEAR), std::invalid_argument);
  Image five = src;
  five.channels = 5;
  EXPECT_THROW(resize_pil(five, 4, 4, Filter::BILINEAR), std::invalid_argument);
  for (const Box& b :
       {Box{-1, 0, 4, 4}, Box{0, 0, 9, 6}, Box{0, 0, 8, 6.5}, Box{5, 0, 4, 6}, Box{0, 0, 8, std::nan("")}}) {
    EXPECT_THROW(resize_pil(src, 4, 4, Filter::BICUBIC, &b), std::invalid_argument)
        << b.x0 << "," << b.y0 << "," << b.x1 << "," << b.y1;
  }
}

TEST(ResizePil, DownscaleAntialiasesUpscaleInterpolates) {
  // A 1-pixel checkerboard downscaled 4x must average to ~128 (a plain 2-tap bilinear would alias).
  std::vector<uint8_t> px(64 * 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) px[y * 64 + x] = ((x + y) % 2) ? 255 : 0;
  for (Filter f : {Filter::BILINEAR, Filter::BICUBIC}) {
    const Image out = resize_pil(make(64, 64, 1, px), 16, 16, f);
    for (uint8_t v : out.pixels) ASSERT_NEAR(v, 128, 2);
  }
}

// Outputs of Pillow 9.4's Image.resize written by tests/data/golden/gen_resize_golden.py: expected exact,
// with the SIMD kernels (where the CPU has them) and with the portable scalar ones.
class ResizeGolden : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { previous_ = set_resize_simd(GetParam()); }
  void TearDown() override { set_resize_simd(previous_); }
  bool previous_ = true;
};

TEST_P(ResizeGolden, MatchesPillow) {
  const std::string path = std::string(SKD_SOURCE_DIR) + "/tests/data/golden/resize_golden.safetensors";
  const auto content = skd::io::read_safetensors(path);
  const auto& t = content.tensors;
  auto image_of = [](const skd::io::TensorRecord& r) {
    EXPECT_EQ(r.dtype, skd::io::DType::U8);
    EXPECT_EQ(r.shape.size(), 3u);
    return make(static_cast<int>(r.shape[1]), static_cast<int>(r.shape[0]), static_cast<int>(r.shape[2]),
                r.data);
  };
  int cases = 0, worst = 0;
  for (const auto& [key, src_name] : content.metadata) {
    if (key.rfind("case.", 0) != 0) continue;
    ++cases;
    const Image src = image_of(t.at("src." + src_name));
    const Image want = image_of(t.at(key + ".out"));
    const auto& prm = t.at(key + ".params");
    ASSERT_EQ(prm.data.size(), 8 * sizeof(double));
    double p[8];
    std::memcpy(p, prm.data.data(), sizeof p);
    const Filter f = static_cast<Filter>(static_cast<int>(p[0]));
    const Box box{p[4], p[5], p[6], p[7]};
    const Image got =
        resize_pil(src, static_cast<int>(p[1]), static_cast<int>(p[2]), f, p[3] != 0 ? &box : nullptr);
    ASSERT_EQ(got.width, want.width) << key;
    ASSERT_EQ(got.height, want.height) << key;
    ASSERT_EQ(got.channels, want.channels) << key;
    int max_diff = 0, differing = 0;
    for (size_t i = 0; i < got.pixels.size(); ++i) {
      const int d = std::abs(int(got.pixels[i]) - int(want.pixels[i]));
      max_diff = std::max(max_diff, d);
      differing += d != 0;
    }
    worst = std::max(worst, max_diff);
    EXPECT_EQ(max_diff, 0) << key << " (" << src_name << ", filter " << p[0] << ", " << p[1] << "x" << p[2]
                           << (p[3] != 0 ? ", box" : "") << "): " << differing << " differing samples";
  }
  EXPECT_GE(cases, 60);
  std::printf("[ golden  ] %d Pillow resize cases (simd %s), max abs diff %d\n", cases,
              GetParam() ? "allowed" : "off", worst);
}

INSTANTIATE_TEST_SUITE_P(Kernels, ResizeGolden, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Simd" : "Scalar"; });

// Larger random images through both kernels: every lane/tail split of the vector code is covered.
TEST(ResizePil, SimdAndScalarKernelsAgree) {
  const Image src = pattern(203, 157, 3);
  const Image gray = pattern(97, 61, 1);
  const Box box{3.3, 7.9, 190.2, 150.0};
  for (Filter f : {Filter::BILINEAR, Filter::BICUBIC}) {
    for (auto [w, h] : {std::pair{101, 78}, {224, 224}, {37, 300}, {406, 13}, {9, 9}}) {
      for (const Image* im : {&src, &gray}) {
        for (const Box* b : {static_cast<const Box*>(nullptr), &box}) {
          if (b && im == &gray) continue;
          const bool prev = set_resize_simd(false);
          const Image scalar = resize_pil(*im, w, h, f, b);
          set_resize_simd(true);
          const Image simd = resize_pil(*im, w, h, f, b);
          set_resize_simd(prev);
          ASSERT_EQ(scalar.pixels, simd.pixels) << w << "x" << h << " channels " << im->channels;
        }
      }
    }
  }
}
