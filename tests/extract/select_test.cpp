// extract::select: every kind of budget picks the code the lookup it wraps picks (code_for_macs,
// code_for_latency, the code itself), with the cost and provenance of that code; extract::extract
// slices at the selection; a super-network manifest's "op_codes" is verified when its table is read.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>

#include "skd/core/error.h"
#include "skd/extract/extract.h"
#include "skd/extract/latency_table.h"
#include "skd/extract/select.h"
#include "skd/models/checkpoint.h"
#include "skd/models/mask_table.h"
#include "extract/micro_table.h"
#include "test_util.h"

using namespace skd;
using extract::Budget;
using extract::MacsConvention;
using models::Widths;

namespace {

models::ModelConfig micro_config() { return models::resolve_arch(test::fixture("timm/vit_micro_32.json")); }

}  // namespace

TEST(Select, OpCodeIsTheCodeAndMinusOneTheLast) {
  const auto config = micro_config();
  const auto table = test::micro_table();
  const auto costs = models::code_costs(config, table);
  for (int64_t c = 0; c <= 4; ++c) {
    const auto s = extract::select(config, table, Budget::of_op_code(c));
    EXPECT_EQ(s.code, c);
    EXPECT_EQ(s.last_code, 4);
    EXPECT_EQ(s.widths, table.widths(c));
    EXPECT_EQ(s.cost.macs_paper, costs[static_cast<size_t>(c)].macs_paper);
    EXPECT_EQ(s.cost.params, costs[static_cast<size_t>(c)].params);
    EXPECT_TRUE(s.provenance.empty());
  }
  EXPECT_EQ(extract::select(config, table, Budget::of_op_code(-1)).code, 4);
  // Errors name the config key (an app renders it as its flag).
  const auto msg =
      test::error_of<std::invalid_argument>([&] { extract::select(config, table, Budget::of_op_code(5)); });
  EXPECT_NE(msg.find("op_code 5 is not in the mask table (codes 0..4, or -1 = 4)"), std::string::npos) << msg;
  EXPECT_THROW(extract::select(config, table, Budget::of_op_code(-2)), std::invalid_argument);
}

TEST(Select, MacsBudgetsPickWhatCodeForMacsPicks) {
  const auto config = micro_config();
  const auto table = test::micro_table();
  const auto costs = models::code_costs(config, table);
  for (const auto conv : {MacsConvention::PAPER, MacsConvention::FULL}) {
    for (size_t c = 0; c < costs.size(); ++c) {
      for (const int64_t delta : {int64_t{0}, int64_t{-1}, int64_t{1000}}) {
        const int64_t budget = extract::macs_of(costs[c], conv) + delta;
        if (budget < extract::macs_of(costs.back(), conv)) continue;
        const auto s = extract::select(config, table, Budget::of_macs(budget, conv));
        EXPECT_EQ(s.code, extract::code_for_macs(costs, budget, conv)) << c << " " << delta;
        EXPECT_EQ(s.macs_budget.value_or(-1), budget);
        EXPECT_EQ(s.provenance.at("macs_budget"), budget);
        EXPECT_EQ(s.provenance.at("macs_convention"), conv == MacsConvention::PAPER ? "paper" : "full");
        EXPECT_EQ(s.widths, table.widths(s.code));
      }
    }
  }
  const auto below = Budget::of_macs(costs[4].macs_paper - 1, MacsConvention::PAPER);
  const auto msg = test::error_of<std::invalid_argument>([&] { extract::select(config, table, below); });
  EXPECT_EQ(msg.rfind("macs ", 0), 0u) << msg;
  const auto ratio = Budget::of_macs_ratio(0.01, MacsConvention::PAPER);  // a ratio's error names macs_ratio
  const auto rmsg = test::error_of<std::invalid_argument>([&] { extract::select(config, table, ratio); });
  EXPECT_EQ(rmsg.rfind("macs_ratio ", 0), 0u) << rmsg;
  EXPECT_NE(msg.find("below the smallest sub-network in the mask table: code 4"), std::string::npos) << msg;
}

