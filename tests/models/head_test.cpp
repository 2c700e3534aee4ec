// A new classification head: the backbone (features, widths, scales) is kept, the head has the new
// class count, timm's initialisation (trunc_normal std 0.02, bias 0), a seed-determined draw, and
// the MACs/params of the manifest follow the class count.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/models/checkpoint.h"
#include "skd/models/head.h"
#include "skd/models/macs.h"
#include "skd/models/slice.h"

using namespace skd::models;

namespace {

class NewHead : public ::testing::TestWithParam<const char*> {};

Widths reduced(const ModelConfig& c) {
  Widths w;
  for (const auto& s : block_specs(c)) w.push_back({s.index == 1 ? 0 : s.head_dim / 2, s.index == 2 ? 0 : s.mlp_hidden / 4});
  return w;
}

}  // namespace

TEST_P(NewHead, KeepsTheBackboneAndReinitialisesTheHead) {
  torch::manual_seed(0);
  auto full = create_model(named_config(GetParam()));
  // An extracted sub-network (reduced shapes, removed branches), as skd-train would fine-tune.
  ElasticModel model = slice_model(*full, reduced(full->config()));
  model->eval();
  const auto x = torch::randn({2, 3, 32, 32});
  torch::Tensor features_before;
  {
    torch::NoGradGuard g;
    features_before = model->forward_head(model->forward_features(x), true);
  }
  const auto widths = model->widths();
  const auto old_cost = macs_count(model->config(), widths);
  ElasticModel before = model;
  replace_head(model, 4, 7);
  EXPECT_NE(model.get(), before.get());
  EXPECT_EQ(model->config().num_classes, 4);
  EXPECT_EQ(model->widths(), widths);
  EXPECT_FALSE(model->is_training());
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(model->forward_head(model->forward_features(x), true), features_before));
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 4}));
  const auto [wk, bk] = head_keys(model->config());
  const auto params = model->named_parameters(true);
  const auto w = params[wk], b = params[bk];
  const int64_t dim = w.size(1);
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{4, dim}));
  EXPECT_TRUE(torch::equal(b, torch::zeros({4})));
  EXPECT_NEAR(w.std().item<double>(), 0.02, 0.006);  // 4 x dim draws of N(0, 0.02)
  EXPECT_LT(w.abs().max().item<double>(), 2.0);
  // The same seed draws the same head; another seed another one.
  ElasticModel again = slice_model(*full, reduced(full->config()));
  replace_head(again, 4, 7);
  EXPECT_TRUE(torch::equal(again->named_parameters(true)[wk], w));
  ElasticModel other = slice_model(*full, reduced(full->config()));
  replace_head(other, 4, 8);
  EXPECT_FALSE(torch::equal(other->named_parameters(true)[wk], w));
  // Params and MACs follow num_classes: the head is dim x classes + classes.
  const auto cost = macs_count(model->config(), widths);
  const int64_t delta = (dim + 1) * (4 - before->config().num_classes);
  EXPECT_EQ(cost.params - old_cost.params, delta);
  EXPECT_EQ(cost.macs_paper - old_cost.macs_paper, delta);
  const auto manifest = make_manifest(*model, nlohmann::json::object());
  EXPECT_EQ(manifest["config"]["num_classes"], 4);
  EXPECT_EQ(manifest["macs"]["params"], cost.params);
  int64_t counted = 0;
  for (const auto& p : model->parameters()) counted += p.numel();
  EXPECT_EQ(counted, cost.params);
}

TEST_P(NewHead, RefusesABadClassCount) {
  auto model = create_model(named_config(GetParam()));
  try {
    replace_head(model, 0, 0);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("num_classes 0"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Families, NewHead, ::testing::Values("vit_micro_32", "swin_micro_32"));
