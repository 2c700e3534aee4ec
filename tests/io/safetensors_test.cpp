// Tests of the safetensors reader/writer: round trips, the timm fixtures, and hostile inputs.
#include "skd/io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "test_util.h"

namespace skd::io {
namespace {

using Bytes = std::vector<uint8_t>;

const char* const kSource = "hostile.safetensors";

// A safetensors image with an arbitrary header text and data block; `len` overrides the length
// field so tests can make it lie.
Bytes image(const std::string& header, const Bytes& data = {}, std::optional<uint64_t> len = {}) {
  Bytes out(8);
  uint64_t n = len.value_or(header.size());
  for (int i = 0; i < 8; ++i, n >>= 8) out[i] = static_cast<uint8_t>(n & 0xff);
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes pattern(size_t n, uint8_t seed = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + 31 * i);
  return b;
}

TensorRecord record(DType dtype, std::vector<int64_t> shape, uint8_t seed = 1) {
  TensorRecord r;
  r.dtype = dtype;
  r.shape = std::move(shape);
  r.data = pattern(static_cast<size_t>(r.numel()) * dtype_size(dtype), seed);
  return r;
}

// Parses `bytes` expecting skd::FormatError whose message contains the source name and every
// string in `needles`.
void expect_safetensors_error(const Bytes& bytes, const std::vector<std::string>& needles = {}) {
  try {
    parse_safetensors(bytes.data(), bytes.size(), kSource);
    ADD_FAILURE() << "no exception thrown";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(kSource), std::string::npos) << "source missing from: " << msg;
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' missing from: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type, message: " << e.what();
  }
}

void expect_same(const SafetensorsContent& a, const SafetensorsContent& b) {
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [key, rec] : a.tensors) {
    SCOPED_TRACE(key);
    auto it = b.tensors.find(key);
    ASSERT_NE(it, b.tensors.end());
    EXPECT_EQ(rec.dtype, it->second.dtype);
    EXPECT_EQ(rec.shape, it->second.shape);
    EXPECT_EQ(rec.data, it->second.data);
  }
}

uint64_t header_length(const Bytes& file) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | file[i];
  return n;
}

std::string header_text(const Bytes& file) {
  return std::string(file.begin() + 8, file.begin() + 8 + header_length(file));
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(SafetensorsRoundTrip, AllDTypesScalarsZeroSizeAndMetadata) {
  SafetensorsContent c;
  uint8_t seed = 1;
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U8, DType::Bool}) {
    const std::string name = dtype_name(d);
    c.tensors["t." + name] = record(d, {2, 3}, seed++);
    c.tensors["scalar." + name] = record(d, {}, seed++);
    c.tensors["empty." + name] = record(d, {0, 5}, seed++);
  }
  c.metadata = {{"format", "pt"}, {"note", "quotes \" and \\ and unicode \xc3\xa9"}};

  const Bytes file = serialize_safetensors(c);
  const SafetensorsContent back = parse_safetensors(file.data(), file.size(), "mem");
  expect_same(c, back);
  EXPECT_EQ(back.tensors.at("scalar.F64").numel(), 1);
  EXPECT_EQ(back.tensors.at("scalar.F64").data.size(), 8u);
  EXPECT_TRUE(back.tensors.at("empty.I8").data.empty());
  EXPECT_EQ(back.tensors.at("t.BF16").shape, (std::vector<int64_t>{2, 3}));
}

TEST(SafetensorsRoundTrip, HeaderIsCompactSortedAndPaddedTo8) {
  SafetensorsContent c;
  c.tensors["b"] = record(DType::F32, {3});
  c.tensors["a"] = record(DType::U8, {5});
  c.tensors["c"] = record(DType::I16, {});
  c.metadata["format"] = "pt";
  const Bytes file = serialize_safetensors(c);

  const uint64_t n = header_length(file);
  EXPECT_EQ((8 + n) % 8, 0u);
  const std::string header = header_text(file);
  const std::string json_text = header.substr(0, header.find_last_not_of(' ') + 1);
  EXPECT_EQ(header.substr(json_text.size()), std::string(header.size() - json_text.size(), ' '));
  EXPECT_EQ(json_text,
            "{\"__metadata__\":{\"format\":\"pt\"},"
            "\"a\":{\"data_offsets\":[0,5],\"dtype\":\"U8\",\"shape\":[5]},"
            "\"b\":{\"data_offsets\":[5,17],\"dtype\":\"F32\",\"shape\":[3]},"
            "\"c\":{\"data_offsets\":[17,19],\"dtype\":\"I16\",\"shape\":[]}}");
  // Data in key order right after the header.
  ASSERT_EQ(file.size(), 8 + n + 19);
  Bytes expected = c.tensors["a"].data;
  expected.insert(expected.end(), c.tensors["b"].data.begin(), c.tensors["b"].data.end());
  expected.insert(expected.end(), c.tensors["c"].data.begin(), c.tensors["c"].data.end());
  EXPECT_EQ(Bytes(file.begin() + 8 + static_cast<std::ptrdiff_t>(n), file.end()), expected);
}

