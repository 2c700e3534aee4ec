// The distillation term (skd/train/distill.h) against a reference written out by hand in double
// precision: value and gradient, at several temperatures, with the teacher receiving no gradient.
#include "skd/train/distill.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

using namespace skd;

namespace {

// T² · mean_b Σ_c p_t (log p_t − log p_s), each softmax written out as exp(x − max) / Σ exp(x − max).
torch::Tensor reference_kd(const torch::Tensor& s, const torch::Tensor& t, double temperature) {
  auto log_softmax = [](const torch::Tensor& x) {
    const auto shifted = x - std::get<0>(x.max(1, true));
    return shifted - shifted.exp().sum(1, true).log();
  };
  const auto lp_s = log_softmax(s / temperature), lp_t = log_softmax(t / temperature);
  return temperature * temperature * (lp_t.exp() * (lp_t - lp_s)).sum(1).mean();
}

}  // namespace

TEST(DistillationLoss, MatchesAHandWrittenDoubleReferenceWithItsGradient) {
  torch::manual_seed(3);
  for (const double temperature : {1.0, 2.0, 4.0, 0.5}) {
    const auto s0 = torch::randn({6, 10}) * 3, t0 = torch::randn({6, 10}) * 3;
    auto s = s0.clone().requires_grad_(true);
    auto t = t0.clone().requires_grad_(true);
    const auto loss = train::distillation_loss(s, t, temperature);
    loss.backward();
    EXPECT_EQ(loss.scalar_type(), torch::kFloat32);
    EXPECT_FALSE(t.grad().defined() && t.grad().abs().sum().item<double>() != 0)
        << "the teacher gets no gradient";

    auto sd = s0.to(torch::kFloat64).requires_grad_(true);
    const auto ref = reference_kd(sd, t0.to(torch::kFloat64), temperature);
    ref.backward();
    EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-5 * std::max(1.0, ref.item<double>()))
        << temperature;
    EXPECT_TRUE(torch::allclose(s.grad().to(torch::kFloat64), sd.grad(), 1e-5, 1e-7)) << temperature;
    // The gradient in closed form: T · (p_s − p_t) / B.
    const auto closed = temperature *
                        (torch::softmax(s0.to(torch::kFloat64) / temperature, 1) -
                         torch::softmax(t0.to(torch::kFloat64) / temperature, 1)) /
                        6.0;
    EXPECT_TRUE(torch::allclose(sd.grad(), closed, 1e-9, 1e-12)) << temperature;
  }
}

TEST(DistillationLoss, ZeroForEqualLogitsAndDoubleStaysDouble) {
  const auto x = torch::randn({3, 5}, torch::kFloat64);
  const auto l = train::distillation_loss(x, x, 2.0);
  EXPECT_EQ(l.scalar_type(), torch::kFloat64);
  EXPECT_NEAR(l.item<double>(), 0.0, 1e-12);
  // Extreme logits stay finite (a teacher probability of exactly 0 contributes 0).
  const auto big = torch::tensor({{1000.0f, -1000.0f, 0.0f}});
  EXPECT_TRUE(std::isfinite(train::distillation_loss(big, -big, 1.0).item<double>()));
}

TEST(DistillationLoss, RejectsMismatchedShapesAndTemperature) {
  EXPECT_THROW(train::distillation_loss(torch::zeros({2, 3}), torch::zeros({2, 4}), 1.0),
               std::invalid_argument);
  EXPECT_THROW(train::distillation_loss(torch::zeros({2, 3}), torch::zeros({2, 3}), 0.0),
               std::invalid_argument);
  EXPECT_THROW(train::distillation_loss(torch::zeros({6}), torch::zeros({6}), 1.0), std::invalid_argument);
}
