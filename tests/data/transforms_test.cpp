// Image decoding and the DeiT eval transform against torchvision/PIL golden crops and tensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/data/eval_transform.h"
#include "skd/data/resize.h"
#include "skd/io/safetensors.h"
#include "test_util.h"

#if __has_include(<opencv2/imgcodecs.hpp>)
#define SKD_TEST_OPENCV 1
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

using namespace skd::data;

namespace {

Image make(int w, int h, int c, uint8_t fill = 0) {
  Image im;
  im.width = w;
  im.height = h;
  im.channels = c;
  im.pixels.assign(static_cast<size_t>(w) * h * c, fill);
  return im;
}

// Pixel (x, y) of a test image encodes its own coordinates, so crops can be checked by value.
Image coords(int w, int h) {
  Image im = make(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      im.row(y)[x * 3 + 0] = static_cast<uint8_t>(x);
      im.row(y)[x * 3 + 1] = static_cast<uint8_t>(y);
      im.row(y)[x * 3 + 2] = 7;
    }
  return im;
}

torch::Tensor to_tensor(const skd::io::TensorRecord& r) {
  const auto dtype = r.dtype == skd::io::DType::U8 ? torch::kUInt8 : torch::kFloat32;
  EXPECT_TRUE(r.dtype == skd::io::DType::U8 || r.dtype == skd::io::DType::F32);
  return torch::from_blob(const_cast<uint8_t*>(r.data.data()), r.shape, dtype).clone();
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Runs `fn`, expecting a std::runtime_error whose message names `needle`.
template <typename Fn>
void expect_error_naming(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one naming '" << needle << "'";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(EvalTransform, ResizeShorterSideTruncatesTheLongSide) {
  auto dims = [](int w, int h, int s) {
    const Image out = resize_shorter_side(make(w, h, 3, 9), s);
    return std::pair{out.width, out.height};
  };
  EXPECT_EQ(dims(500, 375, 256), (std::pair{341, 256}));  // 256 * 500 / 375 = 341.33
  EXPECT_EQ(dims(300, 400, 256), (std::pair{256, 341}));
  EXPECT_EQ(dims(64, 48, 256), (std::pair{341, 256}));
  EXPECT_EQ(dims(100, 100, 256), (std::pair{256, 256}));
  EXPECT_EQ(dims(30, 1000, 256), (std::pair{256, 8533}));
  EXPECT_EQ(dims(640, 480, 256), (std::pair{341, 256}));
  EXPECT_EQ(dims(480, 640, 224), (std::pair{224, 298}));  // 298.67
  EXPECT_THROW(resize_shorter_side(make(4, 4, 3), 0), std::invalid_argument);
  EXPECT_THROW(resize_shorter_side(Image{}, 8), std::invalid_argument);
}

TEST(EvalTransform, CenterCropRoundsHalvesToEven) {
  // torchvision: int(round((W - w) / 2.0)) with Python's banker's rounding.
  auto left_of = [](int w) { return center_crop(coords(w, 4), 224, 4).row(0)[0]; };
  EXPECT_EQ(left_of(224), 0);
  EXPECT_EQ(left_of(225), 0);  // 0.5 -> 0
  EXPECT_EQ(left_of(226), 1);
  EXPECT_EQ(left_of(227), 2);                        // 1.5 -> 2
  EXPECT_EQ(left_of(229), 2);                        // 2.5 -> 2
  EXPECT_EQ(left_of(231), 4);                        // 3.5 -> 4
  const Image c = center_crop(coords(11, 9), 4, 4);  // left round(3.5) = 4, top round(2.5) = 2
  EXPECT_EQ(c.row(0)[0], 4);
  EXPECT_EQ(c.row(0)[1], 2);
  EXPECT_EQ(c.row(3)[3 * 3 + 0], 7);
  EXPECT_EQ(c.row(3)[3 * 3 + 1], 5);
}

TEST(EvalTransform, CenterCropPadsSmallImagesWithZeros) {
  // 3x3 into 6x6: pad left/top (6-3)//2 = 1, right/bottom (6-3+1)//2 = 2.
  const Image src = make(3, 3, 3, 200);
  const Image out = center_crop(src, 6, 6);
  ASSERT_EQ(out.width, 6);
  ASSERT_EQ(out.height, 6);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 6; ++x) {
      const bool inside = x >= 1 && x < 4 && y >= 1 && y < 4;
      ASSERT_EQ(out.row(y)[x * 3], inside ? 200 : 0) << x << "," << y;
    }
  // Narrow and tall: width padded (7 -> 10: 1 left, 2 right), height cropped (20 -> 10, top 5).
  const Image mixed = center_crop(coords(7, 20), 10, 10);
  ASSERT_EQ(mixed.width, 10);
  ASSERT_EQ(mixed.height, 10);
  EXPECT_EQ(mixed.row(0)[0 * 3 + 2], 0);  // padding
  EXPECT_EQ(mixed.row(0)[1 * 3 + 0], 0);  // source x 0
  EXPECT_EQ(mixed.row(0)[1 * 3 + 1], 5);  // source y 5
  EXPECT_EQ(mixed.row(9)[7 * 3 + 0], 6);
  EXPECT_EQ(mixed.row(9)[8 * 3 + 2], 0);
  EXPECT_THROW(center_crop(src, 0, 4), std::invalid_argument);
}

TEST(EvalTransform, ResizeSizeIsPythonsIntOfTheQuotient) {
  EXPECT_EQ(eval_resize_size({224, 0.875}), 256);
  EXPECT_EQ(eval_resize_size({224, 0.9}), 248);
  EXPECT_EQ(eval_resize_size({384, 1.0}), 384);
  EXPECT_EQ(eval_resize_size({224, 0.95}), 235);
  // 132 / 0.55 is 239.99999999999997 in IEEE doubles; Python's int() (and timm) give 239.
  EXPECT_EQ(eval_resize_size({132, 0.55}), 239);
  EXPECT_EQ(eval_resize_size({21, 0.7}), 30);  // 30.000000000000004
  EXPECT_THROW(eval_resize_size({0, 0.875}), std::invalid_argument);
  EXPECT_THROW(eval_resize_size({224, 0.0}), std::invalid_argument);
  EXPECT_THROW(eval_resize_size({224, -1.0}), std::invalid_argument);
}

TEST(EvalTransform, NormalizationIsBitIdenticalToToTensorNormalize) {
  Image img = make(256, 1, 3);
  for (int v = 0; v < 256; ++v)
    for (int c = 0; c < 3; ++c) img.pixels[v * 3 + c] = static_cast<uint8_t>(c == 1 ? 255 - v : v);
  const torch::Tensor got = to_normalized_tensor(img, kImagenetMean, kImagenetStd);
  // torchvision: ToTensor = permute + float()/255, Normalize = sub_(mean).div_(std), all float32.
  const auto hwc = torch::from_blob(img.pixels.data(), {1, 256, 3}, torch::kUInt8);
  const auto mean = torch::tensor({kImagenetMean[0], kImagenetMean[1], kImagenetMean[2]}).view({3, 1, 1});
  const auto stdv = torch::tensor({kImagenetStd[0], kImagenetStd[1], kImagenetStd[2]}).view({3, 1, 1});
  const auto want = (hwc.permute({2, 0, 1}).to(torch::kFloat32).div(255) - mean) / stdv;
  EXPECT_EQ(got.sizes(), want.sizes());
  EXPECT_EQ(got.dtype(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(got, want)) << (got - want).abs().max().item<float>();
  // Gray input is replicated into three channels, as PIL's convert('RGB').
  Image gray = make(2, 2, 1, 128);
  const auto g = to_normalized_tensor(gray, kImagenetMean, kImagenetStd);
  EXPECT_FLOAT_EQ(g[0][0][0].item<float>(), (128.0f / 255.0f - 0.485f) / 0.229f);
  EXPECT_FLOAT_EQ(g[2][1][1].item<float>(), (128.0f / 255.0f - 0.406f) / 0.225f);
}

// The golden crops and tensors come from torchvision 0.14.1 + Pillow 9.4 (README.json there).
TEST(EvalTransform, MatchesTorchvisionFixtures) {
  const std::string expected_path = skd::test::fixture("transforms/expected.safetensors");
  ASSERT_FALSE(expected_path.empty());
  const auto expected = skd::io::read_safetensors(expected_path).tensors;
  const std::vector<std::string> files = {"landscape_500x375.png", "portrait_300x400.png", "small_64x48.png",
                                          "gray_320x240.png", "photo_640x480.jpg"};
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    const std::string path = skd::test::fixture("transforms/" + file);
    ASSERT_FALSE(path.empty());
    const std::string stem = file.substr(0, file.rfind('.'));
    const bool jpeg = file.size() > 4 && file.substr(file.size() - 4) == ".jpg";
    const Image img = decode_image_file(path);
    const Image crop = eval_crop(img, EvalTransform{});
    ASSERT_EQ(crop.width, 224);
    ASSERT_EQ(crop.height, 224);
    ASSERT_EQ(crop.channels, 3);
    const auto want_u8 = to_tensor(expected.at(stem + ".resized_crop_uint8"));
    ASSERT_EQ(want_u8.sizes(), (std::vector<int64_t>{224, 224, 3}));
    const auto got_u8 =
        torch::from_blob(const_cast<uint8_t*>(crop.pixels.data()), {224, 224, 3}, torch::kUInt8);
    const auto diff = (got_u8.to(torch::kInt32) - want_u8.to(torch::kInt32)).abs();
    const int max_u8 = diff.max().item<int>();
    const int64_t differing = diff.ne(0).sum().item<int64_t>();

    const auto got_f = eval_transform(img, EvalTransform{});
    const auto want_f = to_tensor(expected.at(stem + ".normalized"));
    ASSERT_EQ(got_f.sizes(), want_f.sizes());
    const float max_f = (got_f - want_f).abs().max().item<float>();
    std::printf("[ fixture ] %-22s uint8 max diff %d, %lld of %d samples differ; normalized max diff %g\n",
                file.c_str(), max_u8, static_cast<long long>(differing), 224 * 224 * 3, max_f);
    // The resampling is Pillow's integer arithmetic and the normalisation torchvision's float32
    // steps, so exact equality is expected. The JPEG is held to the same bar: OpenCV and PIL both
    // decode through Debian's libjpeg62-turbo with its defaults (islow IDCT, fancy upsampling);
    // a failure there with PNGs passing points at a different libjpeg build, not at this code.
    EXPECT_EQ(max_u8, 0) << (jpeg ? "JPEG decoder differs from PIL's libjpeg?" : "");
    EXPECT_EQ(max_f, 0.0f);
  }
}

TEST(DecodeImage, ErrorsNameTheSource) {
  const std::string dir = skd::test::scratch_dir("decode_errors");
  expect_error_naming([&] { decode_image_file(dir + "/missing.png"); }, "missing.png");
  const std::string text = dir + "/notes.png";
  write_bytes(text, std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o', '\n'});
  expect_error_naming([&] { decode_image_file(text); }, "notes.png");
  const std::string empty = dir + "/empty.jpg";
  write_bytes(empty, {});
  expect_error_naming([&] { decode_image_file(empty); }, "empty.jpg");
  expect_error_naming([&] { decode_image(nullptr, 0, "in-memory blob"); }, "in-memory blob");

  // Truncated copies of the fixtures: PIL refuses both ("image file is truncated").
  for (const char* name : {"landscape_500x375.png", "photo_640x480.jpg"}) {
    const std::string src = skd::test::fixture(std::string("transforms/") + name);
    ASSERT_FALSE(src.empty());
    std::vector<uint8_t> bytes = skd::read_file_bytes(src);
    bytes.resize(bytes.size() * 6 / 10);
    const std::string cut = dir + "/cut_" + name;
    write_bytes(cut, bytes);
    expect_error_naming([&] { decode_image_file(cut); }, "cut_" + std::string(name));
    EXPECT_THROW(decode_image(bytes.data(), bytes.size(), "x"), skd::FormatError);
  }
  // Bytes after a JPEG's end-of-image marker are ignored, as PIL does.
  std::vector<uint8_t> jpg = skd::read_file_bytes(skd::test::fixture("transforms/photo_640x480.jpg"));
  const Image clean = decode_image(jpg.data(), jpg.size(), "photo");
  jpg.insert(jpg.end(), {0x00, 0x12, 0xFF, 0xD8, 0x42});
  EXPECT_EQ(decode_image(jpg.data(), jpg.size(), "photo+trailer").pixels, clean.pixels);
}

namespace {

void put_be(std::vector<uint8_t>& b, uint32_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_le(std::vector<uint8_t>& b, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

// Fuzzing findings (image target): a few header bytes claiming a huge image made the decoders
// allocate the pixel buffer before reading any pixel (a JPEG frame header of 65000x65000: 12.7 GB
// in decode_jpeg_rgb; a BMP header of 30000x30000: 2.7 GB inside OpenCV). Every supported format's
// header is now checked against kMaxImagePixels first, and other formats are not passed on.
TEST(DecodeImage, HugeHeaderClaimsAreRefusedBeforeDecoding) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> bombs;
  std::vector<uint8_t> jpg = skd::read_file_bytes(skd::test::fixture("transforms/photo_640x480.jpg"));
  ASSERT_FALSE(jpg.empty());
  for (size_t i = 2; i + 9 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {  // SOF0: length, precision, height, width
      jpg[i + 5] = jpg[i + 7] = 0xFD;
      jpg[i + 6] = jpg[i + 8] = 0xE8;
      break;
    }
  bombs.emplace_back("bomb.jpg", jpg);
  std::vector<uint8_t> bmp = {'B', 'M'};
  put_le(bmp, 54, 4), put_le(bmp, 0, 4), put_le(bmp, 54, 4), put_le(bmp, 40, 4);
  put_le(bmp, 30000, 4), put_le(bmp, 30000, 4), put_le(bmp, 1, 2), put_le(bmp, 24, 2);
  bmp.resize(54, 0);
  bombs.emplace_back("bomb.bmp", bmp);
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  put_be(png, 20000, 4), put_be(png, 20000, 4);
  png.insert(png.end(), {8, 2, 0, 0, 0, 0, 0, 0, 0});
  bombs.emplace_back("bomb.png", png);
  const std::string ppm = "P6\n# comment\n40000 40000\n255\n";
  bombs.emplace_back("bomb.ppm", std::vector<uint8_t>(ppm.begin(), ppm.end()));
  std::vector<uint8_t> webp = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X'};
  put_le(webp, 10, 4), put_le(webp, 0, 4), put_le(webp, 19999, 3), put_le(webp, 19999, 3);
  bombs.emplace_back("bomb.webp", webp);
  std::vector<uint8_t> tiff = {'I', 'I', 42, 0, 8, 0, 0, 0, 2, 0};
  for (uint32_t tag : {256u, 257u}) put_le(tiff, tag, 2), put_le(tiff, 4, 2), put_le(tiff, 1, 4), put_le(tiff, 20000, 4);
  put_le(tiff, 0, 4);
  bombs.emplace_back("bomb.tiff", tiff);
  for (const auto& [name, bytes] : bombs) {
    try {
      decode_image(bytes.data(), bytes.size(), name);
      ADD_FAILURE() << name << " decoded";
    } catch (const skd::FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(name), std::string::npos) << msg;
      EXPECT_NE(msg.find("more than the limit of 178956970"), std::string::npos) << msg;
    }
  }
  const std::string gif = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
  expect_error_naming([&] { decode_image(reinterpret_cast<const uint8_t*>(gif.data()), gif.size(), "anim.gif"); },
                      "not an image in a supported format");
  const std::vector<uint8_t> short_png(png.begin(), png.begin() + 20);
  expect_error_naming([&] { decode_image(short_png.data(), short_png.size(), "short.png"); },
                      "corrupt PNG header");
}

#ifdef SKD_TEST_OPENCV
// The header checks must not refuse a valid file: a small image in every format the image folder
// takes (.bmp .ppm .pgm .tiff .webp .png) decodes to its pixels.
TEST(DecodeImage, EverySupportedFormatDecodes) {
  cv::Mat bgr(3, 5, CV_8UC3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x) bgr.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(40 * x), uchar(60 * y), 200);
  for (const std::string ext : {".bmp", ".ppm", ".pgm", ".tiff", ".png", ".webp"}) {
    std::vector<uchar> buf;
    const bool gray = ext == ".pgm";
    cv::Mat src = bgr;
    if (gray) cv::extractChannel(bgr, src, 1);
    std::vector<int> params;
    if (ext == ".webp") params = {cv::IMWRITE_WEBP_QUALITY, 101};  // lossless
    ASSERT_TRUE(cv::imencode(ext, src, buf, params)) << ext;
    const Image img = decode_image(buf.data(), buf.size(), "small" + ext);
    ASSERT_EQ(img.width, 5) << ext;
    ASSERT_EQ(img.height, 3) << ext;
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x) {
        const uint8_t* p = img.row(y) + 3 * x;
        if (gray)
          EXPECT_EQ((std::vector<int>{p[0], p[1], p[2]}), (std::vector<int>{60 * y, 60 * y, 60 * y})) << ext;
        else
          EXPECT_EQ((std::vector<int>{p[0], p[1], p[2]}), (std::vector<int>{200, 60 * y, 40 * x})) << ext;
      }
  }
}

// A lower pixel limit refuses an image above it before decoding, naming the limit; at the limit
// the image decodes. A limit outside 1..kMaxImagePixels is a caller's error.
TEST(DecodeImage, LowerPixelLimit) {
  cv::Mat bgr(4, 5, CV_8UC3, cv::Scalar(1, 2, 3));
  std::vector<uchar> buf;
  ASSERT_TRUE(cv::imencode(".png", bgr, buf));
  EXPECT_EQ(decode_image(buf.data(), buf.size(), "a.png", 20).width, 5);
  expect_error_naming([&] { decode_image(buf.data(), buf.size(), "a.png", 19); }, "limit of 19");
  EXPECT_THROW(decode_image(buf.data(), buf.size(), "a.png", 0), std::invalid_argument);
  EXPECT_THROW(decode_image(buf.data(), buf.size(), "a.png", kMaxImagePixels + 1), std::invalid_argument);
}

TEST(DecodeImage, ConvertsLikePilConvertRgb) {
  const std::string dir = skd::test::scratch_dir("decode_modes");
  // OpenCV writes BGR(A); decoding must give RGB, with alpha dropped (not composited).
  cv::Mat bgra(2, 3, CV_8UC4);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      bgra.at<cv::Vec4b>(y, x) =
          cv::Vec4b(uchar(10 + x), uchar(20 + y), uchar(30 + x + y), uchar(x == 0 ? 0 : 128 * y));
  ASSERT_TRUE(cv::imwrite(dir + "/rgba.png", bgra));
  const Image rgba = decode_image_file(dir + "/rgba.png");
  ASSERT_EQ(rgba.width, 3);
  ASSERT_EQ(rgba.height, 2);
  ASSERT_EQ(rgba.channels, 3);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) {
      EXPECT_EQ(rgba.row(y)[x * 3 + 0], 30 + x + y);
      EXPECT_EQ(rgba.row(y)[x * 3 + 1], 20 + y);
      EXPECT_EQ(rgba.row(y)[x * 3 + 2], 10 + x);
    }

  cv::Mat gray(3, 4, CV_8UC1);
  for (int i = 0; i < 12; ++i) gray.data[i] = static_cast<uchar>(i * 20);
  ASSERT_TRUE(cv::imwrite(dir + "/gray.png", gray));
  const Image g = decode_image_file(dir + "/gray.png");
  ASSERT_EQ(g.channels, 3);
  ASSERT_EQ(g.pixels.size(), 36u);
  for (int i = 0; i < 12; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(g.pixels[i * 3 + c], i * 20) << i;

  // 16-bit samples keep their high byte (PIL's behaviour for 16-bit RGB PNGs).
  cv::Mat deep(1, 2, CV_16UC3, cv::Scalar(0x1234, 0xABCD, 0xFF00));
  ASSERT_TRUE(cv::imwrite(dir + "/deep.png", deep));
  const Image d = decode_image_file(dir + "/deep.png");
  EXPECT_EQ(d.pixels, (std::vector<uint8_t>{0xFF, 0xAB, 0x12, 0xFF, 0xAB, 0x12}));
  cv::Mat deep_bgra(1, 2, CV_16UC4, cv::Scalar(0x1234, 0xABCD, 0xFF00, 0x0101));
  ASSERT_TRUE(cv::imwrite(dir + "/deep_bgra.png", deep_bgra));
  EXPECT_EQ(decode_image_file(dir + "/deep_bgra.png").pixels,
            (std::vector<uint8_t>{0xFF, 0xAB, 0x12, 0xFF, 0xAB, 0x12}));
  cv::Mat deep_gray(2, 1, CV_16UC1);
  deep_gray.at<uint16_t>(0, 0) = 0x8001;
  deep_gray.at<uint16_t>(1, 0) = 0x00FF;
  ASSERT_TRUE(cv::imwrite(dir + "/deep_gray.png", deep_gray));
  EXPECT_EQ(decode_image_file(dir + "/deep_gray.png").pixels,
            (std::vector<uint8_t>{0x80, 0x80, 0x80, 0, 0, 0}));

  // The fixture's mode-L PNG decodes to three equal channels.
  const Image fx = decode_image_file(skd::test::fixture("transforms/gray_320x240.png"));
  ASSERT_EQ(fx.channels, 3);
  EXPECT_EQ(fx.width, 320);
  EXPECT_EQ(fx.height, 240);
  for (size_t i = 0; i < fx.pixels.size(); i += 3) {
    ASSERT_EQ(fx.pixels[i], fx.pixels[i + 1]);
    ASSERT_EQ(fx.pixels[i], fx.pixels[i + 2]);
  }
}
#endif