TEST(SafetensorsRoundTrip, NoMetadataKeyWhenMetadataEmpty) {
  SafetensorsContent c;
  c.tensors["x"] = record(DType::F32, {1});
  const Bytes file = serialize_safetensors(c);
  EXPECT_EQ(header_text(file).find("__metadata__"), std::string::npos);
  EXPECT_TRUE(parse_safetensors(file.data(), file.size(), "mem").metadata.empty());
}

TEST(SafetensorsRoundTrip, EmptyContent) {
  const Bytes file = serialize_safetensors({});
  EXPECT_EQ(file.size(), 16u);
  EXPECT_EQ(header_text(file), "{}      ");
  const SafetensorsContent back = parse_safetensors(file.data(), file.size(), "mem");
  EXPECT_TRUE(back.tensors.empty());
  EXPECT_TRUE(back.metadata.empty());
}

TEST(SafetensorsRoundTrip, WriteAndReadFile) {
  const std::string dir = test::scratch_dir("safetensors_write_read");
  const std::string path = dir + "/model.safetensors";
  SafetensorsContent c;
  c.tensors["w"] = record(DType::F32, {4, 4});
  c.tensors["b"] = record(DType::F16, {4});
  c.metadata["format"] = "pt";
  write_safetensors(path, c);
  expect_same(c, read_safetensors(path));
  EXPECT_EQ(read_file_bytes(path), serialize_safetensors(c));

  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "temporary files left behind in " << dir;
}

TEST(SafetensorsRoundTrip, AcceptsGapsTrailingBytesAndUnsortedOffsets) {
  // Other writers may order data differently or leave slack; only overlap and range matter.
  const Bytes data = pattern(20);
  const Bytes file = image(
      "{\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[10,14]},"
      "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
      "\"z2\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[14,14]}}  \n",
      data);
  const SafetensorsContent c = parse_safetensors(file.data(), file.size(), "mem");
  ASSERT_EQ(c.tensors.size(), 4u);
  EXPECT_EQ(c.tensors.at("a").data, Bytes(data.begin() + 10, data.begin() + 14));
  EXPECT_EQ(c.tensors.at("b").data, Bytes(data.begin(), data.begin() + 4));
  EXPECT_TRUE(c.tensors.at("z").data.empty());
  EXPECT_EQ(c.tensors.at("z2").shape, (std::vector<int64_t>{3, 0}));
}

// ---------------------------------------------------------------------------------------------
// Fixtures

// Compares a weights file with the "state_dict" list of the fixture's JSON description.
void check_against_description(const SafetensorsContent& c, const std::string& json_path) {
  std::ifstream in(json_path);
  ASSERT_TRUE(in) << json_path;
  const nlohmann::json desc = nlohmann::json::parse(in);
  const auto& sd = desc.at("state_dict");
  ASSERT_EQ(sd.size(), c.tensors.size());
  for (const auto& entry : sd) {
    const std::string name = entry.at("name");
    SCOPED_TRACE(name);
    auto it = c.tensors.find(name);
    ASSERT_NE(it, c.tensors.end());
    EXPECT_EQ(dtype_name(it->second.dtype), entry.at("dtype").get<std::string>());
    EXPECT_EQ(it->second.shape, entry.at("shape").get<std::vector<int64_t>>());
    EXPECT_EQ(it->second.data.size(),
              static_cast<size_t>(it->second.numel()) * dtype_size(it->second.dtype));
  }
}

size_t count_prefix(const TensorMap& m, const std::string& prefix) {
  size_t n = 0;
  for (const auto& [key, rec] : m) {
    (void)rec;
    n += key.rfind(prefix, 0) == 0;
  }
  return n;
}

