// Options as data (skd/core/options.h) and errors that name config keys (skd::Keyed).
#include <gtest/gtest.h>

#include <cmath>
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

struct Small {
  int opset = 17;
  double lr = 0.1;
  std::string text;
  template <typename V>
  void visit(V&& v) {
    v("opset", opset);
    v("lr", lr);
    v("text", text);
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
  EXPECT_EQ(m, "cfg.json: key 'seed': -1 is out of range (expected an integer in 0..18446744073709551615)");
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

// Issue 25: integers never wrap, floats are finite, and errors from flags name the flag.
TEST(Options, IntegersOutOfRangeAreErrorsNamingTheKey) {
  using skd::test::error_of;
  // 2^32 + 17 into an int became 17.
  EXPECT_EQ(error_of([] { skd::options::from_json<Small>({{"opset", 4294967313ULL}}, "c.json"); }),
            "c.json: key 'opset': 4294967313 is out of range (expected an integer in -2147483648..2147483647)");
  // 2^64 - 1 into an optional int64 became -1 (the smallest sub-network).
  EXPECT_EQ(error_of([] { skd::options::from_json<WithOptional>({{"code", 18446744073709551615ULL}}, "c.json"); }),
            "c.json: key 'code': 18446744073709551615 is out of range (expected an integer in "
            "-9223372036854775808..9223372036854775807)");
  EXPECT_EQ(skd::options::from_json<Small>({{"opset", -5}}, "c.json").opset, -5);  // ranges are the job's
  EXPECT_EQ(error_of([] { skd::options::from_json<Small>({{"opset", 17.0}}, "c.json"); }),
            "c.json: key 'opset' has the wrong type (17.0)");
}

TEST(Options, FloatsMustBeFinite) {
  using skd::test::error_of;
  for (const double bad : {INFINITY, -INFINITY, NAN})
    EXPECT_NE(error_of([&] { skd::options::from_json<Small>({{"lr", bad}}, "c.json"); })
                  .find("c.json: key 'lr': "),
              std::string::npos);
  EXPECT_EQ(error_of([] { skd::options::from_json<Small>({{"lr", INFINITY}}, "c.json"); }),
            "c.json: key 'lr': inf is not a finite number");
  // From the command line: a keyed error the app renders with its flag.
  try {
    skd::options::from_json<Small>({{"lr", INFINITY}}, skd::options::kCommandLine);
    FAIL();
  } catch (const skd::ParameterError& e) {
    EXPECT_EQ(e.render([](const std::string& k) { return "--" + k; }), "--lr: inf is not a finite number");
  }
  EXPECT_EQ(error_of([] { skd::options::from_json<WithOptional>({{"ratio", NAN}}, "c.json"); }),
            "c.json: key 'ratio': nan is not a finite number");
}

TEST(Options, HugeValuesAreEchoedCutShort) {
  const std::string big(50 << 20, 'x');  // 50 MB
  const auto m = skd::test::error_of([&] { skd::options::from_json<Small>({{"opset", big}}, "c.json"); });
  EXPECT_LT(m.size(), 200u);
  EXPECT_NE(m.find("... (52428802 bytes)"), std::string::npos) << m;
}

TEST(Options, LeadingNumberIsPlainDecimal) {
  using skd::options::leading_number;
  EXPECT_EQ(leading_number<int64_t>("010"), (std::pair<int64_t, size_t>{10, 3}));
  EXPECT_EQ(leading_number<int64_t>("0x10"), (std::pair<int64_t, size_t>{0, 1}));  // the 0, then "x10" is left
  EXPECT_EQ(leading_number<int64_t>("-7ms"), (std::pair<int64_t, size_t>{-7, 2}));
  EXPECT_EQ(leading_number<int64_t>("99999999999999999999").second, 0u);  // out of range
  EXPECT_EQ(leading_number<int>("4294967313").second, 0u);
  EXPECT_EQ(leading_number<uint64_t>("-1").second, 0u);
  EXPECT_EQ(leading_number<uint64_t>("18446744073709551615").first, 18446744073709551615ULL);
  EXPECT_EQ(leading_number<double>(" 5").second, 0u);
  EXPECT_EQ(leading_number<double>("inf").second, 0u);
  EXPECT_EQ(leading_number<double>("nan").second, 0u);
  EXPECT_EQ(leading_number<double>("1e999").second, 0u);
  EXPECT_EQ(leading_number<double>("2.43G"), (std::pair<double, size_t>{2.43, 4}));
  EXPECT_EQ(leading_number<double>("1e3x"), (std::pair<double, size_t>{1000.0, 3}));
  EXPECT_EQ(leading_number<double>("1ex"), (std::pair<double, size_t>{1.0, 1}));
}
