// The direct libjpeg decode path: RGB and gray JPEGs agree with OpenCV's decoder, and corrupt data
// between intact markers is a clear error naming the file.
#include <gtest/gtest.h>

#include <cstring>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "skd/core/error.h"
#include "skd/data/eval_transform.h"

using namespace skd::data;

namespace {

std::vector<uint8_t> encode(const cv::Mat& m) {
  std::vector<uint8_t> buf;
  EXPECT_TRUE(cv::imencode(".jpg", m, buf, {cv::IMWRITE_JPEG_QUALITY, 85}));
  return buf;
}

cv::Mat pattern(int type) {
  cv::Mat m(37, 53, type);
  cv::randu(m, 0, 255);
  cv::GaussianBlur(m, m, {5, 5}, 2);
  return m;
}

TEST(JpegDecode, ColourMatchesOpenCvInRgbOrder) {
  const auto bytes = encode(pattern(CV_8UC3));
  const Image img = decode_image(bytes.data(), bytes.size(), "c.jpg");
  cv::Mat ref = cv::imdecode(bytes, cv::IMREAD_COLOR);
  cv::cvtColor(ref, ref, cv::COLOR_BGR2RGB);
  ASSERT_EQ(img.width, 53);
  ASSERT_EQ(img.height, 37);
  ASSERT_EQ(img.channels, 3);
  EXPECT_EQ(0, std::memcmp(img.pixels.data(), ref.data, img.pixels.size()));
}

TEST(JpegDecode, GrayBecomesThreeEqualChannels) {
  const auto bytes = encode(pattern(CV_8UC1));
  const Image img = decode_image(bytes.data(), bytes.size(), "g.jpg");
  const cv::Mat ref = cv::imdecode(bytes, cv::IMREAD_GRAYSCALE);
  ASSERT_EQ(img.channels, 3);
  for (int i = 0; i < img.width * img.height; ++i) {
    ASSERT_EQ(img.pixels[3 * i], ref.data[i]);
    ASSERT_EQ(img.pixels[3 * i + 1], ref.data[i]);
    ASSERT_EQ(img.pixels[3 * i + 2], ref.data[i]);
  }
}

TEST(JpegDecode, BrokenHeaderIsAFormatErrorNamingTheFile) {
  auto bytes = encode(pattern(CV_8UC3));
  // Destroy the frame header (SOF0) but keep the markers walkable up to EOI.
  for (size_t i = 2; i + 9 < bytes.size(); ++i) {
    if (bytes[i] == 0xFF && bytes[i + 1] == 0xC0) {
      bytes[i + 5] = 0;  // height 0
      bytes[i + 6] = 0;
      bytes[i + 9] = 7;  // 7 components
      break;
    }
  }
  try {
    decode_image(bytes.data(), bytes.size(), "broken.jpg");
    FAIL() << "expected an error";
  } catch (const skd::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.jpg"), std::string::npos) << e.what();
  }
}

}  // namespace
