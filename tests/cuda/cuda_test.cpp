// CUDA against CPU. Compiled in every build; each test skips where LibTorch sees no CUDA device
// (CI has none: scripts/gpu_check.sh runs them on a lent GPU). CPU and CUDA logits within 1e-4 (fp32,
// both attention kernels, full and sliced widths); WPAC on CUDA equal to WPAC on the CPU; bf16 PIAD
// training steps finite and learning, also with in-place distillation (the frozen teacher on the
// device, the progressive chain) in the same autocast; an extracted sub-network evaluated on CUDA as on the
// CPU; a NCCL group of one rank; the step-time breakdown read from CUDA events.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <torch/version.h>

#include <chrono>
#include <fstream>
#include <functional>

#include "../train/tiny_training.h"
#include "skd/distributed/communicator.h"
#include "skd/eval/evaluate.h"
#include "skd/models/config.h"
#include "skd/models/mask_table.h"
#include "skd/models/model.h"
#include "skd/models/slice.h"
#include "skd/piad/piad.h"
#include "skd/train/piad_training.h"
#include "skd/train/step_timer.h"
#include "skd/train/trainer.h"
#include "skd/wpac/wpac.h"
#include "test_dataset.h"
#include "test_util.h"

using namespace skd;

namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible to this LibTorch"

// Seeded noise images for a model, labels i % min(classes, 5).
test::TensorDataset noise_data(const models::ModelConfig& c, int64_t n) {
  torch::manual_seed(4);
  return test::TensorDataset(torch::randn({n, c.in_chans, c.img_size, c.img_size}), std::min<int64_t>(c.num_classes, 5),
                             "noise");
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.cpu().to(torch::kDouble) - b.cpu().to(torch::kDouble)).abs().max().item<double>();
}

class CudaFamilies : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaFamilies, LogitsEqualTheCpuLogits) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(0);
  auto model = models::create_model(models::named_config(GetParam()));
  model->eval();
  const auto& c = model->config();
  const auto x = torch::randn({4, c.in_chans, c.img_size, c.img_size});
  models::Widths sliced;
  for (const auto& b : model->widths()) sliced.push_back({b.attn / 2, b.mlp / 3});
  torch::NoGradGuard g;
  std::vector<torch::Tensor> cpu;
  for (const models::Widths* w : std::vector<const models::Widths*>{nullptr, &sliced})
    for (auto k : {models::AttentionKernel::EXPLICIT, models::AttentionKernel::FUSED}) {
      models::ForwardOptions o;
      o.widths = w;
      o.attention = k;
      cpu.push_back(model->forward(x, o));
    }
  model->to(torch::kCUDA);
  size_t i = 0;
  for (const models::Widths* w : std::vector<const models::Widths*>{nullptr, &sliced})
    for (auto k : {models::AttentionKernel::EXPLICIT, models::AttentionKernel::FUSED}) {
      models::ForwardOptions o;
      o.widths = w;
      o.attention = k;
      EXPECT_LE(max_diff(model->forward(x.cuda(), o), cpu[i++]), 1e-4)
          << (w ? "sliced" : "full") << (k == models::AttentionKernel::FUSED ? " fused" : " explicit");
    }
}

TEST_P(CudaFamilies, WpacOnCudaEqualsWpacOnCpu) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(0);
  auto on_cpu = models::create_model(models::named_config(GetParam()));
  auto on_cuda = models::slice_model(*on_cpu, on_cpu->widths());
  const auto data = noise_data(on_cpu->config(), 32);
  wpac::ConvertOptions o;
  o.proxy.samples = 32;
  o.proxy.batch_size = 16;
  wpac::convert(*on_cpu, &data, o);
  on_cuda->to(torch::kCUDA);
  o.proxy.device = torch::kCUDA;
  const auto report = wpac::convert(*on_cuda, &data, o).to_json();
  EXPECT_LE(report["function_check"]["max_abs_logit_diff"].get<double>(), 1e-4);
  // Eigenvectors are defined up to sign and order of equal eigenvalues: compare what the converted
  // models compute, at a width where the order of the dims matters.
  models::Widths quarter;
  for (const auto& b : on_cpu->widths()) quarter.push_back({std::max<int64_t>(1, b.attn / 4), b.mlp / 4});
  models::ForwardOptions fo;
  fo.widths = &quarter;
  fo.attention = models::AttentionKernel::EXPLICIT;
  const auto& c = on_cpu->config();
  const auto x = torch::randn({4, c.in_chans, c.img_size, c.img_size});
  torch::NoGradGuard g;
  on_cpu->eval();
  on_cuda->eval();
  EXPECT_LE(max_diff(on_cuda->forward(x.cuda(), fo), on_cpu->forward(x, fo)), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFamilies, ::testing::Values("vit_micro_32", "swin_micro_32"));

