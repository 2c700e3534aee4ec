#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "skd/train/config.h"
#include "skd/train/optim.h"

using namespace skd::train;

TEST(NoWeightDecay, DeitGroups) {
  EXPECT_TRUE(no_weight_decay("cls_token", torch::zeros({1, 1, 4})));
  EXPECT_TRUE(no_weight_decay("pos_embed", torch::zeros({1, 5, 4})));
  EXPECT_TRUE(no_weight_decay("blocks.0.norm1.weight", torch::zeros({4})));
  EXPECT_TRUE(no_weight_decay("blocks.0.attn.qkv.bias", torch::zeros({12})));
  EXPECT_TRUE(no_weight_decay("layers.0.blocks.0.attn.relative_position_bias_table", torch::zeros({9, 2})));
  EXPECT_FALSE(no_weight_decay("blocks.0.attn.qkv.weight", torch::zeros({12, 4})));
  EXPECT_FALSE(no_weight_decay("patch_embed.proj.weight", torch::zeros({4, 1, 2, 2})));
}

// Our AdamW must follow torch's AdamW arithmetic step for step (decay groups included).
TEST(AdamW, MatchesTorchAdamW) {
  torch::manual_seed(3);
  auto w = torch::randn({5, 3}), b = torch::randn({5});
  auto w2 = w.clone().requires_grad_(), b2 = b.clone().requires_grad_();
  w.requires_grad_();
  b.requires_grad_();
  AdamW ours({{"fc.weight", w}, {"fc.bias", b}}, AdamWConfig{0.9, 0.999, 1e-8, 0.05});
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{w2},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0.05)));
  groups.emplace_back(std::vector<torch::Tensor>{b2},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0.0)));
  torch::optim::AdamW ref(std::move(groups));
  const auto x = torch::randn({7, 3});
  for (int step = 0; step < 6; ++step) {
    const double lr = 1e-2 * (step + 1) / 6;
    for (auto& g : ref.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    ours.zero_grad();
    ref.zero_grad();
    torch::nn::functional::linear(x, w, b).pow(2).sum().backward();
    torch::nn::functional::linear(x, w2, b2).pow(2).sum().backward();
    ours.step(lr);
    ref.step();
    ASSERT_TRUE(torch::allclose(w, w2, 1e-6, 1e-7)) << "step " << step;
    ASSERT_TRUE(torch::allclose(b, b2, 1e-6, 1e-7)) << "step " << step;
  }
}

TEST(AdamW, StateRoundTripContinuesIdentically) {
  auto make = [] {
    torch::manual_seed(5);
    return torch::randn({4, 4}).requires_grad_();
  };
  auto p1 = make(), p2 = make();
  AdamW a({{"w", p1}}, {}), b({{"w", p2}}, {});
  auto run = [](AdamW& o, torch::Tensor& p, int steps) {
    for (int i = 0; i < steps; ++i) {
      o.zero_grad();
      (p * p).sum().backward();
      o.step(1e-2);
    }
  };
  run(a, p1, 5);
  run(b, p2, 2);
  AdamW c({{"w", p2}}, {});
  c.load_state(b.state(), "test");
  run(c, p2, 3);
  EXPECT_TRUE(torch::equal(p1, p2));
  EXPECT_EQ(c.state().at("w/step").item<int64_t>(), 5);
  auto bad = b.state();
  bad.erase("w/step");
  EXPECT_THROW(c.load_state(bad, "ckpt.safetensors"), std::runtime_error);
  bad = b.state();
  bad["w/exp_avg"] = torch::zeros({3});
  try {
    c.load_state(bad, "ckpt.safetensors");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt.safetensors"), std::string::npos);
  }
}

TEST(AdamW, SkipsParamsWithoutGrad) {
  auto p = torch::ones({3}).requires_grad_();
  AdamW o({{"p", p}}, {});
  o.step(0.1);
  EXPECT_TRUE(torch::equal(p, torch::ones({3})));
  EXPECT_EQ(o.state().at("p/step").item<int64_t>(), 0);
}

TEST(LrSchedule, WarmupThenCosine) {
  LrSchedule s{1e-3, 1e-5, 1e-6, 2, 10};
  EXPECT_DOUBLE_EQ(s.at(0), 1e-6);
  EXPECT_NEAR(s.at(1), 1e-6 + (1e-3 - 1e-6) / 2, 1e-15);
  EXPECT_NEAR(s.at(2), 1e-3, 1e-15);
  EXPECT_NEAR(s.at(6), 1e-5 + 0.5 * (1e-3 - 1e-5), 1e-12);  // halfway through the cosine
  EXPECT_NEAR(s.at(10), 1e-5, 1e-15);
  EXPECT_NEAR(s.at(12), 1e-5, 1e-15);  // clamped past the end
  LrSchedule no_warmup{1e-3, 0, 0, 0, 4};
  EXPECT_NEAR(no_warmup.at(0), 1e-3, 1e-15);
  EXPECT_LT(no_warmup.at(1), no_warmup.at(0.5));
}

