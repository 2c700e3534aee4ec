// Taylor importance (the paper's Θ, eq. 9 and 14) against the formula worked by hand: the score
// functions on literal numbers, dim_importance as the reduction its header states (Σ |g ⊙ f| over
// rows, summed over q, k and v, averaged over heads; MLP units as they are), and the probes' g as the
// gradient of the cost, checked through the parameters that produce each probe (an independent
// backward pass, no probes involved).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/importance/taylor.h"
#include "skd/models/checkpoint.h"
#include "test_dataset.h"
#include "test_util.h"

using namespace skd;

namespace {

models::ElasticModel load_vit_micro() {
  return models::load_model(test::fixture("timm/vit_micro_32.safetensors"),
                            test::fixture("timm/vit_micro_32.json"))
      .model;
}

test::TensorDataset noise_data(const models::ModelConfig& c, int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return test::TensorDataset(
      torch::randn({n, c.in_chans, c.img_size, c.img_size}, gen, torch::TensorOptions()),
      std::min<int64_t>(c.num_classes, 7));
}

torch::Tensor f64(std::initializer_list<double> v) {
  return torch::tensor(std::vector<double>(v), torch::kFloat64);
}

}  // namespace

// f ⊙ g = [[0.5, -2], [-3, 2]]: FO = Σ_rows |f ⊙ g| = [3.5, 4]; SO = Σ_rows 0.5 (f ⊙ g)² = [4.625, 4].
TEST(Taylor, ScoresOfLiteralNumbers) {
  const auto f = torch::tensor({1.0f, -2.0f, 3.0f, 0.5f}).view({2, 2});
  const auto g = torch::tensor({0.5f, 1.0f, -1.0f, 4.0f}).view({2, 2});
  auto fo = torch::zeros({2}, torch::kFloat64);
  auto so = torch::zeros({2}, torch::kFloat64);
  const auto p = importance::accumulate_taylor(f, g, fo, so);
  EXPECT_TRUE(torch::equal(fo, f64({3.5, 4.0}))) << fo;
  EXPECT_TRUE(torch::equal(so, f64({4.625, 4.0}))) << so;
  EXPECT_TRUE(torch::equal(p, torch::tensor({0.5f, 2.0f, 3.0f, 2.0f}).view({2, 2}))) << p;
  // A second call adds to the sums.
  importance::accumulate_taylor(f, g, fo, so);
  EXPECT_TRUE(torch::equal(fo, f64({7.0, 8.0}))) << fo;
  EXPECT_TRUE(torch::equal(so, f64({9.25, 8.0}))) << so;
  // taylor_fo_sum flattens every leading dimension: [2, 2] -> rows of a [1, 2, 2] tensor give the same.
  EXPECT_TRUE(torch::equal(importance::taylor_fo_sum(f.view({1, 2, 2}), g.view({1, 2, 2})), f64({3.5, 4.0})));
  // The absolute value is taken per element, not of the sum: one row's +1 and another's -1 give 2.
  const auto f2 = torch::tensor({1.0f, 1.0f}).view({2, 1});
  const auto g2 = torch::tensor({1.0f, -1.0f}).view({2, 1});
  EXPECT_TRUE(torch::equal(importance::taylor_fo_sum(f2, g2), f64({2.0})));
}

// dim_importance over two proxy batches equals the formula applied to the probes run_proxy_pass hands
// to its visitor: attention Θ[d] = mean over heads h of Σ over q, k, v and over every token of every
// image |g ⊙ f| at (q|k|v, h, d); MLP Θ[j] = Σ |g ⊙ f| of unit j.
TEST(Taylor, DimImportanceIsTheSumOverTokensOfQkvAndHeadsMean) {
  torch::manual_seed(0);
  auto model = load_vit_micro();
  const auto& c = model->config();
  const auto data = noise_data(c, 16, 3);
  importance::ProxyOptions o;
  o.samples = 16;
  o.batch_size = 8;
  const auto batches = importance::proxy_batches(importance::proxy_indices(16, 16, 0), 8, 0, 1);
  const auto theta = importance::dim_importance(*model, data, batches, o, nullptr);

  const int64_t H = c.num_heads, depth = static_cast<int64_t>(model->widths().size());
  std::vector<torch::Tensor> attn(depth), mlp(depth);
  importance::run_proxy_pass(*model, data, batches, o, true, true, [&](const importance::ProbedBatch& b) {
    for (size_t k = 0; k < b.qkv.size(); ++k) {
      const auto blk = b.qkv_blocks[k];
      const int64_t a = b.qkv[k].size(-1) / (3 * H);
      // [rows, tokens, 3, H, a] -> Σ over rows, tokens and q/k/v -> [H, a] -> mean over heads.
      auto per_elem = (b.qkv[k].to(torch::kFloat64) * b.qkv_grad[k].to(torch::kFloat64)).abs();
      auto s = per_elem.reshape({-1, 3, H, a}).sum(std::vector<int64_t>{0, 1}).mean(0);
      attn[blk] = attn[blk].defined() ? attn[blk] + s : s;
    }
    for (size_t k = 0; k < b.mlp_act.size(); ++k) {
      const auto blk = b.mlp_blocks[k];
      auto per_elem = (b.mlp_act[k].to(torch::kFloat64) * b.mlp_grad[k].to(torch::kFloat64)).abs();
      auto s = per_elem.reshape({-1, per_elem.size(-1)}).sum(0);
      mlp[blk] = mlp[blk].defined() ? mlp[blk] + s : s;
    }
  });
  ASSERT_EQ(static_cast<int64_t>(theta.attention.size()), depth);
  for (int64_t i = 0; i < depth; ++i) {
    SCOPED_TRACE("block " + std::to_string(i));
    ASSERT_TRUE(attn[i].defined() && mlp[i].defined());
    ASSERT_EQ(theta.attention[i].sizes(), (std::vector<int64_t>{model->widths()[i].attn}));
    ASSERT_EQ(theta.mlp[i].sizes(), (std::vector<int64_t>{model->widths()[i].mlp}));
    EXPECT_EQ(theta.attention[i].scalar_type(), torch::kFloat64);
    // The product is rounded to float32 in the library and to float64 here: equal to ~1e-6 relative.
    EXPECT_TRUE(torch::allclose(theta.attention[i], attn[i], 1e-5, 0)) << theta.attention[i] << attn[i];
    EXPECT_TRUE(torch::allclose(theta.mlp[i], mlp[i], 1e-5, 0)) << theta.mlp[i] << mlp[i];
    EXPECT_GT(theta.attention[i].min().item<double>(), 0.0);
  }
}

