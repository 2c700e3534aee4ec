// Image folders and the loader: generated PNG/JPEG trees, class order and index files, bad files,
// determinism across worker counts, skip/fail policies.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>

#include "skd/core/fs.h"
#include "skd/data/dataset.h"
#include "skd/data/eval_transform.h"
#include "skd/data/image_folder.h"
#include "skd/data/loader.h"
#include "test_util.h"

using namespace skd::data;
namespace fs = std::filesystem;

namespace {

// root/<class>/img<i>.{png,jpg} with a colour per class, plus a non-image file.
std::string make_folder(const std::string& name, const std::vector<std::string>& classes, int per_class) {
  const auto root = skd::test::scratch_dir(name);
  for (size_t c = 0; c < classes.size(); ++c) {
    fs::create_directories(fs::path(root) / classes[c]);
    for (int i = 0; i < per_class; ++i) {
      cv::Mat img(40 + 3 * i, 50 + 5 * static_cast<int>(c), CV_8UC3,
                  cv::Scalar(30.0 * c, 200 - 20.0 * i, 90 + 10.0 * c));
      cv::circle(img, {10 + i, 12}, 5, cv::Scalar(255, 255, 255), -1);
      const auto ext = i % 2 ? ".jpg" : ".png";
      cv::imwrite((fs::path(root) / classes[c] / ("img" + std::to_string(i) + ext)).string(), img);
    }
    std::ofstream(fs::path(root) / classes[c] / "notes.txt") << "not an image";
  }
  return root;
}

std::vector<LoadedBatch> load_all(const Dataset& d, LoaderOptions o) {
  std::vector<int64_t> order(static_cast<size_t>(d.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(order.size() - 1 - i);
  Loader loader(d, order, o);
  std::vector<LoadedBatch> out;
  LoadedBatch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

TEST(ImageFolder, ClassesSortedFilesListedNonImagesSkipped) {
  const auto root = make_folder("if_basic", {"zebra", "Apple", "mango"}, 3);
  ImageFolderStats stats;
  ImageFolderOptions o;
  o.root = root;
  o.img_size = 32;
  auto d = open_image_folder(o, &stats);
  EXPECT_EQ(d->size(), 9);
  EXPECT_EQ(stats.skipped_files, 3);
  // Byte order like Python's sorted(): uppercase first.
  EXPECT_EQ(d->class_names(), (std::vector<std::string>{"Apple", "mango", "zebra"}));
  EXPECT_EQ(d->get(0, nullptr).label, 0);
  EXPECT_EQ(d->get(8, nullptr).label, 2);
  EXPECT_NE(d->path(0).find("Apple/img0.png"), std::string::npos);
  const auto s = d->get(4, nullptr);
  EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_TRUE(torch::isfinite(s.image).all().item<bool>());
}

TEST(ImageFolder, SplitSubfolderAndClassIndexFiles) {
  const auto base = skd::test::scratch_dir("if_split");
  const auto val = make_folder("if_split_val", {"n02", "n01"}, 2);
  fs::rename(val, fs::path(base) / "val");
  DataSpec spec;
  spec.spec = base;
  spec.split = "test";  // falls back to val/
  spec.img_size = 24;
  auto d = open_dataset(spec);
  EXPECT_EQ(d->size(), 4);
  // imagenet_class_index.json layout reverses the order.
  const auto json_index = base + "/index.json";
  std::ofstream(json_index) << R"({"0": ["n02", "second"], "1": ["n01", "first"], "2": ["n03", "unused"]})";
  spec.class_index = json_index;
  d = open_dataset(spec);
  EXPECT_EQ(d->num_classes(), 3);
  EXPECT_EQ(d->get(0, nullptr).label, 1);  // n01 comes first on disk, index 1
  const auto txt_index = base + "/index.txt";
  std::ofstream(txt_index) << "n01 first\nn02 second\n";
  spec.class_index = txt_index;
  EXPECT_EQ(open_dataset(spec)->get(3, nullptr).label, 1);
  std::ofstream(txt_index) << "n01\n";
  try {
    open_dataset(spec);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("n02"), std::string::npos) << e.what();
  }
}

TEST(ImageFolder, OneChannelModelsGetPilGrayscale) {
  const auto root = make_folder("if_gray", {"a", "b"}, 2);
  DataSpec spec;
  spec.spec = root;
  spec.img_size = 24;
  spec.channels = 1;
  auto d = open_dataset(spec);
  EXPECT_NE(d->describe().find("as grayscale"), std::string::npos) << d->describe();
  for (int64_t i = 0; i < d->size(); ++i) {
    const auto s = d->get(i, nullptr);
    ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{1, 24, 24}));
    // PIL's convert('L') (Pillow >= 9: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, i.e.
    // R*299/1000 + G*587/1000 + B*114/1000 rounded), then the eval crop and (x/255 - mean) / std.
    Image rgb = decode_image_file(d->path(i)), gray;
    gray.width = rgb.width;
    gray.height = rgb.height;
    gray.channels = 1;
    for (size_t p = 0; p < rgb.pixels.size(); p += 3)
      gray.pixels.push_back(static_cast<uint8_t>(
          (rgb.pixels[p] * 19595 + rgb.pixels[p + 1] * 38470 + rgb.pixels[p + 2] * 7471 + 0x8000) >> 16));
    EvalTransform t;
    t.size = 24;
    const Image crop = eval_crop(gray, t);
    auto want = torch::empty({1, 24, 24});
    for (int y = 0; y < 24; ++y)
      for (int x = 0; x < 24; ++x)
        want[0][y][x] = (static_cast<float>(crop.row(y)[x]) / 255.0f - kGrayMean) / kGrayStd;
    EXPECT_TRUE(torch::equal(s.image, want)) << d->path(i);
  }
  Rng rng(3);
  spec.train_augment = true;
  spec.split = "train";
  EXPECT_EQ(open_dataset(spec)->get(1, &rng).image.sizes(), (std::vector<int64_t>{1, 24, 24}));
  spec.channels = 2;
  try {
    open_dataset(spec);
    FAIL() << "2 channels accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("the model expects 2"), std::string::npos) << e.what();
  }
}

TEST(ImageFolder, BrokenFoldersAreClearErrors) {
  ImageFolderOptions o;
  o.root = "/nonexistent/imagenet";
  EXPECT_THROW(open_image_folder(o), std::invalid_argument);
  o.root = skd::test::scratch_dir("if_noclasses");
  std::ofstream(o.root + "/loose.jpg") << "x";
  EXPECT_THROW(open_image_folder(o), std::invalid_argument);
  fs::create_directories(o.root + "/empty_class");
  fs::create_directories(o.root + "/full_class");
  std::ofstream(o.root + "/full_class/a.png") << "x";
  try {
    open_image_folder(o);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("empty_class"), std::string::npos) << e.what();
  }
}