TEST(GradScaler, BacksOffOnOverflowAndGrows) {
  GradScaler s(true, 1024.0, 2.0, 0.5, 3);
  auto p = torch::zeros({2}).requires_grad_();
  p.mutable_grad() = torch::tensor({2048.0f, 1024.0f});
  EXPECT_FALSE(s.unscale_and_check({{"p", p}}));
  EXPECT_TRUE(torch::allclose(p.grad(), torch::tensor({2.0f, 1.0f})));
  s.update(false);
  p.mutable_grad() = torch::tensor({INFINITY, 1.0f});
  EXPECT_TRUE(s.unscale_and_check({{"p", p}}));
  s.update(true);
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_EQ(s.growth_tracker(), 0);
  for (int i = 0; i < 3; ++i) s.update(false);
  EXPECT_EQ(s.scale(), 1024.0);
  p.mutable_grad() = torch::tensor({NAN, 1.0f});
  EXPECT_TRUE(s.unscale_and_check({{"p", p}}));
  GradScaler off(false);
  EXPECT_EQ(off.scale(), 1.0);
  off.update(true);
  EXPECT_EQ(off.scale(), 1.0);
}

TEST(ModelEma, AveragesAndRestores) {
  auto w = torch::zeros({2});
  ModelEma ema({{"w", w}}, 0.9);
  w.fill_(1.0);
  ema.update({{"w", w}});
  EXPECT_NEAR(ema.values()[0].second[0].item<double>(), 0.1, 1e-7);
  ema.update({{"w", w}});
  EXPECT_NEAR(ema.values()[0].second[0].item<double>(), 0.19, 1e-7);
  auto target = torch::zeros({2});
  ema.copy_to({{"w", target}});
  EXPECT_NEAR(target[1].item<double>(), 0.19, 1e-7);
  EXPECT_THROW(ema.load({{"v", w}}, "x"), std::runtime_error);
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
  auto a = torch::zeros({2}).requires_grad_(), b = torch::zeros({1}).requires_grad_();
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({{"a", a}, {"b", b}}, 1.0).item<double>(), 5.0, 1e-9);
  EXPECT_NEAR(a.grad()[0].item<double>(), 0.6, 1e-5);
  EXPECT_NEAR(b.grad()[0].item<double>(), 0.8, 1e-5);
  EXPECT_NEAR(clip_grad_norm({{"a", a}, {"b", b}}, 10.0).item<double>(), 1.0, 1e-5);  // under the limit: unchanged
  EXPECT_NEAR(b.grad()[0].item<double>(), 0.8, 1e-5);
}

TEST(TrainConfig, JsonRoundTripAndStrictKeys) {
  TrainConfig c;
  c.epochs = 7;
  c.lr = 1e-3;
  c.model_ema = true;
  c.run_dir = "/tmp/x";
  const auto j = config_to_json(c);
  const auto back = config_from_json(j, "t");
  EXPECT_EQ(config_to_json(back), j);
  try {
    config_from_json({{"epochz", 3}}, "recipe.json");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("recipe.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("epochz"), std::string::npos);
  }
  EXPECT_THROW(config_from_json({{"epochs", "three"}}, "r"), std::invalid_argument);
  EXPECT_THROW(config_from_json({{"model_ema", 1}}, "r"), std::invalid_argument);
  EXPECT_THROW(config_from_json({{"seed", -1}}, "r"), std::invalid_argument);
  TrainConfig bad;
  bad.batch_size = 3;  // odd with mixup on
  EXPECT_THROW(validate(bad), std::invalid_argument);
  bad.mixup = bad.cutmix = 0;
  EXPECT_NO_THROW(validate(bad));
  EXPECT_THROW(config_from_json({{"amp", "fp8"}}, "r"), std::invalid_argument);  // enum names checked at the edge
}

// Every shipped recipe (configs/train/*.json) must parse and validate; the PIAD ones select PIAD.
TEST(TrainConfig, ShippedRecipesAreValid) {
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(SKD_SOURCE_DIR) + "/configs/train")) {
    if (e.path().extension() != ".json") continue;
    const std::string path = e.path().string();
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    const auto c = config_from_json(nlohmann::json::parse(in), path);
    EXPECT_NO_THROW(validate(c)) << path;
    if (e.path().filename().string().rfind("piad_", 0) == 0) { EXPECT_EQ(c.mode, Mode::PIAD) << path; }
    ++count;
  }
  EXPECT_GE(count, 9);
}

