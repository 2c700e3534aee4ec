// Option values with units (skd/core/units.h): MACs amounts, MACs ratios (0.333, 4/12, 4:12),
// durations and batch lists, their accepted forms and refusals. How the option layer names the flag,
// or the file and key, of a refused value is tests/cli's.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "skd/core/units.h"
#include "test_util.h"

using namespace skd;

TEST(Units, Macs) {
  EXPECT_EQ(Macs::from_text("2.43G").count, 2430000000);
  EXPECT_EQ(Macs::from_text("2.43 GMac").count, 2430000000);
  EXPECT_EQ(Macs::from_text("897.0 MMac").count, 897000000);
  EXPECT_EQ(Macs::from_text("897m").count, 897000000);
  EXPECT_EQ(Macs::from_text("1.5e9").count, 1500000000);
  EXPECT_EQ(Macs::from_text("123456").count, 123456);
  EXPECT_EQ(Macs::from_text("4GMACs").count, 4000000000);
  for (const char* bad : {"", "G", "abc", "-1G", "2.4X", "0", "nan"})
    EXPECT_NE(test::error_of([&] { Macs::from_text(bad).count; }).find("is not a MACs amount"), std::string::npos) << bad;
  // Issue 25: spaces inside the number, hex and "inf" are not amounts; 1e30 is not a negative one.
  EXPECT_EQ(Macs::from_text(" 897M ").count, 897000000);
  for (const char* bad : {"5 0M", "0x10M", "0x10", "inf", "infG", " 1 e9"})
    EXPECT_NE(test::error_of([&] { Macs::from_text(bad).count; }).find("is not a MACs amount"),
              std::string::npos)
        << bad;
  for (const char* huge : {"1e30", "9.3e18", "1e10T", "1e400"}) {
    const auto m = test::error_of([&] { Macs::from_text(huge).count; });
    EXPECT_TRUE(m.find("more MACs than any model has") != std::string::npos ||
                m.find("is not a MACs amount") != std::string::npos)
        << huge << ": " << m;
  }
  EXPECT_NE(test::error_of([&] { Macs::from_text("1e30").count; }).find("more MACs than any model has"),
            std::string::npos);
}

TEST(Units, Duration) {
  EXPECT_DOUBLE_EQ(Duration::from_text("5ms").ms, 5.0);
  EXPECT_DOUBLE_EQ(Duration::from_text("2.5 ms").ms, 2.5);
  EXPECT_DOUBLE_EQ(Duration::from_text("800us").ms, 0.8);
  EXPECT_DOUBLE_EQ(Duration::from_text("0.5s").ms, 500.0);
  EXPECT_DOUBLE_EQ(Duration::from_text("12").ms, 12.0);
  EXPECT_DOUBLE_EQ(Duration::from_text(" 5ms ").ms, 5.0);
  for (const char* bad : {"", "ms", "fast", "-1ms", "0", "5 min", "5msx", "nan", "inf", "0x5ms", "1e400ms", "5 0ms"})
    EXPECT_NE(test::error_of([&] { Duration::from_text(bad).ms; }).find("expected a positive duration"), std::string::npos) << bad;
}

TEST(Units, MacsRatioAcceptsADecimalAFractionAndThePapersNotation) {
  EXPECT_DOUBLE_EQ(MacsRatio::from_text("0.5").value, 0.5);
  EXPECT_DOUBLE_EQ(MacsRatio::from_text("1").value, 1.0);
  EXPECT_DOUBLE_EQ(MacsRatio::from_text("4/12").value, 4.0 / 12.0);
  EXPECT_DOUBLE_EQ(MacsRatio::from_text("4:12").value, 4.0 / 12.0);
  EXPECT_DOUBLE_EQ(MacsRatio::from_text("12:12").value, 1.0);
  EXPECT_DOUBLE_EQ(MacsRatio::from_text("1/3").value, MacsRatio::from_text("4:12").value);
  EXPECT_DOUBLE_EQ(MacsRatio::from_text("0.3333333333333333").value, MacsRatio::from_text("4/12").value);
  EXPECT_NEAR(MacsRatio::from_text("0.333").value, 4.0 / 12.0, 1e-3);
}

TEST(Units, MacsRatioRefusesWhatIsNotAFractionInZeroOne) {
  for (const std::string bad : {"0", "0/12", "5/4", "13:12", "4/0", "4:0", "abc", "1/", ":12", "", "-0.5",
                                "-4/12", "4/-12", "1.5", "4/12/1", "4:12x", "nan", "inf"}) {
    const auto msg = test::error_of<std::invalid_argument>([&] { MacsRatio::from_text(bad); });
    EXPECT_NE(msg.find("'" + bad + "': expected a fraction in (0, 1]: 0.333, 4/12 or 4:12"),
              std::string::npos)
        << "'" << bad << "': " << msg;
  }
  EXPECT_EQ(MacsRatio::from_text("4:12").to_text(), "4:12");
  EXPECT_DOUBLE_EQ(MacsRatio::from_text(" 0.5 ").value, 0.5);  // spaces around, as the other units  // kept as given (dumped configs, provenance)
}

TEST(Units, BatchListAndPrintBack) {
  EXPECT_EQ(BatchList::from_text("1, 8,64").values, (std::vector<int64_t>{1, 8, 64}));
  EXPECT_EQ(BatchList::from_text("1, 8,64").to_text(), "1,8,64");
  for (const char* bad : {"", "0", "1,,2", "0x10", "1.5", "-1", "8x"})
    EXPECT_THROW(BatchList::from_text(bad), std::invalid_argument) << bad;
  for (double ms : {0.8, 5.0, 1.0 / 3.0, 1e-9})
    EXPECT_EQ(Duration::from_text(Duration{ms}.to_text()).ms, ms) << Duration{ms}.to_text();
  EXPECT_EQ(Macs::from_text(Macs{2430000000}.to_text()).count, 2430000000);
}
