// The mask table (skd/models/mask_table.h): the official mask_table.json schema both ways, the named
// errors for tables that do not fit the model, and the super-network manifest's table and op-code costs.
#include <gtest/gtest.h>

#include <functional>

#include "skd/core/error.h"
#include "skd/models/config.h"
#include "skd/models/mask_table.h"
#include "extract/micro_table.h"
#include "test_util.h"

using namespace skd;
using models::Widths;

TEST(MaskTable, OfficialJsonRoundTripAndOrder) {
  const auto t = test::micro_table();
  EXPECT_EQ(t.last_code(), 4);
  const auto j = t.to_json();
  EXPECT_EQ(j.size(), 8u);
  EXPECT_EQ(j.begin().key(), "0.attn");
  std::vector<std::string> keys;
  for (const auto& e : j.at("3.attn").items()) keys.push_back(e.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"0", "-1", "1", "2", "3", "4"}));
  EXPECT_EQ(j.at("3.attn").at("-1"), 8);
  EXPECT_EQ(j.at("0.mlp").at("3"), 0);
  const auto back = models::MaskTable::from_json(nlohmann::json::parse(j.dump()), Widths(4, {16, 256}), "t");
  ASSERT_EQ(back.last_code(), 4);
  for (int64_t c = -1; c <= 4; ++c) EXPECT_EQ(back.widths(c), t.widths(c)) << c;
  EXPECT_EQ(t.widths(-1), t.widths(4));
}

TEST(MaskTable, BadTablesAreNamedErrors) {
  const Widths full(4, {16, 256});
  auto j = nlohmann::json::parse(test::micro_table().to_json().dump());
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto k = j;
    edit(k);
    return test::error_of([&] { models::MaskTable::from_json(k, full, "table.json"); });
  };
  EXPECT_NE(with([](auto& k) { k.erase("2.mlp"); }).find("module '2.mlp' is missing"), std::string::npos);
  EXPECT_NE(with([](auto& k) {
              k["1.attn"]["3"] = 16;
              k["1.attn"]["2"] = 8;
            }).find("grows from 8"),
            std::string::npos);
  EXPECT_NE(with([](auto& k) { k["0.attn"]["-1"] = 8; }).find("-1 must alias"), std::string::npos);
  EXPECT_NE(with([](auto& k) { k["0.attn"]["2"] = "x"; }).find("not an integer"), std::string::npos);
  EXPECT_NE(with([](auto& k) { k["4.attn"] = k["0.attn"]; }).find("unexpected key '4.attn'"),
            std::string::npos);
  EXPECT_NE(
      with([](auto& k) { k["0.attn"]["5"] = 16; }).find("'0.mlp' has 5 codes where module '0.attn' has 6"),
      std::string::npos);
  EXPECT_NE(with([](auto& k) {
              k["0.mlp"]["0"] = 512;
              k["0.mlp"]["1"] = 512;
            }).find("outside [0, 256]"),
            std::string::npos);
  EXPECT_NE(with([](auto& k) { k["0.mlp"]["x1"] = 3; }).find("op code 'x1'"), std::string::npos);
  EXPECT_THROW(test::micro_table().widths(5), std::invalid_argument);
  EXPECT_THROW(test::micro_table().widths(-2), std::invalid_argument);
  auto t = test::micro_table();
  EXPECT_THROW(t.append(Widths(4, {16, 256})), std::invalid_argument);  // would grow
}

// Found while writing the mask_table fuzz target: op codes were read with stoll alone, so "+1",
// " 1" or "01" next to "1" silently replaced its width. Only the canonical spelling is accepted.
TEST(MaskTable, OpCodesMustBeCanonical) {
  const Widths full(4, {16, 256});
  const auto j = nlohmann::json::parse(test::micro_table().to_json().dump());
  for (const std::string key : {"+1", " 1", "01", "-0", "1 "}) {
    auto k = j;
    k["0.attn"][key] = 0;
    EXPECT_NE(test::error_of([&] {
                models::MaskTable::from_json(k, full, "table.json");
              }).find("op code '" + key + "'"),
              std::string::npos)
        << key;
  }
  EXPECT_EQ(models::MaskTable::from_json(j, full, "table.json").last_code(), 4);
}

// Found by the loader fuzzer (issue 25): a module with only "-1" gave an empty column (its alias was
// compared with col.back() of it), and as the first module it left no count for the others to match,
// so a later module with codes made the table read past the end of the first one's column.
TEST(MaskTable, EveryModuleHasTheSameCodesFromZero) {
  const Widths full(4, {16, 256});
  const auto j = nlohmann::json::parse(test::micro_table().to_json().dump());
  auto error = [&](const nlohmann::json& k) {
    return test::error_of([&] { models::MaskTable::from_json(k, full, "table.json"); });
  };
  for (const std::string module : {"0.attn", "0.mlp", "3.mlp"}) {
    auto k = j;
    k[module] = {{"-1", 8}};
    const auto e = error(k);
    EXPECT_NE(e.find("table.json: '" + module + "' lacks op code 0"), std::string::npos) << e;
    EXPECT_THROW(models::MaskTable::from_json(k, full, "table.json"), FormatError);
  }
  auto k = j;
  for (auto& m : k) m = {{"0", 0}, {"-1", 0}};
  k["0.attn"] = {{"-1", 16}};
  EXPECT_NE(error(k).find("'0.attn' lacks op code 0"), std::string::npos) << error(k);
  k["0.attn"] = {{"0", 16}, {"-1", 16}};
  k["1.mlp"] = {{"0", 256}, {"1", 128}, {"-1", 128}};
  EXPECT_NE(error(k).find("'1.mlp' has 2 codes where module '0.attn' has 1"), std::string::npos) << error(k);
  k["1.mlp"] = {{"0", 256}, {"-1", 256}};
  EXPECT_EQ(models::MaskTable::from_json(k, full, "table.json").last_code(), 0);
}

TEST(MaskTable, ManifestEntriesAndLoading) {
  const auto config = models::resolve_arch(test::fixture("timm/vit_micro_32.json"));
  const auto entries = models::supernet_manifest_entries(config, test::micro_table());
  ASSERT_EQ(entries.at("op_codes").size(), 5u);
  EXPECT_EQ(entries.at("op_codes")[3].at("code"), 3);
  const auto t = models::load_mask_table(entries, "", config, Widths(4, {16, 256}), "super.safetensors");
  EXPECT_EQ(t.widths(-1), test::micro_table().widths(4));
  const auto msg = test::error_of([&] {
    models::load_mask_table(nlohmann::json::object(), "", config, Widths(4, {16, 256}), "m.safetensors");
  });
  EXPECT_NE(msg.find("'m.safetensors' is not a super-network"), std::string::npos) << msg;
  EXPECT_NE(test::error_of([&] {
              models::load_mask_table({}, "/nonexistent/mask_table.json", config, Widths(4, {16, 256}), "m");
            }).find("cannot open '/nonexistent/mask_table.json'"),
            std::string::npos);
}
