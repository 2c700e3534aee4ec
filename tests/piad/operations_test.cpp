// PIAD's operations (reference §4.7): the monotone tail-average merge rule, segment MACs, the global
// ranking against a budget and the mask-table extension (the reference's worked example).
#include <gtest/gtest.h>

#include "skd/piad/operations.h"

using namespace skd;

namespace {

std::vector<double> per_dim(const std::vector<double>& group_sums, int64_t group) {
  std::vector<double> out;
  for (double s : group_sums)
    for (int64_t i = 0; i < group; ++i) out.push_back(s / static_cast<double>(group));
  return out;
}

}  // namespace

TEST(PiadOperations, MonotoneImportanceGivesEveryCutPoint) {
  const auto ops = piad::module_operations(2, true, per_dim({8, 4, 2, 1}, 8), 8, 1.0);
  ASSERT_EQ(ops.size(), 4u);
  const double want_c[] = {15.0 / 32, 7.0 / 24, 3.0 / 16, 1.0 / 8};
  for (size_t j = 0; j < 4; ++j) {
    EXPECT_EQ(ops[j].mask_point, static_cast<int64_t>(8 * j));
    EXPECT_DOUBLE_EQ(ops[j].contribution, want_c[j]);
    EXPECT_DOUBLE_EQ(ops[j].macs, 8.0);  // segment [p_j, p_j+1)
    EXPECT_EQ(ops[j].block, 2);
    EXPECT_TRUE(ops[j].attention);
  }
}

TEST(PiadOperations, NonMonotoneGroupsMergeIntoThePrecedingOperation) {
  // tail averages: p0 7/32, p8 6/24 (> 7/32: merged), p16 5/16 (merged), p24 1/8
  const auto ops = piad::module_operations(0, false, per_dim({1, 1, 4, 1}, 8), 8, 2.0);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].mask_point, 0);
  EXPECT_DOUBLE_EQ(ops[0].contribution, 7.0 / 64);
  EXPECT_DOUBLE_EQ(ops[0].macs, 48.0);  // [0, 24) at 2 MACs per dim
  EXPECT_EQ(ops[1].mask_point, 24);
  EXPECT_DOUBLE_EQ(ops[1].contribution, 1.0 / 16);
  EXPECT_DOUBLE_EQ(ops[1].macs, 16.0);
}

TEST(PiadOperations, NegativeSensitivityGivesNoOperation) {
  // The official rule's quirk (reference §8.7): the initial bound ΣI/dim_macs is below every tail
  // average when ΣI < 0.
  EXPECT_TRUE(piad::module_operations(0, true, per_dim({-1, -1, -1, -1}, 8), 8, 1.0).empty());
  EXPECT_THROW(piad::module_operations(0, true, {1.0, NAN}, 1, 1.0), std::invalid_argument);
}

// Reference §4.7 worked example: attention at 64 with operations at 56 (rank 3), 48 (rank 7) and 40
// (rank 12), A = 10: codes 0-2 -> 64, 3-6 -> 56, 7-10 -> 48.
TEST(PiadOperations, WorkedExampleOfTheReference) {
  models::MaskTable table(models::Widths{{64, 256}});
  std::vector<piad::Operation> ops;
  ops.push_back({0, true, 56, 0.3, 1, 0});
  ops.push_back({0, true, 48, 0.7, 1, 0});
  ops.push_back({0, true, 40, 1.2, 1, 0});
  const double mlp_c[] = {0.1, 0.2, 0.4, 0.5, 0.6, 0.8, 0.9, 1.0, 1.1};
  for (int i = 0; i < 9; ++i) ops.push_back({0, false, 248 - 8 * i, mlp_c[i], 1, 0});
  const auto r = piad::apply_operations(table, ops, 10.0);
  EXPECT_EQ(r.added, 10);
  EXPECT_DOUBLE_EQ(r.macs_added, 10.0);
  ASSERT_EQ(table.last_code(), 10);
  for (int64_t c = 0; c <= 10; ++c) {
    const int64_t want = c < 3 ? 64 : c < 7 ? 56 : 48;
    EXPECT_EQ(table.widths(c)[0].attn, want) << "code " << c;
  }
  EXPECT_EQ(table.widths(10)[0].mlp, 192);  // 8 MLP operations applied (ranks 1,2,4,5,6,8,9,10)
  EXPECT_EQ(r.ranked[2].mask_point, 56);
  EXPECT_EQ(r.ranked[2].rank, 3);
  EXPECT_EQ(r.ranked[11].rank, 12);
}

TEST(PiadOperations, BudgetStopsAtTheFirstOperationThatDoesNotFit) {
  models::MaskTable table(models::Widths{{32, 64}, {32, 64}});
  std::vector<piad::Operation> ops = {{0, true, 24, 0.1, 5, 0}, {1, false, 32, 0.2, 30, 0}, {1, true, 16, 0.3, 1, 0}};
  auto r = piad::apply_operations(table, ops, 20.0);
  EXPECT_EQ(r.added, 1);  // the 30-MAC operation does not fit, and nothing after it is counted
  EXPECT_EQ(table.last_code(), 1);
  EXPECT_EQ(table.widths(1), (models::Widths{{24, 64}, {32, 64}}));
  // A zero budget adds nothing.
  r = piad::apply_operations(table, ops, 0.0);
  EXPECT_EQ(r.added, 0);
  EXPECT_EQ(table.last_code(), 1);
}