TEST(Loader, SkipCountsBadImagesAndFailNamesThem) {
  const auto root = make_folder("if_bad", {"a", "b"}, 4);
  std::ofstream(root + "/a/corrupt.png") << "\x89PNG definitely not an image";
  {
    std::ofstream t(root + "/b/truncated.jpg", std::ios::binary);
    const auto good = skd::read_file_bytes(root + "/b/img1.jpg");
    t.write(reinterpret_cast<const char*>(good.data()), static_cast<std::streamsize>(good.size() / 3));
  }
  ImageFolderOptions o;
  o.root = root;
  o.img_size = 16;
  auto d = open_image_folder(o);
  ASSERT_EQ(d->size(), 10);
  LoaderOptions lo;
  lo.batch_size = 3;
  lo.workers = 2;
  int64_t rows = 0;
  std::vector<int64_t> order(10);
  for (int i = 0; i < 10; ++i) order[i] = i;
  Loader loader(*d, order, lo);
  LoadedBatch b;
  while (loader.next(b)) rows += b.images.size(0);
  EXPECT_EQ(loader.bad_images(), 2);
  EXPECT_EQ(rows, 8);
  lo.on_bad_image = BadImagePolicy::FAIL;
  Loader failing(*d, order, lo);
  try {
    while (failing.next(b)) {
    }
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt.png"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(failing.next(b));  // over, not hanging
}

TEST(Loader, SameBatchesWhateverTheWorkerCount) {
  const auto root = make_folder("if_det", {"x", "y", "z"}, 5);
  ImageFolderOptions o;
  o.root = root;
  o.img_size = 24;
  o.train_augment = true;
  auto d = open_image_folder(o);
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.augment = true;
  lo.seed = 7;
  lo.workers = 0;
  const auto ref = load_all(*d, lo);
  ASSERT_EQ(ref.size(), 4u);  // 15 images, last batch partial
  EXPECT_EQ(ref.back().images.size(0), 3);
  for (int workers : {1, 3}) {
    lo.workers = workers;
    lo.prefetch = 1;
    const auto got = load_all(*d, lo);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_TRUE(torch::equal(got[i].images, ref[i].images)) << "workers " << workers << " batch " << i;
      EXPECT_EQ(got[i].indices, ref[i].indices);
    }
  }
  lo.epoch = 1;  // another epoch, other augmentations
  EXPECT_FALSE(torch::equal(load_all(*d, lo)[0].images, ref[0].images));
  lo.drop_last = true;
  EXPECT_EQ(load_all(*d, lo).size(), 3u);
}

TEST(Loader, FashionMnistFastPathMatchesPerExample) {
  auto d = open_dataset("fashion-mnist", "test", 32, 3);
  std::vector<int64_t> order = {5, 3, 9999, 0};
  LoaderOptions lo;
  lo.batch_size = 4;
  Loader loader(*d, order, lo);
  LoadedBatch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_TRUE(torch::allclose(b.images[2], d->get(9999, nullptr).image));
  EXPECT_EQ(b.indices, order);
}

}  // namespace
