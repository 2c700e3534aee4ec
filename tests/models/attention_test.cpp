// The fused attention path (scaled_dot_product_attention with the block's own scale) against the
// explicit softmax(q kᵀ · scale + bias + mask) v: same logits and same gradients, ViT and Swin, at
// full widths, at sliced widths (narrow heads keep the original head dim's scale) and with removed
// branches.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/models/config.h"
#include "skd/models/model.h"

using namespace skd::models;

namespace {

Widths sliced_widths(const ModelConfig& c) {
  Widths w;
  for (const auto& s : block_specs(c)) {
    const int64_t a = s.index % 3 == 1 ? 0 : (s.index % 3 == 0 ? std::max<int64_t>(1, s.head_dim / 4) : s.head_dim);
    w.push_back({a, s.mlp_hidden / (1 + s.index % 2)});
  }
  return w;
}

struct Run {
  torch::Tensor logits;
  std::vector<torch::Tensor> grads;
};

Run run(ElasticModelImpl& model, const torch::Tensor& x, const Widths* widths, AttentionKernel kernel) {
  model.zero_grad();
  ForwardOptions opt;
  opt.widths = widths;
  opt.attention = kernel;
  opt.zero_grad_removed = true;
  auto logits = model.forward(x, opt);
  // A loss that weighs every logit differently, so every gradient path is exercised.
  (logits * torch::linspace(-1.0, 1.0, logits.numel()).view(logits.sizes())).sum().backward();
  Run r{logits.detach(), {}};
  for (const auto& p : model.parameters()) r.grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return r;
}

class FusedAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(FusedAttention, EqualsExplicitForwardAndGradients) {
  if (!fused_attention_available())
    GTEST_SKIP() << "this LibTorch has no scaled_dot_product_attention with a scale (< 2.1): FUSED runs the "
                    "explicit form";
  torch::manual_seed(3);
  auto model = create_model(named_config(GetParam()));
  model->train();  // drop_path is 0: training mode only keeps the graph as in training
  const auto x = torch::randn({4, model->config().in_chans, model->config().img_size, model->config().img_size});
  const auto sliced = sliced_widths(model->config());
  for (const Widths* w : {static_cast<const Widths*>(nullptr), &sliced}) {
    const auto exact = run(*model, x, w, AttentionKernel::EXPLICIT);
    const auto fused = run(*model, x, w, AttentionKernel::FUSED);
    EXPECT_LE((fused.logits - exact.logits).abs().max().item<double>(), 1e-5) << (w ? "sliced" : "full");
    ASSERT_EQ(fused.grads.size(), exact.grads.size());
    for (size_t i = 0; i < exact.grads.size(); ++i) {
      ASSERT_EQ(fused.grads[i].defined(), exact.grads[i].defined());
      if (!exact.grads[i].defined()) continue;
      const double scale = std::max(1.0, exact.grads[i].abs().max().item<double>());
      EXPECT_LE((fused.grads[i] - exact.grads[i]).abs().max().item<double>(), 1e-5 * scale)
          << (w ? "sliced" : "full") << " parameter " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, FusedAttention, ::testing::Values("vit_micro_32", "swin_micro_32"));

}  // namespace
