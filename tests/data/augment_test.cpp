// Image-side augmentations: Pillow goldens for every RandAugment op, RandomResizedCrop statistics,
// op semantics on hand-made images, RandAugment config parsing and determinism.
#include "skd/data/augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <set>

using namespace skd::data;

namespace {

Image make_image(int w, int h, int c, uint32_t seed) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = c;
  img.pixels.resize(static_cast<size_t>(w) * h * c);
  uint32_t s = seed;
  for (auto& p : img.pixels) {
    s = s * 1664525u + 1013904223u;
    p = static_cast<uint8_t>(s >> 24);
  }
  return img;
}

Image solid(int w, int h, std::array<uint8_t, 3> rgb) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = rgb[i % 3];
  return img;
}

const uint8_t* px(const Image& img, int x, int y) {
  return img.row(y) + static_cast<size_t>(x) * img.channels;
}

int max_abs_diff(const Image& a, const Image& b) {
  int m = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

// tests/data/golden/augment_golden.bin, layout documented in tests/data/golden/gen_augment_golden.py.
std::map<std::string, Image> load_golden() {
  const std::string path = std::string(SKD_SOURCE_DIR) + "/tests/data/golden/augment_golden.bin";
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    ADD_FAILURE() << "cannot open " << path << " (regenerate with tests/data/golden/gen_augment_golden.py)";
    return {};
  }
  auto u32 = [&]() {
    uint8_t b[4] = {0, 0, 0, 0};
    f.read(reinterpret_cast<char*>(b), 4);
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  };
  char magic[8];
  f.read(magic, 8);
  if (std::memcmp(magic, "SKDAUG1\0", 8) != 0) {
    ADD_FAILURE() << path << ": bad magic";
    return {};
  }
  std::map<std::string, Image> out;
  const uint32_t n = u32();
  for (uint32_t k = 0; k < n && f; ++k) {
    std::string name(u32(), '\0');
    f.read(name.data(), static_cast<std::streamsize>(name.size()));
    Image img;
    img.width = static_cast<int>(u32());
    img.height = static_cast<int>(u32());
    img.channels = static_cast<int>(u32());
    img.pixels.resize(static_cast<size_t>(img.width) * img.height * img.channels);
    f.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
    out[name] = std::move(img);
  }
  if (!f) ADD_FAILURE() << path << ": truncated";
  return out;
}

}  // namespace

// ---- Pillow goldens