TEST(SafetensorsFixture, VitMicro32) {
  const std::string path = test::fixture("timm/vit_micro_32.safetensors");
  ASSERT_FALSE(path.empty());
  const SafetensorsContent c = read_safetensors(path);
  EXPECT_EQ(c.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(c.tensors.size(), 56u);
  EXPECT_EQ(count_prefix(c.tensors, "blocks."), 48u);  // 4 blocks x 12 tensors
  EXPECT_EQ(count_prefix(c.tensors, "blocks.3."), 12u);
  EXPECT_EQ(count_prefix(c.tensors, "blocks.4."), 0u);

  const TensorRecord& cls = c.tensors.at("cls_token");
  EXPECT_EQ(cls.dtype, DType::F32);
  EXPECT_EQ(cls.shape, (std::vector<int64_t>{1, 1, 64}));
  ASSERT_EQ(cls.data.size(), 256u);
  // First element, checked with Python's struct module: -0.030511554 (bytes 5e f3 f9 bc).
  EXPECT_EQ(Bytes(cls.data.begin(), cls.data.begin() + 4), (Bytes{0x5e, 0xf3, 0xf9, 0xbc}));
  float first = 0;
  std::memcpy(&first, cls.data.data(), 4);
  EXPECT_FLOAT_EQ(first, -0.030511554f);

  const TensorRecord& fc2 = c.tensors.at("blocks.3.mlp.fc2.weight");
  EXPECT_EQ(fc2.dtype, DType::F32);
  EXPECT_EQ(fc2.shape, (std::vector<int64_t>{64, 256}));
  // Last element: bytes 28 36 a3 bc.
  EXPECT_EQ(Bytes(fc2.data.end() - 4, fc2.data.end()), (Bytes{0x28, 0x36, 0xa3, 0xbc}));

  check_against_description(c, test::fixture("timm/vit_micro_32.json"));
}

TEST(SafetensorsFixture, DeitTinyPatch16_224) {
  const std::string path = test::fixture("timm/deit_tiny_patch16_224.safetensors");
  ASSERT_FALSE(path.empty());
  const SafetensorsContent c = read_safetensors(path);
  EXPECT_EQ(c.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(c.tensors.size(), 152u);  // 12 blocks x 12 tensors + 8 others
  EXPECT_EQ(count_prefix(c.tensors, "blocks."), 144u);
  EXPECT_EQ(count_prefix(c.tensors, "blocks.11."), 12u);
  EXPECT_EQ(c.tensors.at("cls_token").shape, (std::vector<int64_t>{1, 1, 192}));
  EXPECT_EQ(c.tensors.at("pos_embed").shape, (std::vector<int64_t>{1, 197, 192}));
  EXPECT_EQ(c.tensors.at("patch_embed.proj.weight").shape,
            (std::vector<int64_t>{192, 3, 16, 16}));
  check_against_description(c, test::fixture("timm/deit_tiny_patch16_224.json"));
}

TEST(SafetensorsFixture, ReserializedFixtureParsesToSameContent) {
  const std::string path = test::fixture("timm/vit_micro_32.safetensors");
  ASSERT_FALSE(path.empty());
  const SafetensorsContent c = read_safetensors(path);
  const Bytes again = serialize_safetensors(c);
  EXPECT_EQ(again.size(), read_file_bytes(path).size());
  expect_same(c, parse_safetensors(again.data(), again.size(), "again"));
}

TEST(SafetensorsFixture, MissingFileIsRuntimeErrorNamingPath) {
  const std::string path = test::scratch_dir("safetensors_missing") + "/nope.safetensors";
  try {
    read_safetensors(path);
    ADD_FAILURE() << "no exception thrown";
  } catch (const FormatError& e) {
    ADD_FAILURE() << "an I/O failure should not be a FormatError: " << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(SafetensorsFixture, TruncatedFileNamesPath) {
  const std::string src = test::fixture("timm/vit_micro_32.safetensors");
  ASSERT_FALSE(src.empty());
  Bytes bytes = read_file_bytes(src);
  bytes.resize(bytes.size() / 2);  // cut in the middle of the data block
  const std::string path = test::scratch_dir("safetensors_truncated") + "/cut.safetensors";
  write_file_atomic(path, bytes.data(), bytes.size());
  try {
    read_safetensors(path);
    ADD_FAILURE() << "no exception thrown";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs

const std::string kGood = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}}";

TEST(SafetensorsMalformed, SanityGoodImageParses) {
  const Bytes file = image(kGood, pattern(48));
  EXPECT_EQ(parse_safetensors(file.data(), file.size(), kSource).tensors.size(), 1u);
}

TEST(SafetensorsMalformed, EmptyFile) {
  expect_safetensors_error({}, {"0 bytes", "too short"});
}

TEST(SafetensorsMalformed, FewerThan8Bytes) {
  expect_safetensors_error({1, 0, 0, 0, 0}, {"5 bytes", "too short"});
}

TEST(SafetensorsMalformed, HeaderLengthLargerThanFile) {
  expect_safetensors_error(image(kGood, pattern(48), kGood.size() + 49), {"header length"});
}

TEST(SafetensorsMalformed, HeaderLength2Pow62) {
  expect_safetensors_error(image(kGood, pattern(48), UINT64_C(1) << 62),
                      {"header length 4611686018427387904"});
}

TEST(SafetensorsMalformed, HeaderLengthOver100MiB) {
  const uint64_t n = (UINT64_C(100) << 20) + 1;
  Bytes file = image(std::string(n, ' '));
  expect_safetensors_error(file, {"header length 104857601", "100 MiB"});
}

TEST(SafetensorsMalformed, ZeroHeaderLength) {
  expect_safetensors_error(image("", {}, 0), {"JSON"});
}

TEST(SafetensorsMalformed, NonJsonHeader) {
  expect_safetensors_error(image("{\"x\": nope}"), {"not valid JSON"});
  expect_safetensors_error(image("{\"x\":{}} trailing"), {"not valid JSON"});
  expect_safetensors_error(image("{\"bad utf8 \xff\":1}"), {"not valid JSON"});
}

TEST(SafetensorsMalformed, HeaderNotAnObject) {
  expect_safetensors_error(image("[1,2,3]"), {"must be a JSON object", "array"});
  expect_safetensors_error(image("\"text\""), {"must be a JSON object", "string"});
}

TEST(SafetensorsMalformed, DeepNestingRefused) {
  expect_safetensors_error(image(std::string(100000, '[') + std::string(100000, ']')), {"nests"});
  expect_safetensors_error(image("{\"x\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}"),
                      {"nests"});
}

TEST(SafetensorsMalformed, EntryNotAnObject) {
  expect_safetensors_error(image("{\"w\":[1,2]}"), {"tensor 'w'", "must be an object", "array"});
}

TEST(SafetensorsMalformed, MissingOrUnexpectedField) {
  expect_safetensors_error(image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", pattern(4)),
                      {"tensor 'w'", "missing field \"data_offsets\""});
  expect_safetensors_error(
      image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}",
            pattern(4)),
      {"tensor 'w'", "unexpected field 'extra'"});
}

TEST(SafetensorsMalformed, WrongFieldTypes) {
  expect_safetensors_error(image("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}",
                            pattern(4)),
                      {"tensor 'w'", "\"dtype\" must be a string", "found number 7"});
  expect_safetensors_error(image("{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}",
                            pattern(4)),
                      {"tensor 'w'", "\"shape\" must be an array", "found string"});
  expect_safetensors_error(image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
                            pattern(4)),
                      {"tensor 'w'", "shape[0]", "found number 1.5"});
  expect_safetensors_error(image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}",
                            pattern(4)),
                      {"tensor 'w'", "\"data_offsets\" must be [begin, end]"});
}

