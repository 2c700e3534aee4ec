// Architecture configs: named configs, timm-kwarg JSON, validation errors that name the key.
#include "skd/models/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "skd/core/error.h"
#include "skd/models/swin.h"
#include "test_util.h"

using namespace skd::models;
using nlohmann::json;

namespace {

std::string error_of(const json& j) {
  try {
    config_from_json(j, "cfg.json");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Config, NamedConfigsAndAliases) {
  EXPECT_EQ(named_config("deit_small").embed_dim, 384);
  EXPECT_EQ(named_config("vit_base").num_heads, 12);
  EXPECT_EQ(named_config("deit_tiny_patch16_224").name, "deit_tiny");
  const auto s = named_config("swin_base");
  EXPECT_EQ(s.family, Family::SWIN);
  EXPECT_EQ(s.stage_heads, (std::vector<int64_t>{4, 8, 16, 32}));
  EXPECT_DOUBLE_EQ(s.norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(named_config("deit_base").norm_eps, 1e-6);
  try {
    named_config("resnet50");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("deit_small"), std::string::npos);
  }
}

TEST(Config, FixtureCreateKwargsResolve) {
  const auto v = resolve_arch(skd::test::fixture("timm/vit_micro_32.json"));
  EXPECT_EQ(v.family, Family::VIT);
  EXPECT_EQ(v.embed_dim, 64);
  EXPECT_EQ(v.num_classes, 10);
  const auto s = resolve_arch(skd::test::fixture("timm/swin_micro_32.json"));
  EXPECT_EQ(s.family, Family::SWIN);
  EXPECT_EQ(s.depths, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(s.window_size, 4);
  const auto d = resolve_arch(skd::test::fixture("timm/deit_tiny_patch16_224.json"));
  EXPECT_EQ(d.embed_dim, 192);
}

TEST(Config, SwinBlockSpecsFollowTimmClamping) {
  const auto specs = block_specs(named_config("swin_tiny"));
  ASSERT_EQ(specs.size(), 12u);
  EXPECT_EQ(specs[1].shift, 3);
  EXPECT_EQ(specs[10].res_h, 7);
  EXPECT_EQ(specs[11].shift, 0);  // 7x7 stage with window 7: no shift
  EXPECT_EQ(specs[11].head_dim, 32);
  EXPECT_EQ(block_prefix(named_config("swin_tiny"), specs[5]), "layers.2.blocks.1.");
}

TEST(Config, JsonRoundTripIncludingWidths) {
  auto c = named_config("swin_micro_32");
  c.widths = full_widths(c);
  c.widths[1] = {8, 0};
  const auto back = config_from_json(config_to_json(c));
  EXPECT_EQ(back.family, c.family);
  EXPECT_EQ(back.depths, c.depths);
  EXPECT_EQ(back.stage_heads, c.stage_heads);
  EXPECT_EQ(back.widths, c.widths);
  EXPECT_EQ(back.window_size, c.window_size);
  EXPECT_DOUBLE_EQ(back.norm_eps, c.norm_eps);
}

TEST(Config, BadValuesNameTheKey) {
  EXPECT_NE(error_of({{"family", "vit"}, {"embed_dim", 100}, {"num_heads", 3}}).find("num_heads"), std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"depht", 3}}).find("'depht'"), std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"depth", "twelve"}}).find("'depth'"), std::string::npos);
  EXPECT_NE(error_of({{"family", "cnn"}}).find("'family'"), std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"global_pool", "avg"}}).find("global_pool"), std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"img_size", 30}, {"patch_size", 4}}).find("img_size"), std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"depth", 2}, {"widths", {{64, 10}}}}).find("widths"), std::string::npos);
  EXPECT_NE(error_of({{"family", "swin"}, {"depths", {2, 2}}, {"num_heads", {3}}}).find("num_heads"), std::string::npos);
  EXPECT_NE(error_of(json::array()).find("cfg.json"), std::string::npos);
}

