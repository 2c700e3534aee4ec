// The "preprocess" manifest entry (issue 27): JSON round trip, the strict reader naming the key, the
// defaults, overrides and their source, and that the datasets apply what it says.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "skd/core/error.h"
#include "skd/data/dataset.h"
#include "skd/data/image_folder.h"
#include "skd/data/preprocess.h"

using namespace skd;
using namespace skd::data;

namespace {

nlohmann::json valid_entry() {
  return preprocess_to_json(*imagenet_preprocess(3, 224));
}

// The message of the FormatError preprocess_from_json throws for `j`, or "" when it reads.
std::string refusal(const nlohmann::json& j) {
  try {
    preprocess_from_json(j, "m.safetensors");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Preprocess, JsonRoundTripUsesTimmNames) {
  Preprocess p = *imagenet_preprocess(3, 224);
  p.crop_pct = 0.9;
  p.interpolation = Filter::BILINEAR;
  const auto j = preprocess_to_json(p);
  EXPECT_EQ(j["input_size"], nlohmann::json({3, 224, 224}));
  EXPECT_EQ(j["interpolation"], "bilinear");
  EXPECT_EQ(j["crop_pct"], 0.9);
  EXPECT_EQ(j["crop_mode"], "center");
  EXPECT_EQ(j["mean"], nlohmann::json({0.485, 0.456, 0.406}));
  EXPECT_EQ(j["std"], nlohmann::json({0.229, 0.224, 0.225}));
  EXPECT_EQ(preprocess_from_json(j, "m"), p);
  // The JSON text round-trips too (what a manifest stores).
  EXPECT_EQ(preprocess_from_json(nlohmann::json::parse(j.dump()), "m"), p);
}

TEST(Preprocess, MalformedEntriesAreRefusedNamingTheKey) {
  const auto with = [](const char* key, const nlohmann::json& v) {
    auto j = valid_entry();
    j[key] = v;
    return j;
  };
  const auto without = [](const char* key) {
    auto j = valid_entry();
    j.erase(key);
    return j;
  };
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {nlohmann::json::array(), "'preprocess'"},
      {with("resize", 256), "'preprocess.resize'"},
      {without("mean"), "'preprocess.mean' is missing"},
      {without("input_size"), "'preprocess.input_size' is missing"},
      {with("input_size", {3, 224}), "'preprocess.input_size'"},
      {with("input_size", {3, 224, 200}), "'preprocess.input_size'"},
      {with("input_size", {3.0, 224, 224}), "'preprocess.input_size'"},
      {with("input_size", {0, 224, 224}), "'preprocess.input_size'"},
      {with("input_size", {65, 224, 224}), "'preprocess.input_size'"},
      {with("input_size", {3, 5000, 5000}), "'preprocess.input_size'"},
      {with("interpolation", "lanczos"), "'preprocess.interpolation'"},
      {with("interpolation", 3), "'preprocess.interpolation'"},
      {with("crop_pct", 1.5), "'preprocess.crop_pct'"},
      {with("crop_pct", 0.01), "'preprocess.crop_pct'"},
      {with("crop_pct", "0.9"), "'preprocess.crop_pct'"},
      {with("crop_pct", true), "'preprocess.crop_pct'"},
      {with("crop_mode", "squash"), "'preprocess.crop_mode'"},
      {with("mean", {0.5, 0.5}), "'preprocess.mean'"},
      {with("mean", {0.5, 0.5, "x"}), "'preprocess.mean'"},
      {with("std", {0.2, 0.0, 0.2}), "'preprocess.std'"},
      {with("std", {0.2, -1.0, 0.2}), "'preprocess.std'"},
  };
  for (const auto& [j, key] : cases) {
    SCOPED_TRACE(j.dump());
    const std::string what = refusal(j);
    EXPECT_NE(what.find("m.safetensors"), std::string::npos) << what;
    EXPECT_NE(what.find(key), std::string::npos) << what;
  }
  EXPECT_EQ(refusal(valid_entry()), "");
  auto no_mode = valid_entry();
  no_mode.erase("crop_mode");  // optional
  EXPECT_EQ(refusal(no_mode), "");
}

TEST(Preprocess, MustFitTheModelsInput) {
  const auto p = *imagenet_preprocess(3, 224);
  EXPECT_NO_THROW(check_preprocess_fits(p, 3, 224, "m"));
  for (const auto& [c, s] : {std::pair<int64_t, int64_t>{1, 224}, {3, 32}}) {
    try {
      check_preprocess_fits(p, c, s, "m");
      ADD_FAILURE() << "accepted for " << c << "x" << s;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("'preprocess.input_size'"), std::string::npos) << e.what();
    }
  }
}

