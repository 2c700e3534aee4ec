// Selection by MACs over the mask table's op code -> cost table (the table itself: tests/models), the
// MACs amounts users write, and the extraction invariants: a sub-network sliced at a code computes what
// the super-network computes at that code's widths, code 0 is the full model, and the MACs of the
// sliced model are the table's.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/core/error.h"
#include "skd/models/checkpoint.h"
#include "skd/models/slice.h"
#include "skd/extract/select.h"
#include "skd/models/mask_table.h"
#include "piad/extraction_check.h"
#include "extract/micro_table.h"
#include "test_util.h"

using namespace skd;

TEST(MaskTable, MacsBudgetLookup) {
  const auto config = models::resolve_arch(test::fixture("timm/vit_micro_32.json"));
  const auto costs = models::code_costs(config, test::micro_table());
  ASSERT_EQ(costs.size(), 5u);
  for (size_t c = 1; c < costs.size(); ++c) {
    EXPECT_LT(costs[c].macs_paper, costs[c - 1].macs_paper);
    EXPECT_LT(costs[c].macs_full, costs[c - 1].macs_full);
  }
  using extract::MacsConvention;
  EXPECT_EQ(extract::code_for_macs(costs, costs[0].macs_paper * 2, MacsConvention::PAPER), 0);
  EXPECT_EQ(extract::code_for_macs(costs, costs[0].macs_paper, MacsConvention::PAPER), 0);
  EXPECT_EQ(extract::code_for_macs(costs, costs[2].macs_paper, MacsConvention::PAPER), 2);
  EXPECT_EQ(extract::code_for_macs(costs, costs[2].macs_paper - 1, MacsConvention::PAPER), 3);
  EXPECT_EQ(extract::code_for_macs(costs, costs[2].macs_full, MacsConvention::FULL), 2);
  const auto msg = test::error_of([&] { extract::code_for_macs(costs, costs[4].macs_paper - 1, MacsConvention::PAPER); });
  EXPECT_NE(msg.find("below the smallest sub-network in the mask table: code 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(costs[4].macs_paper)), std::string::npos) << msg;
}

TEST(MaskTable, ParseMacs) {
  EXPECT_EQ(extract::parse_macs("2.43G", "--macs"), 2430000000);
  EXPECT_EQ(extract::parse_macs("2.43 GMac", "--macs"), 2430000000);
  EXPECT_EQ(extract::parse_macs("897.0 MMac", "--macs"), 897000000);
  EXPECT_EQ(extract::parse_macs("897m", "--macs"), 897000000);
  EXPECT_EQ(extract::parse_macs("1.5e9", "--macs"), 1500000000);
  EXPECT_EQ(extract::parse_macs("123456", "--macs"), 123456);
  EXPECT_EQ(extract::parse_macs("4GMACs", "--macs"), 4000000000);
  for (const char* bad : {"", "G", "abc", "-1G", "2.4X", "0", "nan"})
    EXPECT_NE(test::error_of([&] { extract::parse_macs(bad, "--macs"); }).find("--macs"), std::string::npos) << bad;
  // Issue 25: spaces inside the number, hex and "inf" are not amounts; 1e30 is not a negative one.
  EXPECT_EQ(extract::parse_macs(" 897M ", "--macs"), 897000000);
  for (const char* bad : {"5 0M", "0x10M", "0x10", "inf", "infG", " 1 e9"})
    EXPECT_NE(test::error_of([&] { extract::parse_macs(bad, "--macs"); }).find("is not a MACs amount"),
              std::string::npos)
        << bad;
  for (const char* huge : {"1e30", "9.3e18", "1e10T", "1e400"}) {
    const auto m = test::error_of([&] { extract::parse_macs(huge, "--macs"); });
    EXPECT_TRUE(m.find("more MACs than any model has") != std::string::npos ||
                m.find("is not a MACs amount") != std::string::npos)
        << huge << ": " << m;
  }
  EXPECT_NE(test::error_of([&] { extract::parse_macs("1e30", "--macs"); }).find("more MACs than any model has"),
            std::string::npos);
}

TEST(Extraction, SlicedCodeEqualsSuperNetworkAtThatCode) {
  torch::set_num_threads(2);
  auto loaded = models::load_model(test::fixture("timm/vit_micro_32.safetensors"), test::fixture("timm/vit_micro_32.json"));
  test::expect_every_code_extracts(*loaded.model, test::micro_table(), torch::randn({3, 3, 32, 32}));
}