TEST(AugmentGolden, EveryOpMatchesPillowExactly) {
  const auto golden = load_golden();
  ASSERT_FALSE(golden.empty());
  const Fill f = kRandAugmentFill;
  const auto BL = Filter::BILINEAR, BC = Filter::BICUBIC;
  using Op = std::function<Image(const Image&)>;
  // Names and arguments as in tests/data/golden/gen_augment_golden.py (OPS).
  const std::map<std::string, Op> ops = {
      {"rotate.15.bilinear", [&](const Image& im) { return rotate(im, 15, BL, f); }},
      {"rotate.-27.bicubic", [&](const Image& im) { return rotate(im, -27, BC, f); }},
      {"rotate.90.bicubic", [&](const Image& im) { return rotate(im, 90, BC, f); }},
      {"rotate.180.bilinear", [&](const Image& im) { return rotate(im, 180, BL, f); }},
      {"rotate.0.bicubic", [&](const Image& im) { return rotate(im, 0, BC, f); }},
      {"rotate.333.5.bilinear", [&](const Image& im) { return rotate(im, 333.5, BL, f); }},
      {"shear_x.0.2.bicubic", [&](const Image& im) { return shear_x(im, 0.2, BC, f); }},
      {"shear_x.-0.3.bilinear", [&](const Image& im) { return shear_x(im, -0.3, BL, f); }},
      {"shear_y.-0.25.bilinear", [&](const Image& im) { return shear_y(im, -0.25, BL, f); }},
      {"shear_y.0.27.bicubic", [&](const Image& im) { return shear_y(im, 0.27, BC, f); }},
      {"translate_x_rel.0.3.bilinear",
       [&](const Image& im) { return translate_x(im, 0.3 * im.width, BL, f); }},
      {"translate_y_rel.-0.2.bicubic",
       [&](const Image& im) { return translate_y(im, -0.2 * im.height, BC, f); }},
      {"translate_x.5.bilinear", [&](const Image& im) { return translate_x(im, 5, BL, f); }},
      {"translate_y.-3.bicubic", [&](const Image& im) { return translate_y(im, -3, BC, f); }},
      {"color.1.5", [](const Image& im) { return enhance_color(im, 1.5); }},
      {"color.0.4", [](const Image& im) { return enhance_color(im, 0.4); }},
      {"contrast.0.6", [](const Image& im) { return enhance_contrast(im, 0.6); }},
      {"contrast.1.7", [](const Image& im) { return enhance_contrast(im, 1.7); }},
      {"brightness.1.3", [](const Image& im) { return enhance_brightness(im, 1.3); }},
      {"brightness.0.5", [](const Image& im) { return enhance_brightness(im, 0.5); }},
      {"sharpness.1.7", [](const Image& im) { return enhance_sharpness(im, 1.7); }},
      {"sharpness.0.3", [](const Image& im) { return enhance_sharpness(im, 0.3); }},
      {"sharpness.1.9", [](const Image& im) { return enhance_sharpness(im, 1.9); }},
      {"equalize", [](const Image& im) { return equalize(im); }},
      {"autocontrast", [](const Image& im) { return auto_contrast(im); }},
      {"invert", [](const Image& im) { return invert(im); }},
      {"posterize.3", [](const Image& im) { return posterize(im, 3); }},
      {"posterize.1", [](const Image& im) { return posterize(im, 1); }},
      {"posterize.0", [](const Image& im) { return posterize(im, 0); }},
      {"solarize.128", [](const Image& im) { return solarize(im, 128); }},
      {"solarize.200", [](const Image& im) { return solarize(im, 200); }},
      {"solarize_add.50", [](const Image& im) { return solarize_add(im, 50); }},
      {"gray", [](const Image& im) { return to_gray(im); }},
  };
  int compared = 0, worst = 0;
  for (const auto& [name, want] : golden) {
    if (name.rfind("src.", 0) == 0) continue;
    const size_t dot = name.find('.');
    const std::string src_name = "src." + name.substr(0, dot), op = name.substr(dot + 1);
    ASSERT_TRUE(golden.count(src_name)) << name;
    const auto it = ops.find(op);
    ASSERT_NE(it, ops.end()) << "golden record " << name << " has no C++ counterpart";
    const Image got = it->second(golden.at(src_name));
    ASSERT_EQ(got.width, want.width) << name;
    ASSERT_EQ(got.height, want.height) << name;
    ASSERT_EQ(got.channels, want.channels) << name;
    const int diff = max_abs_diff(got, want);
    EXPECT_EQ(diff, 0) << name;
    worst = std::max(worst, diff);
    ++compared;
  }
  std::cout << "  compared " << compared << " Pillow outputs, max abs diff " << worst << "\n";
  EXPECT_EQ(compared, 44);
}

// ---- random draws

TEST(AugmentRng, DrawsHaveTheirDistributions) {
  Rng rng(123);
  std::vector<int> counts(5, 0);
  double sum = 0, sum2 = 0, beta_sum = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const int64_t k = rng_int(rng, -2, 2);
    ASSERT_GE(k, -2);
    ASSERT_LE(k, 2);
    ++counts[k + 2];
    const double u = rng_uniform01(rng);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    const double z = rng_normal(rng, 1.0, 2.0);
    sum += z;
    sum2 += z * z;
    const double b = rng_beta(rng, 2.0, 5.0);
    ASSERT_GE(b, 0.0);
    ASSERT_LE(b, 1.0);
    beta_sum += b;
  }
  for (int c : counts) EXPECT_NEAR(c / double(n), 0.2, 0.015);
  const double mean = sum / n;
  EXPECT_NEAR(mean, 1.0, 0.05);
  EXPECT_NEAR(std::sqrt(sum2 / n - mean * mean), 2.0, 0.05);
  EXPECT_NEAR(beta_sum / n, 2.0 / 7.0, 0.01);
  EXPECT_EQ(rng_int(rng, 7, 7), 7);
  EXPECT_THROW(rng_int(rng, 3, 2), std::invalid_argument);
  EXPECT_THROW(rng_beta(rng, 0.0, 1.0), std::invalid_argument);
}

// ---- RandomResizedCrop