TEST(Preprocess, Defaults) {
  const auto rgb = *imagenet_preprocess(3, 224);
  EXPECT_EQ(rgb.crop_pct, 0.875);  // the official DeiT/Swin evaluation: 256 -> 224
  EXPECT_EQ(rgb.interpolation, Filter::BICUBIC);
  EXPECT_EQ(eval_resize_size(eval_transform_of(rgb)), 256);
  const auto gray = *imagenet_preprocess(1, 32);
  EXPECT_EQ(gray.mean, std::vector<double>{kGrayMean});
  EXPECT_EQ(gray.std, std::vector<double>{kGrayStd});
  EXPECT_FALSE(imagenet_preprocess(2, 32).has_value());
  const auto fm = fashion_mnist_preprocess(3, 28);
  EXPECT_EQ(fm.mean, (std::vector<double>{0.2860, 0.2860, 0.2860}));
  EXPECT_EQ(fm.std, (std::vector<double>{0.3530, 0.3530, 0.3530}));
  EXPECT_EQ(fm.crop_pct, 1.0);
  // The data's defaults: Fashion-MNIST's for it, the ImageNet evaluation for image folders.
  DataSpec spec;
  spec.img_size = 28;
  spec.channels = 1;
  EXPECT_EQ(data_preprocess(spec).values, fashion_mnist_preprocess(1, 28));
  spec.spec = std::filesystem::temp_directory_path().string();
  spec.img_size = 224;
  spec.channels = 3;
  EXPECT_EQ(data_preprocess(spec).values, rgb);
}

