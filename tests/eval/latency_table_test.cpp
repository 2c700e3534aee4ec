// Latency tables: the sweep measures every code on its sliced sub-network, the JSON round-trips,
// and selection by a latency budget picks the lowest code that fits or names why none can.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/eval/latency_table.h"
#include "skd/models/macs.h"
#include "test_util.h"

using namespace skd;
using namespace skd::eval;

namespace {

// A table with the given median latencies (batch 1 and 8; batch 8 = 4 x batch 1) for codes 0..n-1.
LatencyTable synthetic(const std::vector<double>& medians) {
  LatencyTable t;
  t.model = "super.safetensors";
  t.model_sha256 = std::string(64, 'a');
  t.device = "cpu";
  t.amp = "none";
  t.threads = 2;
  t.warmup = 1;
  t.repeats = 3;
  t.batch_sizes = {1, 8};
  for (size_t k = 0; k < medians.size(); ++k) {
    LatencyCodeRow r;
    r.code = static_cast<int64_t>(k);
    r.widths = {{16, 64}, {static_cast<int64_t>(16 - k), 0}};
    r.cost = {1000 - static_cast<int64_t>(k), 1100 - static_cast<int64_t>(k), 50};
    for (int64_t b : t.batch_sizes) {
      LatencyResult l;
      l.batch_size = b;
      l.median_ms = medians[k] * (b == 1 ? 1 : 4);
      l.p10_ms = l.median_ms * 0.9;
      l.p90_ms = l.median_ms * 1.2;
      l.images_per_s = b / (l.median_ms / 1000);
      r.latency.push_back(l);
    }
    t.codes.push_back(r);
  }
  return t;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

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
  EXPECT_NE(error_of([&] { measure_latency_table(*model, {models::full_widths(model->config())}, o, "m", "x"); })
                .find("--batch-sizes"),
            std::string::npos);
}

TEST(LatencyTable, SelectsTheLowestCodeWithinTheBudget) {
  // Latency is not monotonic in the code here (code 2 is slower than code 1): the lowest fitting code wins.
  const auto t = synthetic({10.0, 4.0, 6.0, 2.0});
  const std::string sha(64, 'a');
  EXPECT_EQ(code_for_latency(t, 100, 1, sha, 4, "t.json").code, 0);
  EXPECT_EQ(code_for_latency(t, 10, 1, sha, 4, "t.json").code, 0);
  EXPECT_EQ(code_for_latency(t, 9.99, 1, sha, 4, "t.json").code, 1);
  const auto s = code_for_latency(t, 5, 1, sha, 4, "t.json");
  EXPECT_EQ(s.code, 1);
  EXPECT_DOUBLE_EQ(s.median_ms, 4.0);
  EXPECT_DOUBLE_EQ(s.p90_ms, 4.8);
  EXPECT_EQ(code_for_latency(t, 3, 1, sha, 4, "t.json").code, 3);
  // Batch 8 is four times slower: the same budget selects a smaller network.
  EXPECT_EQ(code_for_latency(t, 20, 8, sha, 4, "t.json").code, 1);
  EXPECT_EQ(code_for_latency(t, 10, 8, sha, 4, "t.json").code, 3);
}

TEST(LatencyTable, SelectionErrorsNameTheProblem) {
  const auto t = synthetic({10.0, 4.0, 6.0, 2.0});
  const std::string sha(64, 'a');
  const auto below = error_of([&] { code_for_latency(t, 1.5, 1, sha, 4, "t.json"); });
  EXPECT_NE(below.find("below the fastest sub-network in 't.json': code 3 at 2 ms"), std::string::npos) << below;
  const auto batch = error_of([&] { code_for_latency(t, 5, 64, sha, 4, "t.json"); });
  EXPECT_NE(batch.find("--batch 64"), std::string::npos) << batch;
  EXPECT_NE(batch.find("batch size(s) 1, 8 only"), std::string::npos) << batch;
  const auto other = error_of([&] { code_for_latency(t, 5, 1, std::string(64, 'b'), 4, "t.json"); });
  EXPECT_NE(other.find("measured for another model file"), std::string::npos) << other;
  const auto codes = error_of([&] { code_for_latency(t, 5, 1, sha, 7, "t.json"); });
  EXPECT_NE(codes.find("has 4 op codes, the super-network's mask table 7"), std::string::npos) << codes;
}

TEST(LatencyTable, StrictJson) {
  auto j = synthetic({3.0, 2.0}).to_json();
  EXPECT_NO_THROW(LatencyTable::from_json(j, "t.json"));
  auto bad = j;
  bad["format"] = "something";
  EXPECT_NE(error_of([&] { LatencyTable::from_json(bad, "t.json"); }).find("'t.json': not a latency table"),
            std::string::npos);
  bad = j;
  bad["format_version"] = 2;
  EXPECT_NE(error_of([&] { LatencyTable::from_json(bad, "t.json"); }).find("format_version 2"), std::string::npos);
  bad = j;
  bad["codes"][1]["code"] = 5;
  EXPECT_NE(error_of([&] { LatencyTable::from_json(bad, "t.json"); }).find("in order"), std::string::npos);
  bad = j;
  bad["codes"][0]["latency"].erase(1);
  EXPECT_NE(error_of([&] { LatencyTable::from_json(bad, "t.json"); }).find("1 latency entries for 2 batch sizes"),
            std::string::npos);
  bad = j;
  bad["codes"][0]["latency"][0]["median_ms"] = "fast";
  EXPECT_NE(error_of([&] { LatencyTable::from_json(bad, "t.json"); }).find("missing or mistyped"), std::string::npos);
  bad = j;
  bad["codes"][0]["latency"][0]["median_ms"] = 0;
  EXPECT_NE(error_of([&] { LatencyTable::from_json(bad, "t.json"); }).find("positive"), std::string::npos);
}

TEST(LatencyTable, FileRoundTripAndSidecarPath) {
  EXPECT_EQ(latency_table_path("runs/x/model.safetensors"), "runs/x/model.latency.json");
  EXPECT_EQ(latency_table_path("model.pth"), "model.pth.latency.json");
  const auto dir = skd::test::scratch_dir("latency_table");
  const auto t = synthetic({3.0, 2.0});
  write_latency_table(dir + "/t.json", t);
  EXPECT_EQ(read_latency_table(dir + "/t.json").to_json(), t.to_json());
  EXPECT_NE(error_of([&] { read_latency_table(dir + "/missing.json"); }).find("missing.json' cannot be opened"),
            std::string::npos);
}

TEST(LatencyTable, ParsesDurations) {
  EXPECT_DOUBLE_EQ(parse_duration_ms("5ms", "--latency"), 5.0);
  EXPECT_DOUBLE_EQ(parse_duration_ms("2.5 ms", "--latency"), 2.5);
  EXPECT_DOUBLE_EQ(parse_duration_ms("800us", "--latency"), 0.8);
  EXPECT_DOUBLE_EQ(parse_duration_ms("0.5s", "--latency"), 500.0);
  EXPECT_DOUBLE_EQ(parse_duration_ms("12", "--latency"), 12.0);
  for (const char* bad : {"", "ms", "fast", "-1ms", "0", "5 min", "5msx", "nan"})
    EXPECT_NE(error_of([&] { parse_duration_ms(bad, "--latency"); }).find("--latency '"), std::string::npos) << bad;
}