// Findings of the manifest fuzz target's inputs: sizes far beyond any real model made
// block_specs and macs_count overflow (undefined behaviour: mlp_ratio 1e300, a Swin embed_dim of
// 2^62, img_size 4000000) or allocate gigabytes (depth 1e9 with widths). validate() now refuses
// them, naming the key, before anything is sized from them.
TEST(Config, AbsurdSizesAreRefusedNamingTheKey) {
  EXPECT_NE(error_of({{"family", "vit"}, {"mlp_ratio", 1e300}}).find("mlp_ratio"), std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"depth", 1000000000}, {"widths", {{1, 1}}}}).find("depth"),
            std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"img_size", 4000000}, {"patch_size", 1}}).find("img_size"),
            std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"img_size", 1024}, {"patch_size", 2}}).find("patches per side"),
            std::string::npos);
  EXPECT_NE(error_of({{"family", "vit"}, {"num_classes", int64_t{1} << 40}}).find("num_classes"), std::string::npos);
  EXPECT_NE(error_of({{"family", "swin"}, {"embed_dim", int64_t{1} << 62}, {"depths", {1, 1}}, {"num_heads", {1, 1}}})
                .find("embed_dim"),
            std::string::npos);
  EXPECT_NE(error_of({{"family", "swin"}, {"img_size", 4096}, {"patch_size", 16}, {"embed_dim", 64},
                      {"depths", std::vector<int>(9, 1)}, {"num_heads", std::vector<int>(9, 1)}})
                .find("stages"),
            std::string::npos);
  EXPECT_NE(error_of({{"family", "swin"}, {"embed_dim", 4096}, {"depths", {1, 1, 1, 1}}, {"num_heads", {1, 1, 1, 1}}})
                .find("stage 3 width 32768"),
            std::string::npos);
  // The largest published shapes stay valid (ViT-22B: width 6144, 48 blocks, 48 heads).
  EXPECT_EQ(error_of({{"family", "vit"}, {"embed_dim", 6144}, {"depth", 48}, {"num_heads", 48}, {"img_size", 518},
                      {"patch_size", 14}}),
            "");
  for (const auto& name : named_configs()) EXPECT_NO_THROW(validate(named_config(name))) << name;
}