// The probes' g is ∂C/∂f for the cost C = Σ_b logit[b, label_b] (Cost::LOGIT). Checked without probes:
// f = x Wᵀ + b for qkv gives Σ_tokens f_c g_c = Σ_in W[c, in] ∂C/∂W[c, in] + b_c ∂C/∂b_c, and the MLP's
// post-GELU unit j enters fc2 through column j, so Σ_tokens f_j g_j = Σ_o W2[o, j] ∂C/∂W2[o, j].
TEST(Taylor, ProbeGradientsAreTheGradientOfTheCost) {
  auto model = load_vit_micro();
  const auto& c = model->config();
  const auto data = noise_data(c, 8, 5);
  importance::ProxyOptions o;
  o.samples = 8;
  o.batch_size = 8;
  const auto indices = importance::proxy_indices(8, 8, 0);
  const auto batches = importance::proxy_batches(indices, 8, 0, 1);
  importance::ProbedBatch probed;
  importance::run_proxy_pass(*model, data, batches, o, true, true,
                             [&](const importance::ProbedBatch& b) { probed = b; });

  // The same images and labels, in the order of the batch, through a plain forward and backward.
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (auto i : batches.at(0)) {
    auto s = data.get(i, nullptr);
    images.push_back(s.image);
    labels.push_back(s.label);
  }
  model->eval();
  const auto logits = model->forward(torch::stack(images));
  const auto cost = logits.gather(1, torch::tensor(labels).view({-1, 1})).sum();
  const auto params = model->named_parameters();
  std::vector<torch::Tensor> wrt;
  for (int64_t i = 0; i < 2; ++i) {
    const auto p = "blocks." + std::to_string(i) + ".";
    wrt.push_back(params[p + "attn.qkv.weight"]);
    wrt.push_back(params[p + "attn.qkv.bias"]);
    wrt.push_back(params[p + "mlp.fc2.weight"]);
  }
  const auto grads = torch::autograd::grad({cost}, wrt);
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("block " + std::to_string(i));
    ASSERT_EQ(probed.qkv_blocks.at(i), static_cast<int64_t>(i));
    ASSERT_EQ(probed.mlp_blocks.at(i), static_cast<int64_t>(i));
    const auto W = wrt[3 * i].detach().to(torch::kFloat64), b = wrt[3 * i + 1].detach().to(torch::kFloat64);
    const auto gW = grads[3 * i].to(torch::kFloat64), gb = grads[3 * i + 1].to(torch::kFloat64);
    const auto expect_qkv = (W * gW).sum(1) + b * gb;
    const auto f = probed.qkv[i].to(torch::kFloat64), g = probed.qkv_grad[i].to(torch::kFloat64);
    const auto got_qkv = (f * g).reshape({-1, f.size(-1)}).sum(0);
    const double scale_qkv = expect_qkv.abs().max().item<double>();
    EXPECT_GT(scale_qkv, 0.0);
    EXPECT_LT((got_qkv - expect_qkv).abs().max().item<double>(), 1e-4 * scale_qkv);

    const auto W2 = wrt[3 * i + 2].detach().to(torch::kFloat64), gW2 = grads[3 * i + 2].to(torch::kFloat64);
    const auto expect_mlp = (W2 * gW2).sum(0);
    const auto fm = probed.mlp_act[i].to(torch::kFloat64), gm = probed.mlp_grad[i].to(torch::kFloat64);
    const auto got_mlp = (fm * gm).reshape({-1, fm.size(-1)}).sum(0);
    const double scale_mlp = expect_mlp.abs().max().item<double>();
    EXPECT_GT(scale_mlp, 0.0);
    EXPECT_LT((got_mlp - expect_mlp).abs().max().item<double>(), 1e-4 * scale_mlp);
  }
}
