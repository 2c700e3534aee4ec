// Options as data (skd/core/options.h) and errors that name config keys (skd::Keyed).
#include <gtest/gtest.h>

#include <optional>

#include "skd/core/error.h"
#include "skd/core/options.h"
#include "test_util.h"

namespace {

enum class Color { RED, GREEN };
constexpr std::pair<const char*, Color> kColors[] = {{"red", Color::RED}, {"green", Color::GREEN}};

struct Inner {
  double rate = 0.5;
  Color color = Color::RED;
  template <typename V>
  void visit(V&& v) {
    v("inner_rate", rate);
    v("color", color, kColors);
  }
};

struct Outer {
  std::string name = "x";
  int64_t count = 3;
  uint64_t seed = 0;
  bool on = true;
  Inner inner;
  template <typename V>
  void visit(V&& v) {
    v("name", name);
    v("count", count);
    v("seed", seed);
    v("on", on);
    inner.visit(v);
  }
};

struct WithOptional {
  std::optional<int64_t> code;
  std::optional<double> ratio;
  template <typename V>
  void visit(V&& v) {
    v("code", code);
    v("ratio", ratio);
  }
};

}  // namespace

TEST(Options, JsonRoundTripIsFlatAndNamesEnums) {
  Outer o;
  o.inner.color = skd::options::from_json<Outer>({{"color", "green"}}, "t").inner.color;
  const auto j = skd::options::to_json(o);
  EXPECT_EQ(j, nlohmann::json({{"name", "x"}, {"count", 3}, {"seed", 0}, {"on", true}, {"inner_rate", 0.5},
                               {"color", "green"}}));
  const auto back = skd::options::from_json<Outer>(j, "t");
  EXPECT_EQ(skd::options::to_json(back), j);
  EXPECT_EQ(skd::options::keys<Outer>(),
            (std::vector<std::string>{"name", "count", "seed", "on", "inner_rate", "color"}));
}

// A std::optional field is null until a value is given; null resets it; a value is checked as its type.
TEST(Options, OptionalFieldsAreNullUntilGiven) {
  EXPECT_EQ(skd::options::to_json(WithOptional{}), nlohmann::json({{"code", nullptr}, {"ratio", nullptr}}));
  const auto given = skd::options::from_json<WithOptional>({{"code", -1}}, "t");
  ASSERT_TRUE(given.code.has_value());
  EXPECT_EQ(*given.code, -1);
  EXPECT_FALSE(given.ratio.has_value());
  EXPECT_EQ(skd::options::to_json(given), nlohmann::json({{"code", -1}, {"ratio", nullptr}}));
  EXPECT_FALSE(skd::options::from_json<WithOptional>({{"code", nullptr}}, "t", given).code.has_value());
  EXPECT_EQ(skd::test::error_of([] { skd::options::from_json<WithOptional>({{"code", 0.5}}, "c.json"); }),
            "c.json: key 'code' has the wrong type (0.5)");
  const auto resolved = skd::options::resolve<WithOptional>({{{{"ratio", 0.25}}, "a"}, {{{"code", 3}}, "b"}});
  EXPECT_EQ(resolved.code.value_or(0), 3);
  EXPECT_DOUBLE_EQ(resolved.ratio.value_or(0), 0.25);
}

TEST(Options, StrictErrorsNameSourceAndKey) {
  auto m = skd::test::error_of([] { skd::options::from_json<Outer>({{"colour", "red"}}, "cfg.json"); });
  EXPECT_EQ(m, "cfg.json: unknown key 'colour'");
  m = skd::test::error_of([] { skd::options::from_json<Outer>({{"count", 1.5}}, "cfg.json"); });
  EXPECT_EQ(m, "cfg.json: key 'count' has the wrong type (1.5)");
  m = skd::test::error_of([] { skd::options::from_json<Outer>({{"seed", -1}}, "cfg.json"); });
  EXPECT_EQ(m, "cfg.json: key 'seed' has the wrong type (-1)");
  m = skd::test::error_of([] { skd::options::from_json<Outer>({{"color", "blue"}}, "cfg.json"); });
  EXPECT_EQ(m, "cfg.json: key 'color' has the value \"blue\" (expected one of red, green)");
  m = skd::test::error_of([] { skd::options::from_json<Outer>(nlohmann::json::array(), "cfg.json"); });
  EXPECT_EQ(m, "cfg.json: expected a JSON object");
}

TEST(Options, LaterLayersWinAndEachLayerIsCheckedOnItsOwn) {
  const auto o = skd::options::resolve<Outer>({{{{"count", 7}, {"name", "a"}}, "checkpoint"},
                                               {{{"count", 9}}, "--config"},
                                               {{{"color", "green"}}, "flags"}});
  EXPECT_EQ(o.count, 9);
  EXPECT_EQ(o.name, "a");
  EXPECT_EQ(o.inner.color, Color::GREEN);
  EXPECT_DOUBLE_EQ(o.inner.rate, 0.5);
  const auto m = skd::test::error_of([] { skd::options::resolve<Outer>({{{{"count", 1}}, "a"}, {{{"cnt", 1}}, "b.json"}}); });
  EXPECT_EQ(m, "b.json: unknown key 'cnt'");
}

TEST(KeyedErrors, WhatNamesKeysAndAppsRenderTheirOwnNames) {
  const skd::ParameterError simple("batch_size", " must be positive");
  EXPECT_STREQ(simple.what(), "batch_size must be positive");
  const auto flag = [](const std::string& key) { return "--" + key + "!"; };
  EXPECT_EQ(simple.render(flag), "--batch_size! must be positive");
  const int samples = 11;
  const skd::ParameterError composed([=](const skd::KeyNamer& n) {
    return skd::cat(n("proxy_samples"), " ", samples, ": raise ", n("proxy_samples"), " or lower ", n("batch_size"));
  });
  EXPECT_STREQ(composed.what(), "proxy_samples 11: raise proxy_samples or lower batch_size");
  EXPECT_EQ(composed.render(flag), "--proxy_samples! 11: raise --proxy_samples! or lower --batch_size!");
  // Usage errors stay std::invalid_argument (exit 2), failures std::runtime_error (exit 1).
  EXPECT_THROW(throw skd::ParameterError("k", ": d"), std::invalid_argument);
  EXPECT_THROW(throw skd::ParameterFailure("k", ": d"), std::runtime_error);
}