TEST(Preprocess, OverridesAndTheirSource) {
  const auto entry = *imagenet_preprocess(3, 224);
  ResolvedPreprocess fallback{fashion_mnist_preprocess(3, 224), "the data's defaults"};
  auto r = resolve_preprocess(std::nullopt, "m", fallback, {});
  EXPECT_FALSE(r.from_artifact);
  EXPECT_EQ(r.values, fallback.values);
  EXPECT_EQ(r.source, "the data's defaults");
  r = resolve_preprocess(entry, "m.safetensors", fallback, {});
  EXPECT_TRUE(r.from_artifact);
  EXPECT_EQ(r.values, entry);
  EXPECT_NE(r.source.find("'m.safetensors'"), std::string::npos);
  PreprocessOverrides o;
  o.crop_pct = 0.9;
  o.interpolation = "bilinear";
  o.mean = ChannelValues{{0.5, 0.5, 0.5}};
  r = resolve_preprocess(entry, "m.safetensors", fallback, o);
  EXPECT_EQ(r.values.crop_pct, 0.9);
  EXPECT_EQ(r.values.interpolation, Filter::BILINEAR);
  EXPECT_EQ(r.values.mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(r.values.std, entry.std);
  EXPECT_NE(r.source.find("crop_pct, interpolation, mean given"), std::string::npos) << r.source;
  const auto refused = [&](PreprocessOverrides bad, const char* key) {
    try {
      resolve_preprocess(entry, "m", fallback, bad);
      ADD_FAILURE() << key << " accepted";
    } catch (const ParameterError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(key, 0), 0u) << e.what();
    }
  };
  PreprocessOverrides bad;
  bad.crop_pct = 1.2;
  refused(bad, "crop_pct");
  bad = {};
  bad.interpolation = "area";
  refused(bad, "interpolation");
  bad = {};
  bad.mean = ChannelValues{{0.5}};
  refused(bad, "mean");
  bad = {};
  bad.std = ChannelValues{{0.2, 0.0, 0.2}};
  refused(bad, "std");
  EXPECT_EQ(ChannelValues::from_text(" 0.485, 0.456 ,0.406").values,
            (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(ChannelValues::from_text("0.485,0.456,0.406").to_text(), "0.485,0.456,0.406");
  EXPECT_THROW(ChannelValues::from_text("0.4,,0.5"), std::invalid_argument);
  EXPECT_THROW(ChannelValues::from_text("nan"), std::invalid_argument);
}

// Fashion-MNIST applies the entry's mean and std; with its own values the tensors are those of today.
TEST(Preprocess, FashionMnistAppliesTheNormalization) {
  DataSpec spec;
  spec.img_size = 28;
  spec.channels = 3;
  const auto plain = open_dataset(spec)->get_batch({0, 1, 2}).images;
  spec.preprocess = fashion_mnist_preprocess(3, 28);
  EXPECT_TRUE(torch::equal(open_dataset(spec)->get_batch({0, 1, 2}).images, plain));
  spec.preprocess->mean = {0.5, 0.4, 0.3};
  spec.preprocess->std = {0.2, 0.3, 0.4};
  const auto d = open_dataset(spec);
  EXPECT_EQ(d->preprocess()->mean, spec.preprocess->mean);
  const auto got = d->get_batch({0, 1, 2}).images;
  const auto unit = plain * 0.3530 + 0.2860;  // back to [0, 1]
  const auto mean = torch::tensor({0.5f, 0.4f, 0.3f}).view({1, 3, 1, 1});
  const auto stdv = torch::tensor({0.2f, 0.3f, 0.4f}).view({1, 3, 1, 1});
  EXPECT_LT((got - (unit - mean) / stdv).abs().max().item<float>(), 1e-5);
}

// An image folder's eval transform follows the entry (crop_pct, interpolation, mean, std).
TEST(Preprocess, ImageFolderAppliesTheEntry) {
  const auto root = std::filesystem::temp_directory_path() / "skd_preprocess_folder";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "a");
  {
    // A 40x30 PPM with a horizontal gradient.
    std::ofstream f(root / "a" / "x.ppm", std::ios::binary);
    f << "P6 40 30 255\n";
    for (int y = 0; y < 30; ++y)
      for (int x = 0; x < 40; ++x)
        for (int c = 0; c < 3; ++c) f.put(static_cast<char>((x * 6 + y * 2 + c * 30) % 256));
  }
  ImageFolderOptions o;
  o.root = root.string();
  o.img_size = 16;
  Preprocess p = *imagenet_preprocess(3, 16);
  p.crop_pct = 0.5;
  p.interpolation = Filter::NEAREST;
  p.mean = {0.1, 0.2, 0.3};
  p.std = {0.5, 0.6, 0.7};
  o.preprocess = p;
  const auto d = open_image_folder(o);
  EXPECT_EQ(*d->preprocess(), p);
  const Image img = decode_image_file((root / "a" / "x.ppm").string());
  const auto want = eval_transform(img, eval_transform_of(p));
  EXPECT_TRUE(torch::equal(d->get(0, nullptr).image, want));
  // The transform of those values: nearest resize of the shorter side to int(16 / 0.5) = 32, crop 16.
  EXPECT_TRUE(torch::equal(
      want, to_normalized_tensor(center_crop(resize_shorter_side(img, 32, Filter::NEAREST), 16, 16),
                                 {0.1f, 0.2f, 0.3f}, {0.5f, 0.6f, 0.7f})));
  o.preprocess->size = 24;  // an entry for another input size is refused
  EXPECT_THROW(open_image_folder(o), FormatError);
  std::filesystem::remove_all(root);
}