TEST(Select, RatioIsOfTheFullNetworkRoundedDown) {
  const auto config = micro_config();
  const auto table = test::micro_table();
  const auto costs = models::code_costs(config, table);
  EXPECT_EQ(extract::select(config, table, Budget::of_macs_ratio(1.0, MacsConvention::PAPER)).code, 0);
  EXPECT_EQ(extract::select(config, table, Budget::of_macs_ratio(1.0, MacsConvention::FULL)).code, 0);
  for (const auto conv : {MacsConvention::PAPER, MacsConvention::FULL}) {
    for (const double r : {0.999, 0.97, 0.9, 0.8, 0.75}) {
      const auto budget =
          static_cast<int64_t>(std::floor(r * static_cast<double>(extract::macs_of(costs[0], conv))));
      if (budget < extract::macs_of(costs.back(), conv)) continue;
      const auto s = extract::select(config, table, Budget::of_macs_ratio(r, conv));
      EXPECT_EQ(s.code, extract::code_for_macs(costs, budget, conv)) << r;
      EXPECT_EQ(s.provenance.at("macs_budget"), budget) << r;
    }
  }
}

TEST(Select, LatencyBudgetPicksWhatCodeForLatencyPicks) {
  const auto config = micro_config();
  const auto table = test::micro_table();
  const auto dir = test::scratch_dir("select_latency");
  extract::LatencyTable lt;
  lt.model = "super.safetensors";
  lt.model_sha256 = std::string(64, 'a');
  lt.device = "cpu";
  lt.amp = "none";
  lt.threads = 2;
  lt.created = "2026-12-02T00:00:00Z";
  lt.batch_sizes = {1, 8};
  const double medians[] = {10.0, 4.0, 6.0, 2.0, 1.5};  // not monotonic in the code: the lowest fitting wins
  for (int64_t k = 0; k <= 4; ++k) {
    extract::LatencyCodeRow r;
    r.code = k;
    r.widths = table.widths(k);
    r.cost = models::macs_count(config, r.widths);
    for (int64_t b : lt.batch_sizes)
      r.latency.push_back({b, medians[k] * static_cast<double>(b), medians[k] * b * 0.9, medians[k] * b * 1.1, 0});
    lt.codes.push_back(r);
  }
  const std::string path = dir + "/super.latency.json";
  extract::write_latency_table(path, lt);
  const extract::SupernetFile super{dir + "/super.safetensors", lt.model_sha256};
  for (const double budget : {100.0, 10.0, 9.0, 5.0, 3.0, 1.6}) {
    for (const int64_t batch : {int64_t{1}, int64_t{8}}) {
      if (budget < 1.5 * static_cast<double>(batch)) continue;  // below the fastest code
      const auto want = extract::code_for_latency(lt, budget, batch, lt.model_sha256, 5, path);
      const auto s = extract::select(config, table, Budget::of_latency(budget, batch), super);  // the sidecar
      EXPECT_EQ(s.code, want.code) << budget << " " << batch;
      ASSERT_TRUE(s.latency.has_value());
      EXPECT_EQ(s.latency->measured.median_ms, want.median_ms);
      EXPECT_EQ(s.latency->table_path, path);
      EXPECT_EQ(s.provenance.at("latency").at("median_ms"), want.median_ms);
      EXPECT_EQ(s.provenance.at("latency").at("batch_size"), batch);
      EXPECT_EQ(s.provenance.at("latency").at("table"), path);
      EXPECT_EQ(s.provenance.at("latency").at("measured"), lt.created);
    }
  }
  // Another model file: the table does not apply.
  const auto msg = test::error_of<std::invalid_argument>([&] {
    extract::select(config, table, Budget::of_latency(5, 1, path), {"other.safetensors", std::string(64, 'b')});
  });
  EXPECT_NE(msg.find("measured for another model file"), std::string::npos) << msg;
}