namespace {
TrainConfig shipped_recipe(const std::string& name) {
  const std::string path = std::string(SKD_SOURCE_DIR) + "/configs/train/" + name + ".json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing recipe " + path);
  return config_from_json(nlohmann::json::parse(in), path);
}
}  // namespace

// The distillation variants (piad_deit_<size>_kd.json) are their paper recipe plus piad_distill*
// keys only: everything else equal, a teacher chosen.
TEST(TrainConfig, DistillationRecipesDifferFromThePaperOnlyInTheTeacher) {
  for (const std::string size : {"tiny", "small", "base"}) {
    SCOPED_TRACE(size);
    const TrainConfig paper = shipped_recipe("piad_deit_" + size),
                      kd = shipped_recipe("piad_deit_" + size + "_kd");
    EXPECT_EQ(paper.piad.distill, skd::piad::Distill::NONE);
    EXPECT_NE(kd.piad.distill, skd::piad::Distill::NONE);
    auto rest = [](const TrainConfig& c) {
      auto j = config_to_json(c);
      for (const char* k : {"piad_distill", "piad_distill_weight", "piad_distill_temperature"}) j.erase(k);
      return j;
    };
    EXPECT_EQ(rest(paper), rest(kd));
  }
}

// The GPU recipes carry the reference's values: PIAD §4.10 (run_train.sh + main.py defaults) and the
// peeled fine-tune §5.3 (run_train_peeled.sh). A drifted value fails here, naming the file.
TEST(TrainConfig, ShippedRecipesMatchTheReference) {
  for (const std::string family : {"deit", "swin"}) {
    for (const std::string size : {"tiny", "small", "base"}) {
      const std::string name = "piad_" + family + "_" + size;
      const TrainConfig c = shipped_recipe(name);
      SCOPED_TRACE(name);
      EXPECT_EQ(c.mode, Mode::PIAD);
      EXPECT_EQ(c.epochs, size == "base" ? 150 : 300);
      EXPECT_EQ(c.piad.progressive_epochs, 50);
      EXPECT_DOUBLE_EQ(c.piad.budget_ratio, 0.875);
      EXPECT_EQ(c.piad.proxy_samples, 1024);
      EXPECT_EQ(c.batch_size, 128);
      EXPECT_DOUBLE_EQ(c.lr, 5e-4);
      EXPECT_FALSE(c.unscale_lr);  // 5e-4 x 256 / 512 on the official 2 x 128
      EXPECT_DOUBLE_EQ(c.min_lr, 1e-5);
      EXPECT_DOUBLE_EQ(c.warmup_epochs, 0);
      EXPECT_DOUBLE_EQ(c.weight_decay, 0.05);
      EXPECT_DOUBLE_EQ(c.smoothing, 0.1);
      EXPECT_DOUBLE_EQ(c.mixup, 0.8);
      EXPECT_DOUBLE_EQ(c.cutmix, 1.0);
      EXPECT_DOUBLE_EQ(c.drop_path, 0);
      EXPECT_DOUBLE_EQ(c.clip_grad, 0);
      EXPECT_TRUE(c.repeated_aug);
      EXPECT_TRUE(c.model_ema);
      EXPECT_DOUBLE_EQ(c.model_ema_decay, 0.99996);
    }
  }
  const TrainConfig ft = shipped_recipe("finetune_peeled");
  EXPECT_EQ(ft.mode, Mode::TRAIN);
  EXPECT_EQ(ft.epochs, 30);
  EXPECT_DOUBLE_EQ(ft.lr, 5e-5);
  EXPECT_FALSE(ft.unscale_lr);
  EXPECT_DOUBLE_EQ(ft.min_lr, 1e-6);
  EXPECT_DOUBLE_EQ(ft.warmup_epochs, 0);
  EXPECT_DOUBLE_EQ(ft.drop_path, 0.1);
  EXPECT_DOUBLE_EQ(ft.mixup, 0.8);
  EXPECT_DOUBLE_EQ(ft.cutmix, 1.0);
  EXPECT_DOUBLE_EQ(ft.smoothing, 0.1);
  EXPECT_TRUE(ft.repeated_aug);
  // The demo's recipe is a PIAD run on Fashion-MNIST that the embedded model can take.
  const TrainConfig demo = shipped_recipe("demo_fmnist");
  EXPECT_EQ(demo.mode, Mode::PIAD);
  EXPECT_EQ(demo.data, "fashion-mnist");
  EXPECT_LT(demo.piad.progressive_epochs, demo.epochs);
}

