// The selection skd-extract and skd-export share: check_selection's "at most one"
// and resolve_selection against a super-network artifact for every
// kind (op code, MACs, ratio, latency from a table, widths, keep fractions, none).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>

#include "skd/core/error.h"
#include "skd/extract/selection.h"
#include "skd/models/checkpoint.h"
#include "skd/models/slice.h"
#include "extract/selection_fixture.h"
#include "test_util.h"

using namespace skd;
using extract::SubnetSelection;

TEST(Selection, AtMostOneAndItsCompanions) {
  SubnetSelection s;
  EXPECT_NO_THROW(extract::check_selection(s));
  s.op_code = 1;
  s.macs_ratio = MacsRatio::from_text("4:12");
  auto msg = test::error_of<std::invalid_argument>([&] { extract::check_selection(s); });
  EXPECT_NE(msg.find("give at most one of op_code, macs, macs_ratio, latency, widths and attn_keep/mlp_keep"),
            std::string::npos)
      << msg;
  s.op_code.reset();
  s.attn_keep = 0.5;
  EXPECT_THROW(extract::check_selection(s), std::invalid_argument);
  s.attn_keep = 1.0;
  s.macs_ratio.reset();
  s.batch = 4;
  msg = test::error_of<std::invalid_argument>([&] { extract::check_selection(s); });
  EXPECT_NE(msg.find("batch, latency_table and runtime go with latency"), std::string::npos) << msg;
  s.batch.reset();
  s.runtime = "onnxruntime";
  EXPECT_THROW(extract::check_selection(s), std::invalid_argument);
  s.latency = Duration::from_text("5ms");
  EXPECT_NO_THROW(extract::check_selection(s));
  s.runtime = "tensorrt";
  msg = test::error_of<std::invalid_argument>([&] { extract::check_selection(s); });
  EXPECT_NE(msg.find("runtime: unknown value 'tensorrt' (expected one of libtorch, onnxruntime, openvino)"),
            std::string::npos)
      << msg;
  s.runtime.clear();
  s.batch = 4;
  EXPECT_NO_THROW(extract::check_selection(s));
  s.batch = 0;
  EXPECT_THROW(extract::check_selection(s), std::invalid_argument);
}

// Every kind resolves to the code and widths of the lookup it stands for.
TEST(Selection, ResolvesEveryKind) {
  const auto dir = test::scratch_dir("selection_kinds");
  const auto sn = test::write_selection_supernet(dir);
  const auto loaded = models::load_model(sn.path);
  const auto table = test::selection_table();
  const auto costs = models::code_costs(loaded.model->config(), table);
  ASSERT_LT(costs.back().macs_paper * 3, costs[0].macs_paper);  // 4:12 has a code
  const extract::SupernetFile file{sn.path, sn.sha256};
  const auto resolve = [&](const SubnetSelection& s) { return extract::resolve_selection(loaded, s, file); };

  SubnetSelection none;
  auto c = resolve(none);
  EXPECT_FALSE(c.selection.has_value());
  EXPECT_EQ(c.widths, loaded.model->widths());

  SubnetSelection code;
  code.op_code = -1;
  c = resolve(code);
  ASSERT_TRUE(c.selection.has_value());
  EXPECT_EQ(c.selection->code, 5);
  EXPECT_EQ(c.widths, table.widths(5));

  SubnetSelection macs;
  macs.macs = Macs{costs[2].macs_paper};
  c = resolve(macs);
  ASSERT_TRUE(c.selection.has_value());
  EXPECT_EQ(c.selection->code, 2);
  EXPECT_EQ(c.selection->provenance.at("macs_budget"), costs[2].macs_paper);

  // "4:12", "4/12" and "0.3333333333333333" are one budget: the same code.
  int64_t ratio_code = -9;
  for (const std::string r : {"4:12", "4/12", "0.3333333333333333"}) {
    SubnetSelection ratio;
    ratio.macs_ratio = MacsRatio::from_text(r);
    c = resolve(ratio);
    ASSERT_TRUE(c.selection.has_value()) << r;
    const int64_t want = extract::code_for_macs(
        costs, static_cast<int64_t>(std::floor(static_cast<double>(costs[0].macs_paper) * 4.0 / 12.0)),
        extract::MacsConvention::PAPER);
    EXPECT_EQ(c.selection->code, want) << r;
    if (ratio_code != -9) {
      EXPECT_EQ(c.selection->code, ratio_code) << r;
    }
    ratio_code = c.selection->code;
  }

  SubnetSelection latency;  // 5 ms at batch 1: code 4 (4 ms) is the lowest that fits
  latency.latency = Duration::from_text("5ms");
  c = resolve(latency);
  ASSERT_TRUE(c.selection.has_value());
  EXPECT_EQ(c.selection->code, 4);
  ASSERT_TRUE(c.selection->latency.has_value());
  EXPECT_EQ(c.selection->latency->table_path, sn.latency_table);
  latency.batch = 4;  // twice as slow at batch 4: code 5 (4 ms)
  EXPECT_EQ(resolve(latency).selection->code, 5);
  latency.batch.reset();
  latency.latency_table = dir + "/missing.json";
  EXPECT_NE(test::error_of([&] { resolve(latency); }).find("missing.json"), std::string::npos);

  SubnetSelection widths;
  widths.widths = "16:256,8:128,0:256,16:0";
  c = resolve(widths);
  EXPECT_FALSE(c.selection.has_value());
  EXPECT_EQ(c.widths, (models::Widths{{16, 256}, {8, 128}, {0, 256}, {16, 0}}));

  SubnetSelection keep;
  keep.attn_keep = 0.5;
  keep.mlp_keep = 0.25;
  c = resolve(keep);
  EXPECT_FALSE(c.selection.has_value());
  EXPECT_EQ(c.widths, models::keep_fraction(loaded.model->widths(), 0.5, 0.25));

  // A mask table with nothing selected from it says so.
  SubnetSelection table_only;
  table_only.mask_table = dir + "/mask_table.json";
  const auto msg = test::error_of<std::invalid_argument>([&] { resolve(table_only); });
  EXPECT_NE(msg.find("mask_table selects nothing by itself"), std::string::npos) << msg;
}

TEST(Selection, WidthsTextIsWhatParseWidthsReads) {
  const models::Widths w{{64, 192}, {32, 0}, {0, 96}};
  EXPECT_EQ(extract::widths_text(w), "64:192,32:0,0:96");
  EXPECT_EQ(extract::parse_widths(extract::widths_text(w), w.size()), w);
  EXPECT_EQ(extract::widths_text({}), "");
}