TEST(Select, LatencyBudgetOfARuntimeNeedsThatRuntimesTable) {
  const auto config = micro_config();
  const auto table = test::micro_table();
  const auto dir = test::scratch_dir("select_runtime");
  extract::LatencyTable lt;
  lt.model = "super.safetensors";
  lt.model_sha256 = std::string(64, 'a');
  lt.device = "cpu";
  lt.amp = "none";
  lt.runtime = "onnxruntime";
  lt.runtime_version = "1.32.0";
  lt.threads = 1;
  lt.batch_sizes = {1};
  for (int64_t k = 0; k <= 4; ++k) {
    extract::LatencyCodeRow r;
    r.code = k;
    r.widths = table.widths(k);
    r.cost = models::macs_count(config, r.widths);
    r.latency.push_back({1, 5.0 - static_cast<double>(k), 4.0 - k * 0.9, 6.0 - k, 0});
    lt.codes.push_back(r);
  }
  // The runtime's own sidecar is the default table of a budget that names the runtime.
  const std::string path = dir + "/super.latency.onnxruntime.json";
  extract::write_latency_table(path, lt);
  const extract::SupernetFile super{dir + "/super.safetensors", lt.model_sha256};
  auto budget = Budget::of_latency(3.5, 1);
  budget.runtime = "onnxruntime";
  budget.runtime_version = "1.32.0";
  const auto s = extract::select(config, table, budget, super);
  EXPECT_EQ(s.code, 2);
  EXPECT_EQ(s.latency->table_path, path);
  EXPECT_EQ(s.provenance.at("latency").at("runtime"), "onnxruntime");
  EXPECT_EQ(s.provenance.at("latency").at("runtime_version"), "1.32.0");
  // Without a runtime the given table is used, whichever runtime it names (and recorded as such).
  const auto any = extract::select(config, table, Budget::of_latency(3.5, 1, path), super);
  EXPECT_EQ(any.provenance.at("latency").at("runtime"), "onnxruntime");
  // Another runtime, another version: refused, naming the table, both runtimes and how to measure.
  auto other = Budget::of_latency(3.5, 1, path);
  other.runtime = "openvino";
  const auto msg = test::error_of<ParameterError>([&] { extract::select(config, table, other, super); });
  EXPECT_NE(msg.find("'" + path + "' was measured in onnxruntime 1.32.0, not in openvino"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("--latency-table --runtime openvino"), std::string::npos) << msg;
  budget.runtime_version = "1.33.0";
  const auto ver = test::error_of<ParameterError>([&] { extract::select(config, table, budget, super); });
  EXPECT_NE(ver.find("measured in onnxruntime 1.32.0, but onnxruntime 1.33.0 runs here"), std::string::npos)
      << ver;
  // A runtime's missing sidecar says how to measure it in that runtime.
  auto missing = Budget::of_latency(3.5, 1);
  missing.runtime = "openvino";
  const auto none = test::error_of([&] { extract::select(config, table, missing, super); });
  EXPECT_NE(none.find("super.latency.openvino.json"), std::string::npos) << none;
  EXPECT_NE(none.find("--latency-table --runtime openvino"), std::string::npos) << none;
}

TEST(Select, ParsesConventionsNamingTheOption) {
  EXPECT_EQ(extract::parse_macs_convention("paper"), MacsConvention::PAPER);
  EXPECT_EQ(extract::parse_macs_convention("full"), MacsConvention::FULL);
  EXPECT_NE(test::error_of([] { extract::parse_macs_convention("ptflops", "--macs-convention"); }).find("--macs-convention"),
            std::string::npos);
}

TEST(Extract, SlicesAtTheSelectionWithItsProvenance) {
  torch::set_num_threads(2);
  const auto path = test::fixture("timm/vit_micro_32.safetensors");
  auto loaded = models::load_model(path, test::fixture("timm/vit_micro_32.json"));
  const auto& config = loaded.model->config();
  const auto table = test::micro_table();
  const auto costs = models::code_costs(config, table);
  const auto sel = extract::select(config, table, Budget::of_macs(costs[3].macs_paper, MacsConvention::PAPER));
  ASSERT_EQ(sel.code, 3);
  const auto& lc = loaded.model->config();
  const auto entry = data::imagenet_preprocess(lc.in_chans, lc.img_size);
  const auto e = extract::extract(*loaded.model, {sel, sel.widths}, {path, "abc", "table.json", nullptr, entry});
  EXPECT_EQ(e.preprocess, entry);  // the source's preprocess entry, carried unchanged
  EXPECT_EQ(e.model->widths(), table.widths(3));
  EXPECT_EQ(models::macs_count(e.model->config()).macs_paper, costs[3].macs_paper);
  EXPECT_EQ(e.provenance.at("extracted_from"), path);
  EXPECT_EQ(e.provenance.at("source_sha256"), "abc");
  EXPECT_EQ(e.provenance.at("op_code"), 3);
  EXPECT_EQ(e.provenance.at("macs_budget"), costs[3].macs_paper);
  EXPECT_EQ(e.provenance.at("macs_convention"), "paper");
  EXPECT_EQ(e.provenance.at("mask_table"), "table.json");
  // At explicit widths: no selection fields.
  const auto w =
      extract::extract(*loaded.model, {std::nullopt, table.widths(1)}, {path, "abc", "", nullptr, std::nullopt});
  EXPECT_FALSE(w.preprocess.has_value());
  EXPECT_EQ(w.provenance, (nlohmann::json{{"extracted_from", path}, {"source_sha256", "abc"}}));
  // The source's own provenance goes along.
  const auto s =
      extract::extract(*loaded.model, {std::nullopt, table.widths(1)}, {path, "abc", "", {{"op_code", 2}}, std::nullopt});
  EXPECT_EQ(s.provenance.at("source_provenance"), (nlohmann::json{{"op_code", 2}}));
  // Extraction is models::slice_model: the same forward.
  loaded.model->eval();
  e.model->eval();
  torch::NoGradGuard g;
  const auto x = torch::randn({2, 3, 32, 32});
  models::ForwardOptions fo;
  fo.widths = &table.widths(3);
  EXPECT_LE((e.model->forward(x) - loaded.model->forward(x, fo)).abs().max().item<double>(), 1e-5);
}

TEST(OpCodes, ManifestOpCodesAreVerifiedAgainstTheComputedCosts) {
  const auto config = micro_config();
  const Widths full(4, {16, 256});
  const auto entries = models::supernet_manifest_entries(config, test::micro_table());
  EXPECT_EQ(models::load_mask_table(entries, "", config, full, "super.safetensors").last_code(), 4);
  // Tampered: code 2's macs_full.
  auto bad = entries;
  bad["op_codes"][2]["macs_full"] = bad["op_codes"][2]["macs_full"].get<int64_t>() + 1;
  const auto msg =
      test::error_of<FormatError>([&] { models::load_mask_table(bad, "", config, full, "super.safetensors"); });
  EXPECT_NE(msg.find("super.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("code 2: macs_full"), std::string::npos) << msg;
  // The first disagreeing code is named.
  bad["op_codes"][1]["params"] = 7;
  const auto first = test::error_of<FormatError>([&] { models::load_mask_table(bad, "", config, full, "s"); });
  EXPECT_NE(first.find("code 1: params = 7"), std::string::npos) << first;
  // Malformed: not an array, a code missing, an entry without a number, codes out of order.
  for (const auto& edit : std::vector<std::function<void(nlohmann::json&)>>{
           [](auto& j) { j["op_codes"] = "x"; }, [](auto& j) { j["op_codes"].erase(4); },
           [](auto& j) { j["op_codes"][0].erase("macs_paper"); }, [](auto& j) { j["op_codes"][3]["code"] = 4; }}) {
    auto k = entries;
    edit(k);
    EXPECT_NE(test::error_of<FormatError>([&] { models::load_mask_table(k, "", config, full, "m.safetensors"); })
                  .find("m.safetensors manifest: op_codes"),
              std::string::npos);
  }
  // No op_codes (a manifest written without them) stays accepted.
  auto none = entries;
  none.erase("op_codes");
  EXPECT_EQ(models::load_mask_table(none, "", config, full, "super.safetensors").last_code(), 4);
  // An official mask_table.json given by file has no op_codes; the manifest's (of its own table) are not
  // compared with it.
  const auto dir = test::scratch_dir("op_codes");
  models::write_mask_table(dir + "/mask_table.json", test::micro_table());
  auto other = entries;
  other["op_codes"][0]["params"] = 1;
  EXPECT_EQ(models::load_mask_table(other, dir + "/mask_table.json", config, full, "s").last_code(), 4);
}