TEST(RandomResizedCrop, AreaFractionMatchesTheSamplingDistribution) {
  // A square image large enough that rounding is negligible. Per try, s ~ U(0.08, 1) and
  // t = log(ratio) ~ U(-L, L); the crop fits iff s <= exp(-|t|). With p the per-try acceptance
  // and a = E[s; accepted], the expected area fraction is (1 - q) a / p + q, q = (1 - p)^10
  // being the full-image fallback.
  const double L = std::log(4.0 / 3.0), s0 = 0.08, s1 = 1.0;
  double p = 0, a = 0;
  const int steps = 20000;
  for (int i = 0; i < steps; ++i) {
    const double t = (i + 0.5) / steps * L;  // symmetric in t
    const double m = std::exp(-t);
    p += (m - s0) / (s1 - s0) / steps;
    a += (m * m - s0 * s0) / 2 / (s1 - s0) / steps;
  }
  const double q = std::pow(1 - p, 10);
  const double expected = (1 - q) * a / p + q;
  RandomResizedCrop cfg;
  Rng rng(2024);
  const int W = 1000, H = 1000, n = 2000;
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const CropBox b = random_resized_crop_params(W, H, cfg, rng);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_GT(b.width, 0);
    ASSERT_GT(b.height, 0);
    ASSERT_LE(b.top + b.height, H);
    ASSERT_LE(b.left + b.width, W);
    const double ratio = double(b.width) / b.height;
    if (b.width != W || b.height != H) {
      EXPECT_GE(ratio, 0.75 - 0.02);
      EXPECT_LE(ratio, 4.0 / 3.0 + 0.02);
    }
    sum += double(b.width) * b.height / (double(W) * H);
  }
  // The area fraction has a standard deviation below 0.3: 0.02 is over 3 standard errors.
  EXPECT_NEAR(sum / n, expected, 0.02) << "expected " << expected;
}

TEST(RandomResizedCrop, FallsBackToTheCentralCropWithClampedRatio) {
  RandomResizedCrop cfg;
  Rng rng(1);
  // 1000x10: no try can fit (h <= 10 needs area <= 133 px, the minimum is 800), so always the
  // fallback: height 10, width round(10 * 4/3) = 13, centred.
  for (int i = 0; i < 20; ++i) {
    const CropBox b = random_resized_crop_params(1000, 10, cfg, rng);
    EXPECT_EQ(b.height, 10);
    EXPECT_EQ(b.width, 13);
    EXPECT_EQ(b.top, 0);
    EXPECT_EQ(b.left, (1000 - 13) / 2);
  }
  const CropBox t = random_resized_crop_params(10, 1000, cfg, rng);  // tall: width kept
  EXPECT_EQ(t.width, 10);
  EXPECT_EQ(t.height, 13);  // round(10 / 0.75) = 13
  EXPECT_EQ(t.top, (1000 - 13) / 2);
}

TEST(RandomResizedCrop, OutputIsResizedCropAndDeterministic) {
  const Image img = make_image(120, 90, 3, 5);
  RandomResizedCrop cfg;
  cfg.size = 32;
  Rng a(77), b(77), c(78);
  const Image oa = random_resized_crop(img, cfg, a);
  const Image ob = random_resized_crop(img, cfg, b);
  EXPECT_EQ(oa.width, 32);
  EXPECT_EQ(oa.height, 32);
  EXPECT_EQ(oa.channels, 3);
  EXPECT_EQ(oa.pixels, ob.pixels);
  // The same draw, then crop + resize_pil by hand.
  Rng d(77);
  const CropBox box = random_resized_crop_params(120, 90, cfg, d);
  EXPECT_EQ(resize_pil(crop(img, box), 32, 32, Filter::BICUBIC).pixels, oa.pixels);
  bool differs = false;
  for (int i = 0; i < 5 && !differs; ++i) differs = random_resized_crop(img, cfg, c).pixels != oa.pixels;
  EXPECT_TRUE(differs);
}

TEST(RandomResizedCrop, BadInputsThrow) {
  Rng rng(0);
  RandomResizedCrop cfg;
  EXPECT_THROW(random_resized_crop(Image{}, cfg, rng), std::invalid_argument);
  cfg.scale = {0.5, 0.1};
  EXPECT_THROW(random_resized_crop_params(10, 10, cfg, rng), std::invalid_argument);
  cfg = RandomResizedCrop{};
  cfg.ratio = {0.0, 1.0};
  EXPECT_THROW(random_resized_crop_params(10, 10, cfg, rng), std::invalid_argument);
  cfg = RandomResizedCrop{};
  cfg.size = 0;
  EXPECT_THROW(random_resized_crop(make_image(8, 8, 3, 1), cfg, rng), std::invalid_argument);
  EXPECT_THROW(crop(make_image(8, 8, 3, 1), CropBox{4, 4, 5, 2}), std::invalid_argument);
}

