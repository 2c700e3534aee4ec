// Tensor-side augmentations: RandomErasing, the full train transform, Mixup/CutMix targets and
// boxes, SoftTargetCrossEntropy.
#include "skd/data/mixup.h"

#include <gtest/gtest.h>

#include <cmath>

#include "skd/data/eval_transform.h"

using namespace skd::data;

namespace {

Image make_image(int w, int h, uint32_t seed) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  uint32_t s = seed;
  for (auto& p : img.pixels) {
    s = s * 1664525u + 1013904223u;
    p = static_cast<uint8_t>(s >> 24);
  }
  return img;
}

// Bounding box [y0, y1) x [x0, x1) of the pixels where a and b differ in any channel; -1s if none.
std::array<int64_t, 4> changed_box(const torch::Tensor& a, const torch::Tensor& b) {
  const auto diff = (a != b).any(0);  // [H, W]
  const auto nz = diff.nonzero();
  if (nz.size(0) == 0) return {-1, -1, -1, -1};
  const auto ys = nz.select(1, 0), xs = nz.select(1, 1);
  return {ys.min().item<int64_t>(), ys.max().item<int64_t>() + 1, xs.min().item<int64_t>(),
          xs.max().item<int64_t>() + 1};
}

}  // namespace

// ---- RandomErasing

TEST(RandomErasing, ErasesOneBoxAQuarterOfTheTime) {
  const RandomErasingConfig cfg;  // p 0.25, pixel mode, one box
  Rng rng(7);
  const auto base =
      torch::rand({3, 16, 16}, torch::TensorOptions().dtype(torch::kFloat32)) + 5.0;  // never N(0,1)-like
  int applied = 0;
  const int n = 4000;
  double area_sum = 0;
  for (int i = 0; i < n; ++i) {
    torch::Tensor x = base.clone();
    const int boxes = random_erasing(x, cfg, rng);
    ASSERT_TRUE(boxes == 0 || boxes == 1);
    applied += boxes;
    const auto box = changed_box(x, base);
    if (!boxes) {
      ASSERT_TRUE(torch::equal(x, base));
      continue;
    }
    // Outside the box nothing changed; inside every value is new (continuous N(0,1)).
    const int64_t h = box[1] - box[0], w = box[3] - box[2];
    const auto inside = x.slice(1, box[0], box[1]).slice(2, box[2], box[3]);
    ASSERT_FALSE((inside == base.slice(1, box[0], box[1]).slice(2, box[2], box[3])).any().item<bool>());
    auto restored = x.clone();
    restored.slice(1, box[0], box[1])
        .slice(2, box[2], box[3])
        .copy_(base.slice(1, box[0], box[1]).slice(2, box[2], box[3]));
    ASSERT_TRUE(torch::equal(restored, base));
    ASSERT_LT(h, 16);
    ASSERT_LT(w, 16);
    area_sum += double(h * w) / 256.0;
  }
  EXPECT_NEAR(applied / double(n), 0.25, 0.03);
  // Area ~ U(0.02, 1/3) of the image before rounding and the fit test: mean near 0.18.
  EXPECT_NEAR(area_sum / applied, (0.02 + 1.0 / 3.0) / 2, 0.04);
}

TEST(RandomErasing, ModesBatchesAndDeterminism) {
  RandomErasingConfig cfg;
  cfg.prob = 1.0;
  cfg.mode = EraseMode::CONST;
  Rng rng(1);
  const auto base = torch::full({3, 20, 20}, 7.0f);
  torch::Tensor x = base.clone();
  EXPECT_EQ(random_erasing(x, cfg, rng), 1);
  EXPECT_GT((x == 0).sum().item<int64_t>(), 0);
  EXPECT_EQ((x == 0).sum().item<int64_t>() + (x == 7).sum().item<int64_t>(), x.numel());
  // 'rand': one value per channel over the box.
  cfg.mode = EraseMode::RAND;
  x = base.clone();
  random_erasing(x, cfg, rng);
  for (int c = 0; c < 3; ++c) {
    const auto vals = std::get<0>(at::_unique(x[c].flatten()));
    EXPECT_EQ(vals.numel(), 2) << c;
  }
  // A batch erases each sample independently; max_count boxes at most.
  cfg.mode = EraseMode::PIXEL;
  cfg.min_count = 1;
  cfg.max_count = 3;
  torch::Tensor batch = base.unsqueeze(0).repeat({4, 1, 1, 1});
  const int boxes = random_erasing(batch, cfg, rng);
  EXPECT_GE(boxes, 4);
  EXPECT_LE(boxes, 12);
  for (int b = 0; b < 4; ++b) EXPECT_FALSE(torch::equal(batch[b], base));
  // Same seed, same boxes and values.
  torch::Tensor a = base.clone(), c = base.clone();
  Rng ra(5), rc(5);
  random_erasing(a, cfg, ra);
  random_erasing(c, cfg, rc);
  EXPECT_TRUE(torch::equal(a, c));
}