namespace {

// 6 bf16 epochs of PIAD steps on the device (256 tiny images, a two-code table: the full widths and
// half of them; progressive phase over, so the table is used as it is), with `po`'s sampling and
// distillation. Returns the result; `check` sees the distiller after training.
train::TrainResult bf16_piad_run(piad::PiadOptions po,
                                 const std::function<void(train::PiadDistiller&)>& check = {}) {
  auto model = test::tiny_model();
  test::TinyData data(256);
  auto cfg = test::tiny_config("");
  cfg.device = "cuda";
  cfg.amp = Amp::BF16;
  cfg.epochs = 6;
  cfg.model_ema = false;
  cfg.mixup = cfg.cutmix = 0;
  po.progressive_epochs = 1;  // with next update epoch 1: the table below is used as it is
  models::MaskTable table(model->widths());
  models::Widths smaller;
  for (const auto& b : model->widths()) smaller.push_back({b.attn / 2, b.mlp / 2});
  table.append(smaller);
  piad::Piad super(model->config(), model->widths(), po, table, 1);
  train::TrainContext ctx;
  train::PiadObserver sampler(super, *model, data, nullptr);  // progressive phase over: sampling only
  ctx.observers.push_back(&sampler);
  train::PiadDistiller distiller(super, *model);
  if (po.distill != piad::Distill::NONE) ctx.distiller = &distiller;
  const auto r = train::train(*model, data, &data, cfg, ctx);
  for (const auto& p : model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  if (check) check(distiller);
  return r;
}

}  // namespace

TEST(Cuda, Bf16PiadStepsAreFiniteAndLearn) {
  SKIP_WITHOUT_CUDA();
  const auto r = bf16_piad_run({});
  EXPECT_TRUE(std::isfinite(r.last_loss));
  EXPECT_LT(r.last_loss, std::log(4.0) * 0.8) << "bf16 PIAD training did not learn";
  EXPECT_GT(r.eval_top1, 50.0);
}

// In-place distillation under bf16 autocast on the device: the frozen copy moves to CUDA with the
// model, the teacher logits come from the same autocast, and the steps stay finite and learn.
TEST(Cuda, Bf16PiadDistillationStepsAreFiniteAndLearn) {
  SKIP_WITHOUT_CUDA();
  for (const auto& [mode, sandwich] :
       std::vector<std::pair<piad::Distill, bool>>{{piad::Distill::FROZEN, false},
                                                   {piad::Distill::PROGRESSIVE, true},
                                                   {piad::Distill::FULL, false}}) {
    piad::PiadOptions po;
    po.distill = mode;
    po.sandwich = sandwich;
    po.distill_temperature = 2;
    const std::string name = piad::kDistillNames[static_cast<int>(mode)].first;
    const auto r = bf16_piad_run(po, [&](train::PiadDistiller& d) {
      if (!d.frozen()) return;
      for (const auto& p : d.frozen()->parameters()) {
        EXPECT_TRUE(p.is_cuda()) << name;
        EXPECT_FALSE(p.grad().defined()) << name;
      }
    });
    EXPECT_TRUE(std::isfinite(r.last_loss)) << name;
    EXPECT_GT(r.eval_top1, 50.0) << name;
  }
}

TEST(Cuda, ExtractedSubNetworkEvaluatesAsOnTheCpu) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(0);
  auto model = models::create_model(models::named_config("vit_micro_32"));
  models::Widths w;
  for (const auto& b : model->widths()) w.push_back({b.attn / 2, b.mlp / 4});
  auto sub = models::slice_model(*model, w);
  const auto data = noise_data(sub->config(), 64);
  eval::EvalOptions o;
  o.workers = 0;
  o.keep_logits = true;
  const auto cpu = eval::evaluate(*sub, data, o);
  sub->to(torch::kCUDA);
  o.device = torch::kCUDA;
  const auto gpu = eval::evaluate(*sub, data, o);
  EXPECT_EQ(gpu.images, cpu.images);
  EXPECT_LE(max_diff(gpu.logits, cpu.logits), 1e-4);
  EXPECT_DOUBLE_EQ(gpu.top1, cpu.top1);
}