// ---- flip

TEST(Flip, MirrorsRowsAndHappensHalfTheTime) {
  const Image img = make_image(5, 3, 3, 9);
  const Image f = flip_horizontal(img);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(px(f, x, y)[c], px(img, 4 - x, y)[c]);
  EXPECT_EQ(flip_horizontal(f).pixels, img.pixels);
  Rng rng(3);
  int flips = 0;
  for (int i = 0; i < 4000; ++i) {
    Image t = img;
    const bool did = random_flip_horizontal(t, 0.5, rng);
    flips += did;
    EXPECT_EQ(t.pixels, did ? f.pixels : img.pixels);
  }
  EXPECT_NEAR(flips / 4000.0, 0.5, 0.03);
}

// ---- op semantics on hand-made images

TEST(AugmentOps, PointOpsGiveExactValues) {
  Image img = solid(2, 1, {0, 100, 200});
  img.pixels[3] = 127;
  img.pixels[4] = 128;
  img.pixels[5] = 255;
  EXPECT_EQ(invert(img).pixels, (std::vector<uint8_t>{255, 155, 55, 128, 127, 0}));
  EXPECT_EQ(posterize(img, 3).pixels, (std::vector<uint8_t>{0, 96, 192, 96, 128, 224}));
  EXPECT_EQ(posterize(img, 0).pixels, (std::vector<uint8_t>(6, 0)));
  EXPECT_EQ(posterize(img, 8).pixels, img.pixels);
  EXPECT_EQ(solarize(img, 128).pixels, (std::vector<uint8_t>{0, 100, 55, 127, 127, 0}));
  EXPECT_EQ(solarize(img, 256).pixels, img.pixels);
  EXPECT_EQ(solarize_add(img, 50).pixels, (std::vector<uint8_t>{50, 150, 200, 177, 128, 255}));
  EXPECT_EQ(solarize_add(img, 200).pixels, (std::vector<uint8_t>{200, 255, 200, 255, 128, 255}));
  EXPECT_EQ(enhance_brightness(img, 0.5).pixels, (std::vector<uint8_t>{0, 50, 100, 63, 64, 127}));
  // Per-channel autocontrast stretches each channel's [min, max] to [0, 255]; PIL truncates
  // 255 * (255 / 55) - 200 * (255 / 55) = 254.99999... to 254 (Pillow 9.4 gives the same).
  EXPECT_EQ(auto_contrast(img).pixels, (std::vector<uint8_t>{0, 0, 0, 255, 255, 254}));
  // A constant image has one occupied level: equalize and autocontrast leave it alone.
  const Image flat = solid(4, 4, {10, 20, 30});
  EXPECT_EQ(equalize(flat).pixels, flat.pixels);
  EXPECT_EQ(auto_contrast(flat).pixels, flat.pixels);
  EXPECT_EQ(enhance_contrast(flat, 1.8).pixels.size(), flat.pixels.size());
  EXPECT_THROW(posterize(img, 9), std::invalid_argument);
}