// The multi-tensor kernels against the per-tensor reference: FOREACH is the same ops in the same
// order on CPU (bit-identical); FUSED (one _fused_adamw_ kernel, LibTorch >= 2.4) the same arithmetic
// in another order. Two decay groups, and a parameter whose grad is missing on some steps (its own
// step count, so a group of its own).
TEST(AdamW, ForeachAndFusedStepsEqualPerTensorSteps) {
  auto make = [] {
    torch::manual_seed(11);
    return std::vector<torch::Tensor>{torch::randn({6, 5}).requires_grad_(), torch::randn({6}).requires_grad_(),
                                      torch::randn({3, 5}).requires_grad_()};
  };
  const auto x = torch::randn({9, 5});
  auto run = [&](OptimizerKernel kernel) {
    auto p = make();
    AdamWConfig cfg;
    cfg.kernel = kernel;
    AdamW opt({{"fc.weight", p[0]}, {"fc.bias", p[1]}, {"head.weight", p[2]}}, cfg);
    ModelEma ema({{"fc.weight", p[0]}, {"fc.bias", p[1]}, {"head.weight", p[2]}}, 0.9);
    for (int step = 0; step < 5; ++step) {
      opt.zero_grad();
      auto y = torch::nn::functional::linear(x, p[0], p[1]).tanh().pow(2).sum();
      if (step % 2 == 0) y = y + torch::nn::functional::linear(x, p[2]).pow(2).mean();
      y.backward();
      clip_grad_norm(opt.params(), 2.0);
      opt.step(1e-2 / (step + 1));
      ema.update(opt.params());
    }
    std::vector<torch::Tensor> out;
    for (auto& t : p) out.push_back(t.detach().clone());
    for (const auto& [name, t] : ema.values()) out.push_back(t.clone());
    for (const auto& [name, t] : opt.state()) out.push_back(t.clone());
    return out;
  };
  const auto reference = run(OptimizerKernel::PER_TENSOR);
  const auto foreach_ = run(OptimizerKernel::FOREACH);
  ASSERT_EQ(reference.size(), foreach_.size());
  for (size_t i = 0; i < reference.size(); ++i) EXPECT_TRUE(torch::equal(reference[i], foreach_[i])) << "tensor " << i;
  if (!fused_adamw_available()) GTEST_SKIP() << "no _fused_adamw_ in this LibTorch (< 2.4)";
  const auto fused = run(OptimizerKernel::FUSED);
  ASSERT_EQ(reference.size(), fused.size());
  for (size_t i = 0; i < reference.size(); ++i)
    EXPECT_TRUE(torch::allclose(reference[i].to(torch::kDouble), fused[i].to(torch::kDouble), 1e-6, 1e-7))
        << "tensor " << i << ": max diff " << (reference[i].to(torch::kDouble) - fused[i].to(torch::kDouble)).abs().max();
}

// The fused kernel keeps its own step tensors: a state saved after FUSED steps continues identically
// under FOREACH and vice versa (what a checkpoint written on a GPU and resumed on a CPU does).
TEST(AdamW, FusedStateRoundTripsThroughCheckpointState) {
  if (!fused_adamw_available()) GTEST_SKIP() << "no _fused_adamw_ in this LibTorch (< 2.4)";
  torch::manual_seed(2);
  auto p = torch::randn({4, 3}).requires_grad_();
  AdamWConfig fused_cfg;
  fused_cfg.kernel = OptimizerKernel::FUSED;
  AdamW a({{"w", p}}, fused_cfg);
  for (int i = 0; i < 3; ++i) {
    a.zero_grad();
    p.pow(3).sum().backward();
    a.step(1e-2);
  }
  const auto st = a.state();
  EXPECT_EQ(st.at("w/step").item<int64_t>(), 3);
  auto q = p.detach().clone().requires_grad_();
  AdamW b({{"w", q}}, {});
  b.load_state(st, "test");
  a.zero_grad();
  b.zero_grad();
  p.pow(3).sum().backward();
  q.pow(3).sum().backward();
  a.step(1e-2);
  b.step(1e-2);
  EXPECT_TRUE(torch::allclose(p, q, 1e-6, 1e-7));
  EXPECT_EQ(a.state().at("w/step").item<int64_t>(), 4);
}