TEST(RandomErasing, BadInputsThrow) {
  Rng rng(0);
  RandomErasingConfig cfg;
  torch::Tensor x = torch::zeros({3, 8, 8});
  torch::Tensor ints = torch::zeros({3, 8, 8}, torch::kInt64);
  torch::Tensor flat = torch::zeros({8});
  EXPECT_THROW(random_erasing(ints, cfg, rng), std::invalid_argument);
  EXPECT_THROW(random_erasing(flat, cfg, rng), std::invalid_argument);
  cfg.prob = 1.5;
  EXPECT_THROW(random_erasing(x, cfg, rng), std::invalid_argument);
  cfg = RandomErasingConfig{};
  cfg.min_area = 0.5;
  cfg.max_area = 0.1;
  EXPECT_THROW(random_erasing(x, cfg, rng), std::invalid_argument);
  cfg = RandomErasingConfig{};
  cfg.max_count = 0;
  EXPECT_THROW(random_erasing(x, cfg, rng), std::invalid_argument);
}

// ---- the full train transform

TEST(TrainTransform, ProducesNormalisedDeterministicTensors) {
  const TrainTransform def;
  EXPECT_EQ(def.mean, kImagenetMean);
  EXPECT_EQ(def.std, kImagenetStd);
  const Image img = make_image(160, 120, 3);
  Rng a(10), b(10), c(11);
  const auto ta = train_transform(img, def, a);
  EXPECT_EQ(ta.sizes(), (std::vector<int64_t>{3, 224, 224}));
  EXPECT_EQ(ta.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(ta, train_transform(img, def, b)));
  EXPECT_FALSE(torch::equal(ta, train_transform(img, def, c)));
  // Without RandAugment, flip and erasing: (crop / 255 - mean) / std of the RandomResizedCrop.
  TrainTransform plain;
  plain.hflip = 0;
  plain.use_rand_augment = false;
  plain.erasing.prob = 0;
  Rng d(3), e(3);
  const auto t = train_transform(img, plain, d);
  const Image crop = random_resized_crop(img, plain.crop, e);
  auto u8 = torch::from_blob(const_cast<uint8_t*>(crop.pixels.data()), {224, 224, 3}, torch::kUInt8);
  auto want = u8.permute({2, 0, 1}).to(torch::kFloat32).div(255.0f);
  want = (want - torch::tensor({0.485f, 0.456f, 0.406f}).view({3, 1, 1})) /
         torch::tensor({0.229f, 0.224f, 0.225f}).view({3, 1, 1});
  EXPECT_TRUE(torch::allclose(t, want, 0, 1e-6)) << (t - want).abs().max().item<float>();
  // A gray image goes through as its RGB replica (timm's loader converts to RGB).
  Image gray;
  gray.width = 90;
  gray.height = 70;
  gray.channels = 1;
  gray.pixels.assign(img.pixels.begin(), img.pixels.begin() + 90 * 70);
  Image rgb = gray;
  rgb.channels = 3;
  rgb.pixels.clear();
  for (uint8_t v : gray.pixels) rgb.pixels.insert(rgb.pixels.end(), 3, v);
  Rng g1(8), g2(8);
  const auto tg = train_transform(gray, def, g1);
  EXPECT_EQ(tg.sizes(), (std::vector<int64_t>{3, 224, 224}));
  EXPECT_TRUE(torch::equal(tg, train_transform(rgb, def, g2)));
}

// ---- Mixup / CutMix