TEST(SafetensorsMalformed, UnknownDType) {
  expect_safetensors_error(image("{\"w\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                            pattern(1)),
                      {"tensor 'w'", "unknown dtype 'F8'", "BF16"});
}

TEST(SafetensorsMalformed, NegativeShape) {
  expect_safetensors_error(image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,0]}}"),
                      {"tensor 'w'", "shape[1]", "non-negative", "-3"});
}

TEST(SafetensorsMalformed, ShapeProductOverflow) {
  // 2^32 * 2^32 elements overflow int64; 2^31 * 2^31 F64 elements fit but their bytes do not.
  expect_safetensors_error(
      image("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}"),
      {"tensor 'w'", "too large"});
  expect_safetensors_error(
      image("{\"w\":{\"dtype\":\"F64\",\"shape\":[2147483648,2147483648],"
            "\"data_offsets\":[0,0]}}"),
      {"tensor 'w'", "too large"});
  expect_safetensors_error(
      image("{\"w\":{\"dtype\":\"U8\",\"shape\":[18446744073709551615],\"data_offsets\":[0,0]}}"),
      {"tensor 'w'", "shape[0]"});
}

TEST(SafetensorsMalformed, OffsetsOutOfRange) {
  expect_safetensors_error(image("{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}}",
                            pattern(47)),
                      {"tensor 'w'", "[0, 48)", "exceed the data block of 47 bytes"});
  expect_safetensors_error(image("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}",
                            pattern(8)),
                      {"tensor 'w'", "begin after end"});
  // A header claiming a 100 GB tensor is refused without allocating it.
  expect_safetensors_error(
      image("{\"w\":{\"dtype\":\"F32\",\"shape\":[25000000000],"
            "\"data_offsets\":[0,100000000000]}}",
            pattern(16)),
      {"tensor 'w'", "exceed the data block of 16 bytes"});
}