TEST(Cuda, NcclGroupOfOneRank) {
  SKIP_WITHOUT_CUDA();
  if (!distributed::Communicator::nccl_available())
    GTEST_SKIP() << "this build has no NCCL (-DSKD_WITH_NCCL=ON)";
  distributed::DistEnv env;
  env.master_port = 29500 + static_cast<int>(std::chrono::steady_clock::now().time_since_epoch().count() % 2000);
  const torch::Device dev(torch::kCUDA, 0);
  distributed::set_current_device(dev);
  auto comm =
      distributed::Communicator::create(env, "nccl", dev, std::chrono::seconds(60), /*group_of_one=*/true);
  EXPECT_EQ(comm->backend(), "nccl");
  std::vector<torch::Tensor> t{torch::full({3}, 2.0, torch::TensorOptions().device(dev)),
                               torch::full({2}, 1.5, torch::kBFloat16).to(dev)};
  comm->all_reduce_sum(t);
  EXPECT_TRUE(torch::equal(t[0].cpu(), torch::full({3}, 2.0)));
  comm->barrier();
  auto p = torch::ones({4}, torch::TensorOptions().device(dev)).requires_grad_();
  (p * 3).sum().backward();
  comm->average_gradients({p});
  EXPECT_TRUE(torch::equal(p.grad().cpu(), torch::full({4}, 3.0)));
  comm.reset();  // shut down before destruction (no hang, no warning)
}

}  // namespace

// On CUDA the step-time breakdown comes from CUDA events (LibTorch >= 2.4): every epoch's phases
// partition its time on the device (within a few percent of the host's epoch time, which also holds
// the loader's start), and the forward, backward and optimizer each took time on the device.
TEST(Cuda, StepTimeBreakdownReadsCudaEvents) {
  SKIP_WITHOUT_CUDA();
  const auto dir = test::scratch_dir("cuda_breakdown");
  auto model = test::tiny_model();
  test::TinyData data(256), eval(16);
  auto cfg = test::tiny_config(dir);
  cfg.device = "cuda";
  cfg.epochs = 2;
  cfg.log_every = 3;
  cfg.mixup = cfg.cutmix = 0;
  const auto r = train::train(*model, data, &eval, cfg);
  ASSERT_GT(r.steps, 0);
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::string line;
  int epochs = 0;
  const bool events = TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4);
  while (std::getline(metrics, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto& t = j.at("step_time");
    EXPECT_EQ(t.at("clock").get<std::string>(), events ? "cuda events" : "host") << line;
    double sum = 0;
    for (const auto& [name, phase] : train::kStepPhaseNames) {
      const double s = t.at("seconds").at(name).get<double>();
      EXPECT_GE(s, 0.0) << name;
      sum += s;
    }
    for (const char* name : {"forward", "backward", "optimizer"})
      EXPECT_GT(t.at("seconds").at(name).get<double>(), 0.0) << name << ": " << line;
    const double epoch_s = j.at("epoch_seconds").get<double>();
    EXPECT_LE(sum, epoch_s * 1.05) << line;
    EXPECT_GE(sum, epoch_s * 0.9) << line;
    ++epochs;
  }
  EXPECT_EQ(epochs, 2);
}