TEST(AugmentOps, GeometricOpsMovePixelsExactly) {
  const Image img = make_image(9, 7, 3, 21);
  for (Filter flt : {Filter::BILINEAR, Filter::BICUBIC}) {
    EXPECT_EQ(rotate(img, 0, flt, kRandAugmentFill).pixels, img.pixels);
    EXPECT_EQ(rotate(img, 360, flt, kRandAugmentFill).pixels, img.pixels);
    EXPECT_EQ(shear_x(img, 0.0, flt, kRandAugmentFill).pixels, img.pixels);
    // Whole-pixel translation: sample points fall on pixel centres, so the interpolation weights
    // are 0/1 and pixels move exactly; uncovered columns get the fill colour.
    const Image tx = translate_x(img, 3, flt, kRandAugmentFill);
    const Image ty = translate_y(img, -2, flt, kRandAugmentFill);
    for (int y = 0; y < 7; ++y) {
      for (int x = 0; x < 9; ++x) {
        for (int c = 0; c < 3; ++c) {
          const int want_x = x + 3 < 9 ? px(img, x + 3, y)[c] : kRandAugmentFill[c];
          EXPECT_EQ(px(tx, x, y)[c], want_x) << x << "," << y;
          const int want_y = y - 2 >= 0 ? px(img, x, y - 2)[c] : kRandAugmentFill[c];
          EXPECT_EQ(px(ty, x, y)[c], want_y) << x << "," << y;
        }
      }
    }
    const Image r180 = rotate(img, 180, flt, kRandAugmentFill);
    const Image rm180 = rotate(img, -180, flt, kRandAugmentFill);
    EXPECT_EQ(r180.pixels, rm180.pixels);
    for (int c = 0; c < 3; ++c) EXPECT_EQ(px(r180, 0, 0)[c], px(img, 8, 6)[c]);
  }
  // On a square image 90 degrees is an exact counter-clockwise quarter turn.
  const Image sq = make_image(4, 4, 1, 8);
  const Image r90 = rotate(sq, 90, Filter::BICUBIC, kRandAugmentFill);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(px(r90, x, y)[0], px(sq, 3 - y, x)[0]);
  // A uniform image stays uniform inside under rotation; the corners get the fill.
  const Image u = solid(20, 20, {50, 60, 70});
  const Image ru = rotate(u, 45, Filter::BILINEAR, kRandAugmentFill);
  EXPECT_EQ(px(ru, 10, 10)[0], 50);
  EXPECT_EQ(px(ru, 0, 0)[0], 124);
  EXPECT_EQ(px(ru, 0, 0)[2], 104);
  EXPECT_THROW(rotate(img, 10, Filter::NEAREST, kRandAugmentFill), std::invalid_argument);
  EXPECT_THROW(affine_transform(Image{}, {1, 0, 0, 0, 1, 0}, Filter::BILINEAR, kRandAugmentFill),
               std::invalid_argument);
}

TEST(AugmentOps, GrayImagesAreSupported) {
  const Image g = make_image(6, 5, 1, 4);
  EXPECT_EQ(enhance_color(g, 1.7).pixels, g.pixels);  // gray has no colour to change
  EXPECT_EQ(to_gray(g).pixels, g.pixels);
  const Image t = translate_x(g, 10, Filter::BILINEAR, kRandAugmentFill);
  for (uint8_t v : t.pixels) EXPECT_EQ(v, 124);  // gray fill takes the first fill component
  Image bad = g;
  bad.channels = 2;
  EXPECT_THROW(invert(bad), std::invalid_argument);
  bad = g;
  bad.pixels.pop_back();
  EXPECT_THROW(equalize(bad), std::invalid_argument);
}

// ---- RandAugment

