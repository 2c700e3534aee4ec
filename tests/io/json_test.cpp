// The one bounded JSON parser (skd/io/json.h): deep nesting and duplicate keys refused while
// parsing (docs/reliability.md, "Hostile input", issue 25). Inputs are made by the tests.
#include "skd/io/json.h"

#include <gtest/gtest.h>

#include <string>

#include "skd/core/error.h"
#include "test_util.h"

namespace skd::io {
namespace {

std::string nested_arrays(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

std::string nested_objects(size_t levels) {
  std::string s;
  for (size_t i = 0; i < levels; ++i) s += "{\"a\":";
  s += "1";
  return s + std::string(levels, '}');
}

TEST(BoundedJson, ParsesOrdinaryJson) {
  const auto j = parse_json_bounded(R"({"a": [1, {"b": "c"}], "d": {"a": 2}})", "t.json");
  EXPECT_EQ(j["a"][1]["b"], "c");
  EXPECT_EQ(j["d"]["a"], 2);  // the same key in different objects is fine
}

TEST(BoundedJson, DeepNestingIsRefusedNotACrash) {
  // 100,000 levels overflowed the stack in nlohmann's recursive destruction (a segfault in every app).
  for (const auto& text : {nested_arrays(100000), nested_objects(100000), std::string(100000, '[')}) {
    const auto m = test::error_of<JsonError>([&] { parse_json_bounded(text, "--config 'deep.json'"); });
    EXPECT_EQ(m, "--config 'deep.json' nests deeper than 256 levels (the limit for JSON the toolkit reads)");
  }
  EXPECT_NO_THROW(parse_json_bounded(nested_arrays(kMaxJsonDepth), "t"));
  EXPECT_NO_THROW(parse_json_bounded(nested_objects(kMaxJsonDepth), "t"));
  EXPECT_NE(test::error_of<JsonError>([&] { parse_json_bounded(nested_arrays(kMaxJsonDepth + 1), "t"); })
                .find("nests deeper than 256 levels"),
            std::string::npos);
  EXPECT_NE(test::error_of<JsonError>([&] { parse_json_bounded(nested_arrays(4), "t", 3); }).find("deeper than 3"),
            std::string::npos);
}

TEST(BoundedJson, DuplicateKeysAreRefusedNamingTheKey) {
  EXPECT_EQ(test::error_of<JsonError>([] { parse_json_bounded(R"({"lr": 1, "lr": 2})", "cfg.json"); }),
            "cfg.json has the key 'lr' twice in one object (duplicate keys are refused)");
  const auto nested = test::error_of<JsonError>(
      [] { parse_json_bounded(R"({"provenance": {"source": "a", "x": [{"k": 1, "k": 2}]}})", "m"); });
  EXPECT_NE(nested.find("the key 'k' twice"), std::string::npos) << nested;
  try {
    parse_json_bounded(R"({"a": 1, "a": 1})", "cfg.json");
    FAIL();
  } catch (const JsonError& e) {
    EXPECT_EQ(e.detail(), "has the key 'a' twice in one object (duplicate keys are refused)");
  }
  // A huge key is echoed cut short.
  const std::string big(1 << 20, 'k');
  const auto m = test::error_of<FormatError>(
      [&] { parse_json_bounded("{\"" + big + "\": 1, \"" + big + "\": 2}", "cfg.json"); });
  EXPECT_LT(m.size(), 300u);
  EXPECT_NE(m.find("... (1048576 bytes)"), std::string::npos) << m;
}

TEST(BoundedJson, InvalidJsonNamesWhat) {
  const auto m = test::error_of<FormatError>([] { parse_json_bounded(R"({"a": )", "x.json"); });
  EXPECT_EQ(m.rfind("x.json is not valid JSON: [json.exception.parse_error.101]", 0), 0u) << m;
}

TEST(Excerpt, CutsLongValues) {
  EXPECT_EQ(excerpt("short"), "short");
  EXPECT_EQ(excerpt(std::string(100, 'x'), 10), "xxxxxxxxxx... (100 bytes)");
}

}  // namespace
}  // namespace skd::io
