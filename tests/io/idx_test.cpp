// IDX reader: the real Fashion-MNIST files (counts, label histograms) and malformed inputs.
#include <gtest/gtest.h>

#include <zlib.h>

#include <array>
#include <filesystem>
#include <fstream>

#include "skd/core/error.h"
#include "skd/io/idx.h"
#include "test_util.h"

using namespace skd::io;

namespace {

const std::string kDir = "/usr/share/datasets/fashion-mnist";

std::vector<uint8_t> idx_bytes(std::vector<uint32_t> dims, size_t data_bytes, uint8_t type = 0x08) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  b.resize(b.size() + data_bytes, 7);
  return b;
}

std::string error_of(const std::vector<uint8_t>& b) {
  try {
    parse_idx(b.data(), b.size(), "x.idx");
  } catch (const skd::FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(Idx, FashionMnistCountsAndBalancedLabels) {
  ASSERT_TRUE(std::filesystem::exists(kDir)) << "Debian package dataset-fashion-mnist is not installed";
  const auto train_images = read_idx(kDir + "/train-images-idx3-ubyte.gz");
  EXPECT_EQ(train_images.shape, (std::vector<int64_t>{60000, 28, 28}));
  for (const auto& [file, count] : {std::pair<std::string, int>{"train-labels-idx1-ubyte.gz", 6000},
                                    {"t10k-labels-idx1-ubyte.gz", 1000}}) {
    const auto labels = read_idx(kDir + "/" + file);
    ASSERT_EQ(labels.shape.size(), 1u);
    EXPECT_EQ(labels.shape[0], count * 10);
    std::array<int, 10> hist{};
    for (uint8_t l : labels.data) {
      ASSERT_LT(l, 10);
      ++hist[l];
    }
    for (int c = 0; c < 10; ++c) EXPECT_EQ(hist[c], count) << file << " class " << c;
  }
  const auto test_images = read_idx(kDir + "/t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(test_images.shape, (std::vector<int64_t>{10000, 28, 28}));
}

TEST(Idx, MalformedFilesNameTheSource) {
  EXPECT_NE(error_of({}).find("x.idx"), std::string::npos);
  auto bad_magic = idx_bytes({2}, 2);
  bad_magic[0] = 1;
  EXPECT_NE(error_of(bad_magic).find("magic"), std::string::npos);
  EXPECT_NE(error_of(idx_bytes({2}, 8, 0x0D)).find("element type"), std::string::npos);
  EXPECT_NE(error_of(idx_bytes({10, 28, 28}, 100)).find("truncated"), std::string::npos);
  EXPECT_NE(error_of(idx_bytes({2}, 3)).find("trailing"), std::string::npos);
  EXPECT_NE(error_of(idx_bytes({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, 0)).find("x.idx"), std::string::npos);
  auto header_cut = idx_bytes({4, 4}, 0);
  header_cut.resize(9);
  EXPECT_NE(error_of(header_cut).find("header"), std::string::npos);
  EXPECT_EQ(error_of(idx_bytes({3, 2}, 6)), "");
}

TEST(Idx, CorruptAndTruncatedGzip) {
  const auto dir = skd::test::scratch_dir("idx_test");
  const auto plain = idx_bytes({1000}, 1000);
  std::vector<uint8_t> gz(compressBound(plain.size()) + 64);
  // gzip container through zlib's deflateInit2 with a gzip wrapper.
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = const_cast<Bytef*>(plain.data());
  zs.avail_in = static_cast<uInt>(plain.size());
  zs.next_out = gz.data();
  zs.avail_out = static_cast<uInt>(gz.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  gz.resize(zs.total_out);
  deflateEnd(&zs);
  const auto ok = gunzip(gz.data(), gz.size(), "ok.gz");
  EXPECT_EQ(ok, plain);
  EXPECT_THROW(gunzip(gz.data(), gz.size() / 2, "half.gz"), skd::FormatError);
  auto corrupt = gz;
  for (size_t i = 12; i < corrupt.size() - 8; ++i) corrupt[i] ^= 0x5A;
  EXPECT_THROW(gunzip(corrupt.data(), corrupt.size(), "corrupt.gz"), skd::FormatError);
  EXPECT_THROW(gunzip(gz.data(), gz.size(), "limited.gz", 100), skd::FormatError);
  const auto path = dir + "/cut.gz";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(gz.data()), gz.size() - 10);
  try {
    read_idx(path);
    FAIL();
  } catch (const skd::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.gz"), std::string::npos) << e.what();
  }
}

}  // namespace