TEST(RandAugment, MagnitudeMapsToTimmArguments) {
  const Image img = make_image(16, 12, 3, 33);
  RandAugmentConfig cfg;
  Rng rng(5);
  const double lv = 9 / 10.0;  // timm's level for magnitude 9, in the same expressions as the op
  auto apply = [&](AugmentOp op, double m) { return apply_augment_op(img, op, m, cfg, rng).pixels; };
  EXPECT_EQ(apply(AugmentOp::POSTERIZE_INCREASING, 9), posterize(img, 1).pixels);    // 4 - int(3.6)
  EXPECT_EQ(apply(AugmentOp::POSTERIZE_INCREASING, 4.9), posterize(img, 3).pixels);  // 4 - int(1.96)
  EXPECT_EQ(apply(AugmentOp::POSTERIZE, 9), posterize(img, 3).pixels);               // int(3.6)
  EXPECT_EQ(apply(AugmentOp::SOLARIZE_INCREASING, 9), solarize(img, 26).pixels);     // 256 - 230
  EXPECT_EQ(apply(AugmentOp::SOLARIZE, 9), solarize(img, 230).pixels);
  EXPECT_EQ(apply(AugmentOp::SOLARIZE_ADD, 9), solarize_add(img, 99).pixels);  // int(99.0)
  EXPECT_EQ(apply(AugmentOp::COLOR, 5), enhance_color(img, 1.0).pixels);       // 0.5 * 1.8 + 0.1
  EXPECT_EQ(apply(AugmentOp::INVERT, 3), invert(img).pixels);
  EXPECT_EQ(apply(AugmentOp::EQUALIZE, 3), equalize(img).pixels);
  EXPECT_EQ(apply(AugmentOp::AUTO_CONTRAST, 3), auto_contrast(img).pixels);
  // Signed ops: both signs occur, each equal to the op at the mapped argument.
  const Fill f = cfg.fill;
  const auto BC = Filter::BICUBIC;
  struct Signed {
    AugmentOp op;
    std::vector<uint8_t> plus, minus;
  };
  const double up = 1.0 + lv * 0.9, down = 1.0 - lv * 0.9;
  const std::vector<Signed> cases = {
      {AugmentOp::ROTATE, rotate(img, lv * 30, BC, f).pixels, rotate(img, -(lv * 30), BC, f).pixels},
      {AugmentOp::SHEAR_X, shear_x(img, lv * 0.3, BC, f).pixels, shear_x(img, -(lv * 0.3), BC, f).pixels},
      {AugmentOp::SHEAR_Y, shear_y(img, lv * 0.3, BC, f).pixels, shear_y(img, -(lv * 0.3), BC, f).pixels},
      {AugmentOp::TRANSLATE_X_REL, translate_x(img, lv * 0.45 * 16, BC, f).pixels,
       translate_x(img, -(lv * 0.45) * 16, BC, f).pixels},
      {AugmentOp::TRANSLATE_Y_REL, translate_y(img, lv * 0.45 * 12, BC, f).pixels,
       translate_y(img, -(lv * 0.45) * 12, BC, f).pixels},
      {AugmentOp::COLOR_INCREASING, enhance_color(img, up).pixels, enhance_color(img, down).pixels},
      {AugmentOp::CONTRAST_INCREASING, enhance_contrast(img, up).pixels, enhance_contrast(img, down).pixels},
      {AugmentOp::BRIGHTNESS_INCREASING, enhance_brightness(img, up).pixels,
       enhance_brightness(img, down).pixels},
      {AugmentOp::SHARPNESS_INCREASING, enhance_sharpness(img, up).pixels,
       enhance_sharpness(img, down).pixels},
  };
  for (const auto& c : cases) {
    ASSERT_NE(c.plus, c.minus) << augment_op_name(c.op);
    int plus = 0, minus = 0;
    for (int i = 0; i < 40; ++i) {
      const auto out = apply(c.op, 9);
      plus += out == c.plus;
      minus += out == c.minus;
    }
    EXPECT_EQ(plus + minus, 40) << augment_op_name(c.op);
    EXPECT_GT(plus, 5) << augment_op_name(c.op);
    EXPECT_GT(minus, 5) << augment_op_name(c.op);
  }
  // With two resampling filters both are used.
  cfg.resample = {Filter::BILINEAR, Filter::BICUBIC};
  const auto bl = rotate(img, lv * 30, Filter::BILINEAR, f).pixels;
  const auto blm = rotate(img, -(lv * 30), Filter::BILINEAR, f).pixels;
  int bilinear = 0;
  for (int i = 0; i < 40; ++i) {
    const auto out = apply(AugmentOp::ROTATE, 9);
    bilinear += out == bl || out == blm;
  }
  EXPECT_GT(bilinear, 5);
  EXPECT_LT(bilinear, 35);
}

