// Elasticity: running at reduced widths equals a model holding the sliced parameters; gradients
// land in the full tensors (zeros outside the slice); removed branches behave as identities.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/slice.h"

using namespace skd::models;

namespace {

ModelConfig micro(Family f) { return named_config(f == Family::VIT ? "vit_micro_32" : "swin_micro_32"); }

Widths mixed_widths(const ModelConfig& c) {
  Widths w;
  for (const auto& s : block_specs(c)) {
    // A mix of partial, removed and full branches.
    const int64_t a = s.index % 3 == 1 ? 0 : (s.index % 3 == 0 ? s.head_dim / 2 : s.head_dim);
    const int64_t m = s.index % 4 == 3 ? 0 : s.mlp_hidden / (1 + s.index % 2);
    w.push_back({a, m});
  }
  return w;
}

class Elastic : public ::testing::TestWithParam<Family> {};

TEST_P(Elastic, SlicedModelEqualsWidthForward) {
  torch::manual_seed(0);
  auto model = create_model(micro(GetParam()));
  model->eval();
  const auto w = mixed_widths(model->config());
  auto sliced = slice_model(*model, w);
  sliced->eval();
  EXPECT_EQ(sliced->widths(), w);
  torch::NoGradGuard g;
  const auto x = torch::randn({3, 3, 32, 32});
  ForwardOptions opt;
  opt.widths = &w;
  const auto expected = model->forward(x, opt);
  EXPECT_LE((sliced->forward(x) - expected).abs().max().item<double>(), 1e-5);
  // At full widths the slice is the same model.
  const auto full = full_widths(model->config());
  auto same = slice_model(*model, full);
  EXPECT_TRUE(torch::allclose(same->forward(x), model->forward(x), 0, 0));
  // A sliced model sliced again keeps working (extraction from an extracted model).
  Widths smaller = w;
  for (auto& b : smaller) b = {b.attn / 2, b.mlp / 2};
  opt.widths = &smaller;
  auto twice = slice_model(*sliced, smaller);
  EXPECT_LE((twice->forward(x) - model->forward(x, opt)).abs().max().item<double>(), 1e-5);
}

TEST_P(Elastic, ParamCountMatchesMacsFormula) {
  auto model = create_model(micro(GetParam()));
  const auto w = mixed_widths(model->config());
  auto sliced = slice_model(*model, w);
  auto count = [](const ElasticModelImpl& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    return n;
  };
  EXPECT_EQ(count(*model), macs_count(model->config()).params);
  EXPECT_EQ(count(*sliced), macs_count(sliced->config()).params);
  EXPECT_EQ(macs_count(sliced->config()).macs_paper, macs_count(model->config(), w).macs_paper);
}

TEST_P(Elastic, GradientsLandInFullTensorsWithZerosOutsideSlice) {
  torch::manual_seed(1);
  auto model = create_model(micro(GetParam()));
  auto w = full_widths(model->config());
  const auto spec0 = block_specs(model->config())[0];
  w[0] = {spec0.head_dim / 4, spec0.mlp_hidden / 2};
  w[1].attn = 0;
  ForwardOptions opt;
  opt.widths = &w;
  opt.zero_grad_removed = true;
  model->forward(torch::randn({2, 3, 32, 32}), opt).sum().backward();
  const auto params = model->named_parameters(true);
  const std::string p0 = block_prefix(model->config(), spec0);
  const auto g = params[p0 + "attn.qkv.weight"].grad().view({3, spec0.num_heads, spec0.head_dim, -1});
  EXPECT_GT(g.narrow(2, 0, w[0].attn).abs().sum().item<double>(), 0);
  EXPECT_EQ(g.narrow(2, w[0].attn, spec0.head_dim - w[0].attn).abs().sum().item<double>(), 0);
  const auto gf = params[p0 + "mlp.fc1.weight"].grad();
  EXPECT_EQ(gf.narrow(0, w[0].mlp, spec0.mlp_hidden - w[0].mlp).abs().sum().item<double>(), 0);
  // Removed branch: gradients defined and zero.
  const auto spec1 = block_specs(model->config())[1];
  const auto g1 = params[block_prefix(model->config(), spec1) + "attn.qkv.weight"].grad();
  ASSERT_TRUE(g1.defined());
  EXPECT_EQ(g1.abs().sum().item<double>(), 0);
}

TEST_P(Elastic, RemovedBranchesAreIdentity) {
  auto model = create_model(micro(GetParam()));
  model->eval();
  Widths none(block_specs(model->config()).size(), BlockWidth{0, 0});
  auto bare = slice_model(*model, none);
  EXPECT_TRUE(bare->named_parameters(true).find(block_prefix(model->config(), block_specs(model->config())[0]) +
                                                "norm1.weight") == nullptr);
  torch::NoGradGuard g;
  const auto x = torch::randn({1, 3, 32, 32});
  ForwardOptions opt;
  opt.widths = &none;
  EXPECT_LE((bare->forward(x) - model->forward(x, opt)).abs().max().item<double>(), 1e-6);
}

TEST_P(Elastic, WidthsLargerThanStoredAreRejected) {
  auto model = create_model(micro(GetParam()));
  const auto half = mixed_widths(model->config());
  auto sliced = slice_model(*model, half);
  const auto full = full_widths(model->config());
  ForwardOptions opt;
  opt.widths = &full;
  EXPECT_THROW(sliced->forward(torch::randn({1, 3, 32, 32}), opt), std::invalid_argument);
  EXPECT_THROW(slice_model(*sliced, full), std::invalid_argument);
  Widths wrong_count(1);
  EXPECT_THROW(slice_model(*model, wrong_count), std::invalid_argument);
}

TEST_P(Elastic, WrongInputShapeIsAClearError) {
  auto model = create_model(micro(GetParam()));
  try {
    model->forward(torch::randn({1, 3, 28, 28}));
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expects input [B, 3, 32, 32]"), std::string::npos) << e.what();
  }
}

TEST_P(Elastic, ProbesExposeQkvAndMlpActivationsWithGradients) {
  auto model = create_model(micro(GetParam()));
  Probes probes;
  probes.capture_qkv = probes.capture_mlp_act = probes.retain_grad = true;
  ForwardOptions opt;
  opt.probes = &probes;
  model->forward(torch::randn({2, 3, 32, 32}), opt).sum().backward();
  const auto n = static_cast<size_t>(model->config().num_blocks());
  ASSERT_EQ(probes.qkv.size(), n);
  ASSERT_EQ(probes.mlp_act.size(), n);
  EXPECT_EQ(probes.qkv_blocks.size(), n);
  EXPECT_TRUE(probes.qkv[0].grad().defined());
  EXPECT_TRUE(probes.mlp_act[n - 1].grad().defined());
}

INSTANTIATE_TEST_SUITE_P(Families, Elastic, ::testing::Values(Family::VIT, Family::SWIN),
                         [](const auto& info) { return std::string(family_name(info.param)); });

}  // namespace