// Found by the loader fuzzer (issue 25): Swin blocks precompute their window masks at construction,
// res^2 * window^2 floats per stage, while the parameter count barely grows with the window. These
// configs passed every parameter check and needed gigabytes before the first forward.
TEST(Config, SwinWindowBuffersAreBoundedBeforeBuilding) {
  auto swin = [](int64_t img, int64_t patch, int64_t window) {
    return json{{"family", "swin"}, {"img_size", img}, {"patch_size", patch}, {"window_size", window},
                {"embed_dim", 8}, {"depths", {2}}, {"num_heads", {2}}};
  };
  // img 1024 / patch 4 = 256 per side: a mask of 4 * 256^2 * 64^2 = 1 GiB; window 128: 4 GiB and an
  // index of 8 * 128^4 = 2 GiB.
  const std::pair<int64_t, int64_t> refused[] = {{64, (int64_t{1} << 30) + (int64_t{1} << 27)},
                                                 {128, (int64_t{1} << 32) + (int64_t{1} << 31)}};
  for (const auto& [window, bytes] : refused) {
    const auto msg = error_of(swin(1024, 4, window));
    for (const auto& part : {skd::cat("config: img_size 1024 / patch_size 4 with window_size ", window, " needs ", bytes,
                                 " bytes"),
                             std::string("more than the limit of 268435456 (256 MiB)")})
      EXPECT_NE(msg.find(part), std::string::npos) << msg;
  }
  // Reference numbers by hand: swin_tiny (224 px, window 7, resolutions 56/28/14/7, the last unshifted)
  // needs one index 8 * 7^4 and masks 4 * 49 * (56^2 + 28^2 + 14^2).
  EXPECT_EQ(swin_derived_buffer_bytes(named_config("swin_tiny"), full_widths(named_config("swin_tiny"))),
            8 * 2401 + 4 * 49 * (3136 + 784 + 196));
  // swin_base at 384 px with window 12: under 16 MiB.
  auto big = named_config("swin_base");
  big.img_size = 384;
  big.window_size = 12;
  EXPECT_NO_THROW(validate(big));
  EXPECT_LT(swin_derived_buffer_bytes(big, full_widths(big)), int64_t{16} << 20);
  for (const char* name : {"swin_tiny", "swin_small", "swin_base", "swin_micro_32"})
    EXPECT_NO_THROW(validate(named_config(name))) << name;
  EXPECT_NO_THROW(validate(resolve_arch(skd::test::fixture("timm/swin_micro_32.json"))));
  // Only blocks with attention keep buffers: with the attention of the large stage removed nothing
  // is precomputed, and the model builds without masks.
  auto j = swin(1024, 4, 64);
  j["widths"] = {{0, 32}, {0, 32}};
  EXPECT_EQ(error_of(j), "");
  const auto pruned = config_from_json(j, "cfg.json");
  EXPECT_EQ(swin_derived_buffer_bytes(pruned, stored_widths(pruned)), 0);
  // Just inside the bound: 512 / 4 = 128 per side, window 32: 4 * 128^2 * 32^2 + 8 * 32^4 = 72 MiB.
  EXPECT_EQ(error_of(swin(512, 4, 32)), "");
  EXPECT_NE(error_of(swin(512, 2, 64)).find("window_size 64"), std::string::npos);
}

// The blocks of a stage share one index and one shifted-window mask (what the bound counts).
TEST(Config, SwinBlocksShareTheirDerivedBuffers) {
  auto c = named_config("swin_micro_32");
  auto model = create_model(c);
  auto& swin = dynamic_cast<SwinTransformerImpl&>(*model);
  ASSERT_EQ(swin.blocks.size(), 4u);
  EXPECT_TRUE(swin.blocks[0]->rel_index.is_same(swin.blocks[1]->rel_index));
  EXPECT_FALSE(swin.blocks[0]->attn_mask.defined());
  EXPECT_TRUE(swin.blocks[1]->attn_mask.defined());
  c.widths = full_widths(c);
  c.widths[2].attn = 0;
  auto pruned = create_model(c);
  auto& p = dynamic_cast<SwinTransformerImpl&>(*pruned);
  EXPECT_FALSE(p.blocks[2]->rel_index.defined());
  EXPECT_TRUE(p.blocks[3]->rel_index.defined());
  const auto x = torch::randn({1, 3, 32, 32});
  EXPECT_EQ(pruned->forward(x).sizes(), (std::vector<int64_t>{1, 10}));
}

TEST(Config, ResolveArchFileErrors) {
  const auto dir = skd::test::scratch_dir("config_test");
  EXPECT_THROW(resolve_arch(dir + "/missing.json"), std::invalid_argument);
  std::ofstream(dir + "/bad.json") << "{not json";
  try {
    resolve_arch(dir + "/bad.json");
    FAIL();
  } catch (const skd::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos);
  }
}

TEST(Config, ShippedConfigFilesParseAndMatchNamedConfigs) {
  for (const std::string name : {"deit_tiny", "deit_small", "deit_base", "swin_tiny", "swin_small", "swin_base"}) {
    const auto from_file = resolve_arch(std::string(SKD_SOURCE_DIR) + "/configs/models/" + name + ".json");
    EXPECT_EQ(config_to_json(from_file), config_to_json(named_config(name))) << name;
  }
  EXPECT_NO_THROW(resolve_arch(std::string(SKD_SOURCE_DIR) + "/configs/models/vit_fmnist_demo.json"));
}