TEST(RandAugment, ParsesTimmConfigStrings) {
  const RandAugmentConfig deit = parse_rand_augment("rand-m9-mstd0.5-inc1");
  const RandAugmentConfig def;
  EXPECT_EQ(deit.magnitude, def.magnitude);
  EXPECT_EQ(deit.magnitude, 9);
  EXPECT_EQ(deit.num_layers, 2);
  EXPECT_EQ(deit.magnitude_std, 0.5);
  EXPECT_EQ(deit.magnitude_max, 10);
  EXPECT_EQ(deit.prob, 0.5);
  EXPECT_TRUE(deit.increasing);
  EXPECT_EQ(deit.fill, kRandAugmentFill);
  EXPECT_EQ(deit.resample, std::vector<Filter>{Filter::BICUBIC});
  EXPECT_EQ(rand_augment_ops(true).size(), 15u);
  EXPECT_EQ(rand_augment_ops(false).size(), 15u);
  EXPECT_STREQ(augment_op_name(rand_augment_ops(true)[4]), "PosterizeIncreasing");

  const RandAugmentConfig plain = parse_rand_augment("rand");  // timm's parser defaults
  EXPECT_EQ(plain.magnitude, 10);
  EXPECT_EQ(plain.magnitude_std, 0);
  EXPECT_FALSE(plain.increasing);
  const RandAugmentConfig other = parse_rand_augment("rand-n3-m7-mstd200-mmax12-p0.8-inc0");
  EXPECT_EQ(other.num_layers, 3);
  EXPECT_EQ(other.magnitude, 7);
  EXPECT_TRUE(std::isinf(other.magnitude_std));
  EXPECT_EQ(other.magnitude_max, 12);
  EXPECT_DOUBLE_EQ(other.prob, 0.8);
  EXPECT_FALSE(other.increasing);

  for (const char* bad : {"", "rand-", "rnd-m9", "rand-m9.5", "rand-x3", "rand-mstd", "rand-inc2",
                          "rand-p1.5", "rand-m9-tall", "rand-w0", "rand-n", "rand--m9"}) {
    try {
      parse_rand_augment(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
  RandAugmentConfig cfg;
  cfg.resample = {};
  EXPECT_THROW(validate(cfg), std::invalid_argument);
  cfg = RandAugmentConfig{};
  cfg.resample = {Filter::NEAREST};
  EXPECT_THROW(validate(cfg), std::invalid_argument);
  cfg = RandAugmentConfig{};
  cfg.prob = -0.1;
  EXPECT_THROW(validate(cfg), std::invalid_argument);
  cfg = RandAugmentConfig{};
  cfg.num_layers = -1;
  Image img = make_image(8, 8, 3, 2);
  Rng rng(1);
  EXPECT_THROW(rand_augment(img, cfg, rng), std::invalid_argument);
}

TEST(RandAugment, IsDeterministicGivenTheSeed) {
  const Image img = make_image(20, 15, 3, 17);
  const RandAugmentConfig cfg;
  std::set<std::vector<uint8_t>> outputs;
  const uint64_t seeds = 40;
  for (uint64_t seed = 0; seed < seeds; ++seed) {
    Image a = img, b = img;
    Rng ra(seed), rb(seed);
    rand_augment(a, cfg, ra);
    rand_augment(b, cfg, rb);
    EXPECT_EQ(a.pixels, b.pixels) << seed;
    EXPECT_EQ(a.width, 20);
    EXPECT_EQ(a.height, 15);
    outputs.insert(a.pixels);
  }
  // Both ops are skipped with probability 1/4, so about 10 seeds leave the image as it is.
  EXPECT_GE(outputs.size(), 20u);
  RandAugmentConfig off = cfg;
  off.prob = 0.0;
  Image c = img;
  Rng rng(3);
  rand_augment(c, off, rng);
  EXPECT_EQ(c.pixels, img.pixels);
  off = cfg;
  off.num_layers = 0;
  rand_augment(c, off, rng);
  EXPECT_EQ(c.pixels, img.pixels);
}

TEST(RandAugment, AppliesOpsAtTheConfiguredRate) {
  // prob 0.5 per layer, 2 layers: the image is untouched with probability 1/4, plus the rare
  // cases where an applied op is a no-op on this image.
  // Values in 30..220: AutoContrast is no no-op, unlike on full-range noise.
  Image img = make_image(24, 24, 3, 99);
  for (auto& p : img.pixels) p = static_cast<uint8_t>(30 + p % 191);
  const RandAugmentConfig cfg;
  Rng rng(11);
  int untouched = 0;
  const int n = 1200;
  for (int i = 0; i < n; ++i) {
    Image t = img;
    rand_augment(t, cfg, rng);
    untouched += t.pixels == img.pixels;
  }
  EXPECT_NEAR(untouched / double(n), 0.25, 0.05);
}

TEST(TrainCrop, ChainsCropFlipAndRandAugment) {
  const Image img = make_image(300, 200, 3, 1);
  TrainTransform t;
  Rng a(42), b(42), c(43);
  const Image oa = train_crop(img, t, a);
  EXPECT_EQ(oa.width, 224);
  EXPECT_EQ(oa.height, 224);
  EXPECT_EQ(oa.pixels, train_crop(img, t, b).pixels);
  EXPECT_NE(oa.pixels, train_crop(img, t, c).pixels);
  // Without flip and RandAugment it is exactly the RandomResizedCrop.
  t.hflip = 0;
  t.use_rand_augment = false;
  Rng d(9), e(9);
  EXPECT_EQ(train_crop(img, t, d).pixels, random_resized_crop(img, t.crop, e).pixels);
}
