// Measuring latency tables: the sweep measures every code on its sliced sub-network and the result
// round-trips through the file format (skd/extract/latency_table.h, tested in tests/extract).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/eval/latency_table.h"
#include "skd/models/macs.h"
#include "test_util.h"

using namespace skd;
using namespace skd::eval;

TEST(LatencyTable, SweepMeasuresEveryCodeOnItsSubnetwork) {
  // One thread: the test checks the table, not the speed, and tiny ops on a thread pool crawl when the
  // machine is loaded (every parallel region waits for a descheduled worker).
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  torch::manual_seed(0);
  const auto config = models::named_config("vit_micro_32");
  auto model = models::create_model(config);
  const auto full = models::full_widths(config);
  models::Widths half = full, removed = full;
  for (auto& w : half) w = {w.attn / 2, w.mlp / 2};
  removed[1].attn = 0;
  removed[2].mlp = 0;
  LatencyTableOptions o;
  o.batch_sizes = {1, 3};
  o.warmup = 1;
  o.repeats = 3;
  std::vector<std::pair<int64_t, int64_t>> calls;
  const auto t = measure_latency_table(*model, {full, half, removed}, o, "m.safetensors", "abc",
                                       [&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  ASSERT_EQ(t.codes.size(), 3u);
  EXPECT_EQ(calls.size(), 6u);
  EXPECT_EQ(calls.back(), std::make_pair(int64_t{6}, int64_t{6}));
  EXPECT_EQ(t.model_sha256, "abc");
  EXPECT_EQ(t.device, "cpu");
  EXPECT_EQ(t.threads, 1);
  EXPECT_GT(t.sweep_seconds, 0);
  for (size_t k = 0; k < 3; ++k) {
    const auto& r = t.codes[k];
    EXPECT_EQ(r.code, static_cast<int64_t>(k));
    const auto want = models::macs_count(config, r.widths);
    EXPECT_EQ(r.cost.macs_paper, want.macs_paper);
    EXPECT_EQ(r.cost.params, want.params);
    ASSERT_EQ(r.latency.size(), 2u);
    EXPECT_EQ(r.latency[0].batch_size, 1);
    EXPECT_EQ(r.latency[1].batch_size, 3);
    for (const auto& l : r.latency) {
      EXPECT_GT(l.median_ms, 0);
      EXPECT_LE(l.p10_ms, l.median_ms);
      EXPECT_LE(l.median_ms, l.p90_ms);
    }
  }
  EXPECT_EQ(t.codes[2].widths, removed);
  // The table round-trips through its JSON.
  const auto back = LatencyTable::from_json(t.to_json(), "t.json");
  EXPECT_EQ(back.to_json(), t.to_json());
  torch::set_num_threads(threads);
}

TEST(LatencyTable, RefusesBadBatchSizes) {
  auto model = models::create_model(models::named_config("vit_micro_32"));
  LatencyTableOptions o;
  o.batch_sizes = {1, 0};
  EXPECT_NE(test::error_of([&] {
              measure_latency_table(*model, {models::full_widths(model->config())}, o, "m", "x");
            }).find("batch_sizes"),
            std::string::npos);
}