TEST(Mixup, TargetsAreSmoothedOneHotsMixedWithTheFlippedBatch) {
  const auto labels = torch::tensor({0, 2, 2, 1}, torch::kInt64);
  const auto t = mixup_target(labels, 4, 0.7, 0.1);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{4, 4}));
  // off = 0.025, on = 0.925; row 0 mixes label 0 (0.7) with the flipped label 1 (0.3).
  const auto row0 = t[0];
  EXPECT_NEAR(row0[0].item<float>(), 0.7 * 0.925 + 0.3 * 0.025, 1e-6);
  EXPECT_NEAR(row0[1].item<float>(), 0.7 * 0.025 + 0.3 * 0.925, 1e-6);
  EXPECT_NEAR(row0[2].item<float>(), 0.025, 1e-6);
  EXPECT_TRUE(torch::allclose(t.sum(1), torch::ones({4}), 0, 1e-6));
  const auto plain = mixup_target(labels, 4, 1.0, 0.0);
  EXPECT_TRUE(torch::equal(plain, torch::one_hot(labels, 4).to(torch::kFloat32)));
  EXPECT_THROW(mixup_target(torch::tensor({0, 4}, torch::kInt64), 4, 1.0, 0.1), std::invalid_argument);
  EXPECT_THROW(mixup_target(torch::tensor({-1, 0}, torch::kInt64), 4, 1.0, 0.1), std::invalid_argument);
}

TEST(Mixup, SwitchesBetweenMixupAndCutmixAndMixesExactly) {
  const MixupConfig cfg = [] {
    MixupConfig c;
    c.num_classes = 5;
    return c;
  }();
  Rng rng(2025);
  const auto base = torch::rand({4, 2, 8, 12});
  const auto labels = torch::tensor({0, 1, 3, 4}, torch::kInt64);
  const auto flipped = base.flip(0);
  int cutmix = 0, mixups = 0;
  double mix_lam_sum = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    torch::Tensor x = base.clone();
    const MixupResult r = mixup_batch(x, labels, cfg, rng);
    ASSERT_GE(r.lam, 0.0);
    ASSERT_LE(r.lam, 1.0);
    ASSERT_TRUE(torch::allclose(r.targets.sum(1), torch::ones({4}), 0, 1e-5));
    ASSERT_TRUE(torch::allclose(r.targets, mixup_target(labels, 5, r.lam, 0.1)));
    if (r.cutmix) {
      ++cutmix;
      const auto& b = r.box;
      // lam is exactly 1 - (box area) / (H * W).
      ASSERT_EQ(r.lam, 1.0 - double((b.y1 - b.y0) * (b.x1 - b.x0)) / (8.0 * 12.0));
      auto want = base.clone();
      want.slice(2, b.y0, b.y1).slice(3, b.x0, b.x1).copy_(flipped.slice(2, b.y0, b.y1).slice(3, b.x0, b.x1));
      ASSERT_TRUE(torch::equal(x, want));
    } else {
      ++mixups;
      mix_lam_sum += r.lam;
      ASSERT_TRUE(torch::allclose(x, base * r.lam + flipped * (1 - r.lam), 1e-6, 1e-6));
    }
  }
  EXPECT_NEAR(cutmix / double(n), 0.5, 0.04);
  EXPECT_NEAR(mix_lam_sum / mixups, 0.5, 0.03);  // Beta(0.8, 0.8) has mean 1/2
}

TEST(Mixup, CutmixBoxIsClippedAndLamCorrected) {
  Rng rng(4);
  double total_lam = 0;
  const int n = 3000;
  for (int i = 0; i < n; ++i) {
    double lam = rng_beta(rng, 1.0, 1.0);
    const double raw = lam;
    const CutmixBox b = cutmix_box(10, 7, lam, true, rng);
    ASSERT_LE(0, b.y0);
    ASSERT_LE(b.y0, b.y1);
    ASSERT_LE(b.y1, 10);
    ASSERT_LE(0, b.x0);
    ASSERT_LE(b.x0, b.x1);
    ASSERT_LE(b.x1, 7);
    // The uncut side lengths are at most int(H * sqrt(1 - lam)) rounded down to even.
    ASSERT_LE(b.y1 - b.y0, static_cast<int64_t>(10 * std::sqrt(1 - raw)));
    ASSERT_EQ(lam, 1.0 - double((b.y1 - b.y0) * (b.x1 - b.x0)) / 70.0);
    total_lam += lam;
  }
  // Clipping and the even sides shrink boxes, so the corrected lam averages above 1/2.
  EXPECT_GT(total_lam / n, 0.5);
  double lam = 0.3;
  const CutmixBox b = cutmix_box(10, 7, lam, false, rng);
  EXPECT_EQ(lam, 0.3);
  EXPECT_LE(b.y1 - b.y0, 8);
}