TEST(SafetensorsMalformed, OffsetsLengthMismatchWithShape) {
  expect_safetensors_error(
      image("{\"blocks.0.attn.qkv.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],"
            "\"data_offsets\":[0,100]}}",
            pattern(100)),
      {"tensor 'blocks.0.attn.qkv.weight'",
       "data_offsets [0, 100) hold 100 bytes but dtype F32 and shape [3,4] need 48"});
  expect_safetensors_error(image("{\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}}",
                            pattern(8)),
                      {"tensor 's'", "need 8"});
}

TEST(SafetensorsMalformed, OverlappingTensors) {
  expect_safetensors_error(
      image("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}",
            pattern(10)),
      {"'b'", "overlap", "'a'"});
  // Also when the overlapping pair is not adjacent in sorted order.
  expect_safetensors_error(
      image("{\"big\":{\"dtype\":\"U8\",\"shape\":[10],\"data_offsets\":[0,10]},"
            "\"m1\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
            "\"m2\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[5,7]}}",
            pattern(10)),
      {"overlap", "'big'"});
  // A zero-size tensor inside another one.
  expect_safetensors_error(
      image("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
            "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[3,3]}}",
            pattern(8)),
      {"'e'", "overlap"});
}

TEST(SafetensorsMalformed, DuplicateKey) {
  expect_safetensors_error(
      image("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
            pattern(2)),
      {"duplicate tensor key 'w'"});
  expect_safetensors_error(
      image("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1]}}",
            pattern(1)),
      {"duplicate field 'dtype'", "'w'"});
  expect_safetensors_error(image("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}"),
                      {"duplicate field 'a'", "__metadata__"});
}

TEST(SafetensorsMalformed, MetadataNotStrings) {
  expect_safetensors_error(image("{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}"),
                      {"__metadata__", "'epoch'", "must be a string", "number 3"});
  expect_safetensors_error(image("{\"__metadata__\":[\"pt\"]}"),
                      {"__metadata__", "must be an object", "array"});
}

TEST(SafetensorsMalformed, TruncatedData) {
  SafetensorsContent c;
  c.tensors["a"] = record(DType::F32, {16});
  c.tensors["b"] = record(DType::F32, {16});
  Bytes file = serialize_safetensors(c);
  file.resize(file.size() - 30);  // "b" (64 bytes, last in key order) loses its tail
  expect_safetensors_error(file, {"tensor 'b'", "exceed the data block"});
}

TEST(SafetensorsMalformed, ControlCharactersInKeysAreEscaped) {
  try {
    const Bytes file =
        image("{\"a\\nb\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", pattern(1));
    parse_safetensors(file.data(), file.size(), kSource);
    ADD_FAILURE() << "no exception thrown";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("'a\\x0ab'"), std::string::npos) << msg;
  }
}

// ---------------------------------------------------------------------------------------------
// Serialization of invalid records

TEST(SafetensorsSerialize, DataSizeDisagreeingWithShapeThrowsInvalidArgument) {
  SafetensorsContent c;
  c.tensors["layer.weight"] = record(DType::F32, {3, 4});
  c.tensors["layer.weight"].data.pop_back();
  try {
    serialize_safetensors(c);
    ADD_FAILURE() << "no exception thrown";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'layer.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("47 bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("need 48"), std::string::npos) << msg;
  }
  const std::string path = test::scratch_dir("safetensors_bad_write") + "/x.safetensors";
  EXPECT_THROW(write_safetensors(path, c), std::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SafetensorsSerialize, NegativeShapeAndReservedKeyThrowInvalidArgument) {
  SafetensorsContent neg;
  neg.tensors["n"].shape = {-1};
  EXPECT_THROW(serialize_safetensors(neg), std::invalid_argument);

  SafetensorsContent reserved;
  reserved.tensors["__metadata__"] = record(DType::U8, {1});
  EXPECT_THROW(serialize_safetensors(reserved), std::invalid_argument);
}

}  // namespace
}  // namespace skd::io
