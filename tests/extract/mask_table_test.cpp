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

TEST(Extraction, SlicedCodeEqualsSuperNetworkAtThatCode) {
  torch::set_num_threads(2);
  auto loaded = models::load_model(test::fixture("timm/vit_micro_32.safetensors"), test::fixture("timm/vit_micro_32.json"));
  test::expect_every_code_extracts(*loaded.model, test::micro_table(), torch::randn({3, 3, 32, 32}));
}
