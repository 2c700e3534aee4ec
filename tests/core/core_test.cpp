// core helpers: the JSON-file reader's error policy, the unbiased draw, the ETA format.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include "skd/core/error.h"
#include "skd/core/json_file.h"
#include "skd/core/progress.h"
#include "skd/core/random.h"
#include "test_util.h"

using namespace skd;

namespace {

std::string write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST(JsonFile, ReadsAndNamesTheFileInErrors) {
  const auto dir = test::scratch_dir("json_file");
  EXPECT_EQ(read_json_file(write(dir + "/ok.json", R"({"a": [1, 2]})"), "thing")["a"][1], 2);
  try {
    read_json_file(dir + "/missing.json", "latency table", "measure one");
    FAIL() << "no error for a missing file";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "latency table '" + dir + "/missing.json' cannot be opened (measure one)");
  }
  try {
    read_json_file(write(dir + "/bad.json", R"({"a": )"), "--arch: architecture file");
    FAIL() << "no error for malformed content";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("--arch: architecture file '" + dir + "/bad.json' is not valid JSON"),
              std::string::npos)
        << e.what();
  }
}

// Issue 25: every JSON file goes through the bounded parser; a directory is named as such.
TEST(JsonFile, HostileFilesAreErrorsNamingTheFile) {
  const auto dir = test::scratch_dir("json_file_hostile");
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1" + std::string(100000, '}');
  const auto deep_path = write(dir + "/deep.json", deep);
  EXPECT_EQ(test::error_of<FormatError>([&] { read_json_file(deep_path, "latency table"); }),
            "latency table '" + deep_path + "' nests deeper than 256 levels (the limit for JSON the toolkit reads)");
  const auto dup_path = write(dir + "/dup.json", R"({"lr": 0.1, "epochs": 2, "lr": 5})");
  try {
    read_json_file_of("config", dup_path, "");
    FAIL() << "duplicate key accepted";
  } catch (const ParameterFormatError& e) {
    EXPECT_EQ(e.render([](const std::string& k) { return "--" + k; }),
              "--config '" + dup_path + "' has the key 'lr' twice in one object (duplicate keys are refused)");
  }
  try {
    read_json_file_of("config", dir, "");
    FAIL() << "a directory was read";
  } catch (const ParameterError& e) {
    EXPECT_EQ(std::string(e.what()), "config '" + dir + "' is a directory, not a JSON file");
  }
  EXPECT_NE(test::error_of<std::invalid_argument>([&] { read_json_file(dir, "latency table"); })
                .find("is a directory"),
            std::string::npos);
}

TEST(Random, UniformBelowIsInRangeSeededAndCoversEveryValue) {
  std::mt19937_64 a(7), b(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t r = uniform_below(a, 6);
    EXPECT_LT(r, 6u);
    EXPECT_EQ(r, uniform_below(b, 6));
    seen.insert(r);
  }
  EXPECT_EQ(seen.size(), 6u);
  std::mt19937_64 c(1);
  EXPECT_EQ(uniform_below(c, 1), 0u);
  // n = 2^63 + 1: about half of the engine's values are rejected, and none is ever out of range.
  for (int i = 0; i < 100; ++i) EXPECT_LE(uniform_below(c, (uint64_t{1} << 63) + 1), uint64_t{1} << 63);
}

TEST(Progress, EtaFormat) {
  EXPECT_EQ(format_eta(0), "0m00s");
  EXPECT_EQ(format_eta(187.9), "3m07s");
  EXPECT_EQ(format_eta(3725), "1h02m");
}
