// Epoch orders, DistributedSampler and DeiT's RASampler: strides, padding, lengths, coverage.
#include "skd/data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>

using namespace skd::data;

namespace {

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

}  // namespace

TEST(EpochOrder, IsASeededPermutation) {
  const auto a = epoch_order(1000, 3, 42, true);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, iota(1000));
  EXPECT_NE(a, iota(1000));
  EXPECT_EQ(a, epoch_order(1000, 3, 42, true));
  EXPECT_NE(a, epoch_order(1000, 4, 42, true));
  EXPECT_NE(a, epoch_order(1000, 3, 43, true));
  EXPECT_EQ(epoch_order(1000, 3, 42, false), iota(1000));
  EXPECT_EQ(epoch_order(1, 0, 0, true), iota(1));
  EXPECT_TRUE(epoch_order(0, 0, 0, true).empty());
  // Every position sees every value about equally often over many epochs (no gross bias).
  std::vector<int> first(5, 0);
  for (int e = 0; e < 5000; ++e) ++first[epoch_order(5, e, 7, true)[0]];
  for (int c : first) EXPECT_NEAR(c / 5000.0, 0.2, 0.03);
}

TEST(DistributedSampler, RanksStrideThePaddedOrder) {
  const int64_t n = 10;
  const int world = 3;
  EXPECT_EQ(distributed_length(n, world), 4);
  const auto order = epoch_order(n, 5, 1, true);
  std::vector<int64_t> padded = order;
  padded.push_back(order[0]);
  padded.push_back(order[1]);
  for (int rank = 0; rank < world; ++rank) {
    const auto idx = distributed_indices(n, rank, world, 5, 1);
    ASSERT_EQ(idx.size(), 4u);
    for (size_t k = 0; k < idx.size(); ++k) EXPECT_EQ(idx[k], padded[rank + k * world]);
  }
  // drop_last: 3 per rank, together the first 9 of the order, no repeats.
  DistributedSamplerOptions drop;
  drop.drop_last = true;
  EXPECT_EQ(distributed_length(n, world, drop), 3);
  std::vector<int64_t> all;
  for (int rank = 0; rank < world; ++rank) {
    const auto idx = distributed_indices(n, rank, world, 5, 1, drop);
    EXPECT_EQ(idx.size(), 3u);
    all.insert(all.end(), idx.begin(), idx.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> first9(order.begin(), order.begin() + 9);
  std::sort(first9.begin(), first9.end());
  EXPECT_EQ(all, first9);
  // Fewer samples than ranks: padding cycles the order; without shuffle it is 0, 1, 0, 1, ...
  DistributedSamplerOptions seq;
  seq.shuffle = false;
  EXPECT_EQ(distributed_indices(2, 3, 5, 0, 0, seq), (std::vector<int64_t>{1}));
  EXPECT_EQ(distributed_indices(2, 4, 5, 0, 0, seq), (std::vector<int64_t>{0}));
  EXPECT_TRUE(distributed_indices(0, 0, 2, 0, 0).empty());
  EXPECT_NE(distributed_indices(100, 0, 2, 0, 9), distributed_indices(100, 0, 2, 1, 9));
}

TEST(RepeatedAugSampler, RepeatsLandOnConsecutiveRanks) {
  // world 3, 3 repeats: step k of every rank is the same image (the three augmentations of it).
  RepeatedAugOptions all;
  all.round_down_to = 0;
  const int64_t n = 50;
  const auto order = epoch_order(n, 2, 11, true);
  std::vector<std::vector<int64_t>> per_rank;
  for (int rank = 0; rank < 3; ++rank) per_rank.push_back(repeated_aug_indices(n, rank, 3, 2, 11, all));
  EXPECT_EQ(per_rank[0], order);
  EXPECT_EQ(per_rank[1], order);
  EXPECT_EQ(per_rank[2], order);
}

TEST(RepeatedAugSampler, UnionCoversEveryRepeatAndStridesDisjointly) {
  RepeatedAugOptions all;
  all.round_down_to = 0;
  const int64_t n = 10;
  const int world = 4;
  // num_samples = ceil(30 / 4) = 8, total 32: the repeated order [a a a b b b ...] padded with
  // its first two entries, rank r takes positions r, r + 4, ...
  EXPECT_EQ(repeated_aug_length(n, world, all), 8);
  const auto order = epoch_order(n, 0, 3, true);
  std::vector<int64_t> repeated;
  for (int64_t i : order) repeated.insert(repeated.end(), 3, i);
  repeated.push_back(order[0]);
  repeated.push_back(order[0]);
  std::map<int64_t, int> counts;
  for (int rank = 0; rank < world; ++rank) {
    const auto idx = repeated_aug_indices(n, rank, world, 0, 3, all);
    ASSERT_EQ(idx.size(), 8u);
    for (size_t k = 0; k < idx.size(); ++k) {
      EXPECT_EQ(idx[k], repeated[rank + k * world]) << rank << " " << k;
      ++counts[idx[k]];
    }
  }
  ASSERT_EQ(counts.size(), 10u);
  for (const auto& [i, c] : counts) EXPECT_EQ(c, i == order[0] ? 5 : 3) << i;
  // Other epochs give other orders.
  EXPECT_NE(repeated_aug_indices(n, 1, world, 0, 3, all), repeated_aug_indices(n, 1, world, 1, 3, all));
  // Without shuffle: positions 1, 5, 9, ... of 0 0 0 1 1 1 2 2 2 ... 9 9 9 0 0.
  all.shuffle = false;
  EXPECT_EQ(repeated_aug_indices(n, 1, world, 0, 3, all), (std::vector<int64_t>{0, 1, 3, 4, 5, 7, 8, 9}));
}

TEST(RepeatedAugSampler, DeitLengthsKeepAMultipleOf256PerWorld) {
  // DeiT: floor(len // 256 * 256 / world) per rank.
  EXPECT_EQ(repeated_aug_length(1281167, 8), 160128);
  EXPECT_EQ(repeated_aug_length(1281167, 1), 1281024);
  EXPECT_EQ(repeated_aug_length(60000, 3), 19968);
  EXPECT_EQ(repeated_aug_length(1000, 4), 192);
  const int64_t n = 1000;
  const int world = 4;
  RepeatedAugOptions full;
  full.round_down_to = 0;
  EXPECT_EQ(repeated_aug_length(n, world, full), 750);
  for (int rank = 0; rank < world; ++rank) {
    const auto cut = repeated_aug_indices(n, rank, world, 7, 5);
    const auto whole = repeated_aug_indices(n, rank, world, 7, 5, full);
    ASSERT_EQ(cut.size(), 192u);
    EXPECT_TRUE(std::equal(cut.begin(), cut.end(), whole.begin()));  // a prefix of the full list
  }
  // 3 * 1000 repeats over 4 ranks pad nothing: with the full length each image appears 3 times.
  std::vector<int> counts(n, 0);
  for (int rank = 0; rank < world; ++rank)
    for (int64_t i : repeated_aug_indices(n, rank, world, 7, 5, full)) ++counts[i];
  for (int c : counts) EXPECT_EQ(c, 3);
}

TEST(Samplers, BadArgumentsThrow) {
  EXPECT_THROW(distributed_indices(10, 2, 2, 0, 0), std::invalid_argument);
  EXPECT_THROW(distributed_indices(10, -1, 2, 0, 0), std::invalid_argument);
  EXPECT_THROW(distributed_indices(10, 0, 0, 0, 0), std::invalid_argument);
  EXPECT_THROW(distributed_indices(-1, 0, 1, 0, 0), std::invalid_argument);
  EXPECT_THROW(repeated_aug_indices(10, 3, 3, 0, 0), std::invalid_argument);
  EXPECT_THROW(repeated_aug_indices(0, 0, 1, 0, 0), std::invalid_argument);
  RepeatedAugOptions o;
  o.num_repeats = 0;
  EXPECT_THROW(repeated_aug_indices(1000, 0, 1, 0, 0, o), std::invalid_argument);
  o = RepeatedAugOptions{};
  o.round_down_to = -1;
  EXPECT_THROW(repeated_aug_length(1000, 1, o), std::invalid_argument);
  // DeiT's rounding leaves nothing of a 100-image dataset: a clear error, not an empty epoch.
  try {
    repeated_aug_indices(100, 0, 1, 0, 0);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("round_down_to = 0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(repeated_aug_length(300, 2), 128);
  EXPECT_THROW(repeated_aug_length(300, 512), std::invalid_argument);
}