TEST(Mixup, ProbabilityDeterminismAndErrors) {
  MixupConfig cfg;
  cfg.num_classes = 3;
  const auto base = torch::rand({2, 1, 4, 4});
  const auto labels = torch::tensor({0, 2}, torch::kInt64);
  MixupConfig off = cfg;
  off.prob = 0;
  Rng rng(1);
  torch::Tensor x = base.clone();
  const MixupResult r = mixup_batch(x, labels, off, rng);
  EXPECT_EQ(r.lam, 1.0);
  EXPECT_TRUE(torch::equal(x, base));
  EXPECT_TRUE(torch::allclose(r.targets, mixup_target(labels, 3, 1.0, 0.1)));
  // Only cutmix enabled: every batch is cut.
  MixupConfig cut = cfg;
  cut.mixup_alpha = 0;
  for (int i = 0; i < 20; ++i) {
    torch::Tensor y = base.clone();
    EXPECT_TRUE(mixup_batch(y, labels, cut, rng).cutmix);
  }
  torch::Tensor a = base.clone(), b = base.clone();
  Rng ra(9), rb(9);
  const auto ma = mixup_batch(a, labels, cfg, ra), mb = mixup_batch(b, labels, cfg, rb);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(ma.lam, mb.lam);

  torch::Tensor odd = torch::rand({3, 1, 4, 4});
  EXPECT_THROW(mixup_batch(odd, torch::tensor({0, 1, 2}, torch::kInt64), cfg, rng), std::invalid_argument);
  torch::Tensor three_d = torch::rand({2, 4, 4});
  EXPECT_THROW(mixup_batch(three_d, labels, cfg, rng), std::invalid_argument);
  torch::Tensor ok = base.clone();
  EXPECT_THROW(mixup_batch(ok, torch::tensor({0, 3}, torch::kInt64), cfg, rng), std::invalid_argument);
  EXPECT_TRUE(torch::equal(ok, base));  // rejected before mixing in place
  EXPECT_THROW(mixup_batch(ok, torch::tensor({0}, torch::kInt64), cfg, rng), std::invalid_argument);
  MixupConfig none = cfg;
  none.mixup_alpha = none.cutmix_alpha = 0;
  EXPECT_THROW(mixup_batch(ok, labels, none, rng), std::invalid_argument);
  MixupConfig smooth = cfg;
  smooth.label_smoothing = 1.0;
  EXPECT_THROW(validate(smooth), std::invalid_argument);
}

TEST(SoftTargetCrossEntropy, MatchesCrossEntropyAndHandValues) {
  const auto logits = torch::tensor({{1.0f, 2.0f, 0.5f}, {0.1f, -1.0f, 3.0f}});
  const auto labels = torch::tensor({1, 2}, torch::kInt64);
  const auto onehot = torch::one_hot(labels, 3).to(torch::kFloat32);
  const auto want = torch::nn::functional::cross_entropy(logits, labels);
  EXPECT_NEAR(soft_target_cross_entropy(logits, onehot).item<float>(), want.item<float>(), 1e-6);
  // Uniform target on equal logits: log(3).
  const auto u = soft_target_cross_entropy(torch::zeros({1, 3}), torch::full({1, 3}, 1.0f / 3));
  EXPECT_NEAR(u.item<float>(), std::log(3.0), 1e-6);
  // Gradient flows to the logits.
  auto l = logits.clone().requires_grad_(true);
  soft_target_cross_entropy(l, mixup_target(labels, 3, 0.6, 0.1)).backward();
  EXPECT_TRUE(l.grad().defined());
  EXPECT_NEAR(l.grad().sum().item<float>(), 0.0, 1e-6);  // softmax - target rows sum to 0
  EXPECT_THROW(soft_target_cross_entropy(logits, torch::zeros({2, 4})), std::invalid_argument);
}
