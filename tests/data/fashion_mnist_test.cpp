// Fashion-MNIST dataset: model-ready batches (size, channels, normalisation) and error paths.
#include <gtest/gtest.h>

#include <filesystem>

#include "skd/data/dataset.h"
#include "test_util.h"

using namespace skd::data;

TEST(FashionMnist, BatchesAreResizedReplicatedAndNormalised) {
  auto test = open_dataset("fashion-mnist", "test", 32, 3);
  EXPECT_EQ(test->size(), 10000);
  EXPECT_EQ(test->num_classes(), 10);
  const auto b = test->get_batch({0, 1, 9999});
  EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(b.labels.sizes(), (std::vector<int64_t>{3}));
  EXPECT_TRUE(torch::equal(b.images.select(1, 0), b.images.select(1, 2)));
  // Normalised with the dataset statistics: over many images, mean ~0 and std ~1.
  std::vector<int64_t> idx(2000);
  for (int i = 0; i < 2000; ++i) idx[i] = i;
  auto x = open_dataset("fashion-mnist", "test", 28, 1)->get_batch(idx).images;
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 0.05);
  EXPECT_NEAR(x.std().item<double>(), 1.0, 0.05);
  // The first test image is an ankle boot (class 9), as in every Fashion-MNIST copy.
  EXPECT_EQ(b.labels[0].item<int64_t>(), 9);
  EXPECT_EQ(open_dataset("fashion-mnist", "train", 28, 1)->size(), 60000);
}

TEST(FashionMnist, ErrorsNameTheProblem) {
  EXPECT_THROW(open_dataset("/nonexistent/folder", "test", 28, 1), std::invalid_argument);
  EXPECT_THROW(open_dataset("fashion-mnist", "validation", 28, 1), std::invalid_argument);
  EXPECT_EQ(open_dataset("fashion-mnist", "val", 28, 1)->size(), 10000);  // val = the test split
  // A folder with the images but not the labels is a Fashion-MNIST folder missing a file.
  const auto dir = skd::test::scratch_dir("fmnist_partial");
  std::filesystem::copy_file(std::string(kFashionMnistDebianDir) + "/t10k-images-idx3-ubyte.gz",
                             dir + "/t10k-images-idx3-ubyte.gz");
  try {
    open_dataset(dir, "test", 28, 1);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("t10k-labels-idx1-ubyte"), std::string::npos) << e.what();
  }
}

// Training augmentation: a random crop of the zero-padded image and a horizontal flip, drawn from
// the Rng (same seed, same sample); without an Rng the example equals the eval batch path.
TEST(FashionMnist, TrainAugmentationIsPadCropAndFlip) {
  FashionMnistOptions o;
  o.split = "test";
  o.channels = 1;
  auto ds = open_fashion_mnist(o);
  const auto plain = ds->get(0, nullptr).image;
  EXPECT_TRUE(torch::equal(plain, ds->get_batch({0}).images[0]));
  Rng a(42), b(42);
  EXPECT_TRUE(torch::equal(ds->get(0, &a).image, ds->get(0, &b).image));
  // Every augmented view is one of the 5 x 5 shifts of the padded image, maybe mirrored.
  const double background = (0.0 - 0.2860) / 0.3530;
  auto padded = torch::full({1, 32, 32}, background);
  padded.narrow(1, 2, 28).narrow(2, 2, 28).copy_(plain);
  int flips = 0, shifted = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Rng rng(seed);
    const auto v = ds->get(0, &rng).image;
    bool found = false;
    for (int dy = 0; dy <= 4 && !found; ++dy)
      for (int dx = 0; dx <= 4 && !found; ++dx) {
        const auto crop = padded.narrow(1, dy, 28).narrow(2, dx, 28);
        if (torch::allclose(v, crop)) {
          found = true;
          shifted += (dy != 2 || dx != 2);
        } else if (torch::allclose(v, crop.flip({2}))) {
          found = true;
          ++flips;
        }
      }
    EXPECT_TRUE(found) << "seed " << seed;
  }
  EXPECT_GT(flips, 5);
  EXPECT_GT(shifted, 5);
  o.train_pad = 0;
  o.train_flip = false;
  Rng rng(1);
  EXPECT_TRUE(torch::equal(open_fashion_mnist(o)->get(0, &rng).image, plain));
}
