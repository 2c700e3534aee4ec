// Latency tables (the file format): the JSON round-trips, and selection by a latency budget picks the
// lowest code that fits or names why none can. The measurement is tested in tests/eval.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/core/error.h"
#include "skd/extract/latency_table.h"
#include "extract/selection_fixture.h"
#include "test_util.h"

using namespace skd;
using namespace skd::extract;

namespace {

// A table with the given median latencies (batch 1 and 8; batch 8 = 4 x batch 1) for codes 0..n-1.
LatencyTable synthetic(const std::vector<double>& medians) {
  auto t = test::latency_table_of("super.safetensors", std::string(64, 'a'), {1, 8});
  for (size_t k = 0; k < medians.size(); ++k) {
    LatencyCodeRow r;
    r.code = static_cast<int64_t>(k);
    r.widths = {{16, 64}, {static_cast<int64_t>(16 - k), 0}};
    r.cost = {1000 - static_cast<int64_t>(k), 1100 - static_cast<int64_t>(k), 50};
    for (int64_t b : t.batch_sizes)
      r.latency.push_back(test::latency_result(b, medians[k] * (b == 1 ? 1 : 4)));
    t.codes.push_back(r);
  }
  return t;
}

}  // namespace

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
  const auto below = test::error_of([&] { code_for_latency(t, 1.5, 1, sha, 4, "t.json"); });
  EXPECT_NE(below.find("below the fastest sub-network in 't.json': code 3 at 2 ms"), std::string::npos) << below;
  const auto batch = test::error_of([&] { code_for_latency(t, 5, 64, sha, 4, "t.json"); });
  EXPECT_NE(batch.find("batch 64: latency_table 't.json'"), std::string::npos)
      << batch;  // keys, as apps render them
  EXPECT_NE(batch.find("measure with skd-eval --model <super-network> --latency-table --batch-sizes 64"),
            std::string::npos)
      << batch;
  EXPECT_NE(batch.find("batch size(s) 1, 8 only"), std::string::npos) << batch;
  const auto other = test::error_of([&] { code_for_latency(t, 5, 1, std::string(64, 'b'), 4, "t.json"); });
  EXPECT_NE(other.find("measured for another model file"), std::string::npos) << other;
  const auto codes = test::error_of([&] { code_for_latency(t, 5, 1, sha, 7, "t.json"); });
  EXPECT_NE(codes.find("has 4 op codes, the super-network's mask table 7"), std::string::npos) << codes;
}

TEST(LatencyTable, StrictJson) {
  auto j = synthetic({3.0, 2.0}).to_json();
  EXPECT_NO_THROW(LatencyTable::from_json(j, "t.json"));
  auto bad = j;
  bad["format"] = "something";
  EXPECT_NE(test::error_of<FormatError>([&] { LatencyTable::from_json(bad, "t.json"); }).find("'t.json': not a latency table"),
            std::string::npos);
  bad = j;
  bad["format_version"] = 2;
  EXPECT_NE(test::error_of<FormatError>([&] { LatencyTable::from_json(bad, "t.json"); }).find("format_version 2"), std::string::npos);
  bad = j;
  bad["codes"][1]["code"] = 5;
  EXPECT_NE(test::error_of<FormatError>([&] { LatencyTable::from_json(bad, "t.json"); }).find("in order"), std::string::npos);
  bad = j;
  bad["codes"][0]["latency"].erase(1);
  EXPECT_NE(test::error_of<FormatError>([&] { LatencyTable::from_json(bad, "t.json"); }).find("1 latency entries for 2 batch sizes"),
            std::string::npos);
  bad = j;
  bad["codes"][0]["latency"][0]["median_ms"] = "fast";
  EXPECT_NE(test::error_of<FormatError>([&] { LatencyTable::from_json(bad, "t.json"); }).find("missing or mistyped"), std::string::npos);
  bad = j;
  bad["codes"][0]["latency"][0]["median_ms"] = 0;
  EXPECT_NE(test::error_of<FormatError>([&] { LatencyTable::from_json(bad, "t.json"); }).find("positive"), std::string::npos);
}

TEST(LatencyTable, FileRoundTripAndSidecarPath) {
  EXPECT_EQ(latency_table_path("runs/x/model.safetensors"), "runs/x/model.latency.json");
  EXPECT_EQ(latency_table_path("model.pth"), "model.pth.latency.json");
  const auto dir = skd::test::scratch_dir("latency_table");
  const auto t = synthetic({3.0, 2.0});
  write_latency_table(dir + "/t.json", t);
  EXPECT_EQ(read_latency_table(dir + "/t.json").to_json(), t.to_json());
  EXPECT_NE(test::error_of([&] { read_latency_table(dir + "/missing.json"); }).find("missing.json' cannot be opened"),
            std::string::npos);
}

// A table is bound to the widths it timed: a mask table that selects other sub-networks for the same
// codes (e.g. a mask_table overriding the artifact's) is refused, naming the table file and the code.
TEST(LatencyTable, BoundToTheWidthsItMeasured) {
  const auto t = synthetic({4.0, 3.0, 2.0});
  std::vector<models::Widths> same;
  for (const auto& r : t.codes) same.push_back(r.widths);
  EXPECT_NO_THROW(check_latency_table_widths(t, same, "super.latency.json"));
  auto other = same;
  other[1][1].mlp = 8;
  const auto msg = test::error_of<std::invalid_argument>(
      [&] { check_latency_table_widths(t, other, "super.latency.json"); });
  EXPECT_NE(msg.find("latency_table 'super.latency.json' was measured for other sub-networks: its op code 1 has "
                     "widths 16:64,15:0, the mask table in use gives 16:64,15:8"),
            std::string::npos)
      << msg;
}

TEST(LatencyTable, NamesItsRuntime) {
  auto t = synthetic({3.0, 2.0});
  t.runtime = "openvino";
  t.runtime_version = "2025.4.0";
  const auto back = LatencyTable::from_json(t.to_json(), "t.json");
  EXPECT_EQ(back.runtime, "openvino");
  EXPECT_EQ(back.runtime_version, "2025.4.0");
  // A table written before the key existed is LibTorch's, at the torch version it recorded.
  auto old = synthetic({3.0, 2.0}).to_json();
  old.erase("runtime");
  old.erase("runtime_version");
  old["torch_version"] = "1.13.1";
  const auto legacy = LatencyTable::from_json(old, "old.json");
  EXPECT_EQ(legacy.runtime, "libtorch");
  EXPECT_EQ(legacy.runtime_version, "1.13.1");
  auto bad = t.to_json();
  bad["runtime"] = "tensorrt";
  const auto msg = test::error_of<FormatError>([&] { LatencyTable::from_json(bad, "bad.json"); });
  EXPECT_NE(msg.find("latency table 'bad.json': key 'runtime' is 'tensorrt'"), std::string::npos) << msg;
  EXPECT_EQ(latency_table_path("runs/x/model.safetensors", "onnxruntime"),
            "runs/x/model.latency.onnxruntime.json");
  EXPECT_EQ(latency_table_path("runs/x/model.safetensors", "libtorch"), "runs/x/model.latency.json");
}
