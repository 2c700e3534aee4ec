#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>

#include "skd/core/fs.h"
#include "skd/data/augment.h"
#include "skd/models/checkpoint.h"
#include "skd/train/checkpointing.h"
#include "skd/train/signals.h"
#include "skd/train/step_timer.h"
#include "skd/train/trainer.h"
#include "test_util.h"
#include "tiny_training.h"

using namespace skd;
namespace fs = std::filesystem;

using test::TinyData;
using test::tiny_config;
using test::tiny_model;

namespace {

std::map<std::string, torch::Tensor> weights(models::ElasticModelImpl& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& p : m.named_parameters(true)) out[p.key()] = p.value().detach().clone();
  return out;
}

void expect_same(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, t] : a) EXPECT_TRUE(torch::equal(t, b.at(k))) << k;
}

// An observer that only picks the sub-networks of every step.
struct StepSubnets : train::TrainObserver {
  std::function<std::vector<const models::Widths*>(int64_t epoch, int64_t step)> pick;
  std::vector<const models::Widths*> step_subnets(int64_t epoch, int64_t step, data::Rng&) override {
    return pick(epoch, step);
  }
};

}  // namespace

// A run stopped by a signal mid-epoch and resumed from its run directory ends bit-identical to
// an uninterrupted run: weights, optimizer moments, EMA (mixup, drop-path, clipping all on).
TEST(Trainer, ResumeMidEpochMatchesUninterruptedRun) {
  TinyData data(64), eval(16);
  const auto dir_a = test::scratch_dir("train_resume_a"), dir_b = test::scratch_dir("train_resume_b");
  auto a = tiny_model();
  const auto ra = train::train(*a, data, &eval, tiny_config(dir_a));
  EXPECT_EQ(ra.steps, 24);
  EXPECT_EQ(ra.stop_signal, 0);

  auto b = tiny_model();
  train::TrainContext stop_ctx;
  StepSubnets stopper;
  stopper.pick = [](int64_t epoch, int64_t step) {
    if (epoch == 1 && step == 2) train::request_stop(SIGTERM);
    return std::vector<const models::Widths*>{};
  };
  stop_ctx.observers.push_back(&stopper);
  const auto rb = train::train(*b, data, &eval, tiny_config(dir_b), stop_ctx);
  train::clear_stop_signal();
  EXPECT_EQ(rb.stop_signal, SIGTERM);
  EXPECT_EQ(rb.steps, 8 + 3);
  ASSERT_FALSE(rb.last_checkpoint.empty());
  EXPECT_NE(rb.last_checkpoint.find("ckpt-e0001-s0000003"), std::string::npos) << rb.last_checkpoint;

  const std::string resume = train::resolve_resume_path(dir_b);
  EXPECT_EQ(resume, rb.last_checkpoint);
  auto c = models::load_model(resume).model;  // the checkpoint is a loadable artifact
  train::TrainContext ctx;
  ctx.resume = resume;
  const auto rc = train::train(*c, data, &eval, tiny_config(dir_b), ctx);
  EXPECT_EQ(rc.steps, 24 - 11);
  expect_same(weights(*a), weights(*c));
  EXPECT_DOUBLE_EQ(ra.eval_top1, rc.eval_top1);

  const auto sa = train::read_training_state(train::resolve_resume_path(dir_a));
  const auto sc = train::read_training_state(train::resolve_resume_path(dir_b));
  ASSERT_EQ(sa.optimizer.size(), sc.optimizer.size());
  for (const auto& [k, t] : sa.optimizer) EXPECT_TRUE(torch::equal(t, sc.optimizer.at(k))) << k;
  ASSERT_FALSE(sa.ema.empty());
  for (const auto& [k, t] : sa.ema) EXPECT_TRUE(torch::equal(t, sc.ema.at(k))) << k;
  EXPECT_EQ(sa.progress.global_step, 24);
  EXPECT_EQ(sc.progress.global_step, 24);
  EXPECT_TRUE(fs::exists(dir_b + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(dir_b + "/model_ema.safetensors"));
}

// Several sub-networks in one step: each runs on the same batch and targets and the gradient is
// that of their mean loss, so two copies of the full network in every step train exactly like one.
TEST(Trainer, SubNetworksOfAStepAverageTheirLosses) {
  TinyData data(32);
  auto cfg_for = [](const std::string& dir) {
    auto c = tiny_config(dir);
    c.drop_path = 0;  // the second forward would draw other drop-path masks
    c.model_ema = false;
    c.eval = false;
    return c;
  };
  auto a = tiny_model();
  const auto ra = train::train(*a, data, nullptr, cfg_for(test::scratch_dir("train_subnets_one")));
  auto b = tiny_model();
  train::TrainContext twice;
  StepSubnets two_full;
  two_full.pick = [](int64_t, int64_t) { return std::vector<const models::Widths*>{nullptr, nullptr}; };
  twice.observers.push_back(&two_full);
  const auto rb = train::train(*b, data, nullptr, cfg_for(test::scratch_dir("train_subnets_two")), twice);
  EXPECT_EQ(ra.steps, rb.steps);
  EXPECT_EQ(ra.last_loss, rb.last_loss);
  expect_same(weights(*a), weights(*b));
  // A narrower second sub-network changes the update.
  auto c = tiny_model();
  models::Widths half = c->widths();
  for (auto& w : half) w.mlp /= 2;
  train::TrainContext mixed;
  StepSubnets full_and_half;
  full_and_half.pick = [&](int64_t, int64_t) { return std::vector<const models::Widths*>{nullptr, &half}; };
  mixed.observers.push_back(&full_and_half);
  train::train(*c, data, nullptr, cfg_for(test::scratch_dir("train_subnets_mixed")), mixed);
  EXPECT_FALSE(torch::equal(weights(*a).at("blocks.0.mlp.fc1.weight"), weights(*c).at("blocks.0.mlp.fc1.weight")));
}

TEST(Trainer, RunDirectoryLayoutAndKeepLast) {
  TinyData data(32), eval(8);
  const auto dir = test::scratch_dir("train_layout");
  auto m = tiny_model();
  auto cfg = tiny_config(dir);
  cfg.epochs = 4;
  cfg.keep_last = 2;
  cfg.model_ema = false;
  const auto r = train::train(*m, data, &eval, cfg);
  EXPECT_GT(r.eval_top1, 0);
  std::vector<std::string> ckpts;
  for (auto& e : fs::directory_iterator(dir + "/checkpoints")) ckpts.push_back(e.path().filename());
  std::sort(ckpts.begin(), ckpts.end());
  EXPECT_EQ(ckpts, (std::vector<std::string>{"best.safetensors", "ckpt-e0003-s0000000.safetensors",
                                             "ckpt-e0004-s0000000.safetensors", "latest"}));
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    const auto j = nlohmann::json::parse(line);
    for (const char* key : {"epoch", "train_loss", "lr", "top1", "top5", "images_per_s", "epoch_seconds"})
      EXPECT_TRUE(j.contains(key)) << key;
    ++lines;
  }
  EXPECT_EQ(lines, 4);
  const auto saved = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  EXPECT_EQ(saved.at("epochs"), 4);
  // best.safetensors holds the best epoch's state.
  const auto best = train::read_training_state(dir + "/checkpoints/best.safetensors");
  EXPECT_DOUBLE_EQ(best.progress.best_top1, r.best_top1);
  EXPECT_EQ(best.progress.epoch, best.progress.best_epoch);
}

// The step-time breakdown (issue 28): every epoch record has it, its phases are all there, none is
// negative, the mean step time and the steps agree, and the parts add up to the epoch's measured time
// (epoch_seconds also holds the loader's start, so the parts may only be a little smaller).
TEST(Trainer, StepTimeBreakdownAddsUpToTheEpoch) {
  TinyData data(64), eval(8);
  const auto dir = test::scratch_dir("train_breakdown");
  auto m = tiny_model();
  auto cfg = tiny_config(dir);
  cfg.epochs = 2;
  cfg.log_every = 3;
  const auto r = train::train(*m, data, &eval, cfg);
  EXPECT_GT(r.steps, 0);
  std::ifstream metrics(dir + "/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    const auto j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("step_time")) << line;
    const auto& t = j["step_time"];
    EXPECT_EQ(t.at("steps").get<int64_t>() * cfg.epochs, r.steps);
    double sum = 0, shares = 0;
    for (const auto& [name, phase] : train::kStepPhaseNames) {
      const double s = t.at("seconds").at(name).get<double>();
      EXPECT_GE(s, 0.0) << name;
      sum += s;
      shares += t.at("share").at(name).get<double>();
    }
    EXPECT_NEAR(shares, 1.0, 1e-9);
    EXPECT_NEAR(sum, t.at("wall_s").get<double>(), 1e-9);
    EXPECT_GT(t.at("seconds").at("forward").get<double>(), 0.0);
    EXPECT_GT(t.at("seconds").at("backward").get<double>(), 0.0);
    EXPECT_GT(t.at("seconds").at("optimizer").get<double>(), 0.0);
    const double epoch_s = j.at("epoch_seconds").get<double>();
    EXPECT_LE(sum, epoch_s * 1.0001) << line;
    EXPECT_GE(sum, epoch_s * 0.95) << line;
    EXPECT_NEAR(t.at("step_ms").get<double>(), 1e3 * sum / t.at("steps").get<double>(), 1e-6);
    ++lines;
  }
  EXPECT_EQ(lines, 2);
}

TEST(StepTimer, IntervalsPartitionTheTime) {
  train::StepTimer timer;
  timer.start();
  timer.step_done();
  timer.mark(train::StepPhase::DATA);
  timer.mark(train::StepPhase::FORWARD);
  const auto a = timer.take();
  timer.step_done();
  timer.step_done();
  timer.mark(train::StepPhase::OPTIMIZER);
  const auto b = timer.take();
  EXPECT_EQ(a.steps, 1);
  EXPECT_EQ(b.steps, 2);
  auto both = a;
  both += b;
  EXPECT_EQ(both.steps, 3);
  EXPECT_NEAR(both.total(), a.total() + b.total(), 1e-12);
  train::StepBreakdown d;
  d.seconds[static_cast<size_t>(train::StepPhase::FORWARD)] = 0.3;
  d.seconds[static_cast<size_t>(train::StepPhase::BACKWARD)] = 0.6;
  d.seconds[static_cast<size_t>(train::StepPhase::DATA)] = 0.1;
  d.steps = 4;
  EXPECT_EQ(d.line(), "step 250.0 ms: data 10% forward 30% backward 60% optimizer 0% allreduce 0% rest 0%");
  EXPECT_DOUBLE_EQ(d.to_json()["share"]["backward"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(d.to_json()["step_ms"].get<double>(), 250.0);
}

TEST(Trainer, NonFiniteLossStopsWithClearError) {
  TinyData poison(32, true);
  auto m = tiny_model();
  auto cfg = tiny_config("");
  cfg.epochs = 1;
  try {
    train::train(*m, poison, nullptr, cfg);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("nan"), std::string::npos) << what;
    EXPECT_NE(what.find("stopping"), std::string::npos) << what;
    EXPECT_NE(what.find("step 1"), std::string::npos) << what;
  }
}

TEST(Trainer, RejectsBadSettings) {
  TinyData data(32);
  auto m = tiny_model();
  auto cfg = tiny_config("");
  cfg.batch_size = 64;  // more than the data
  EXPECT_THROW(train::train(*m, data, nullptr, cfg), std::invalid_argument);
  cfg.batch_size = 8;
  cfg.epochs = 0;
  EXPECT_THROW(train::train(*m, data, nullptr, cfg), std::invalid_argument);
  auto wrong = models::create_model(models::config_from_json(
      {{"family", "vit"}, {"img_size", 8}, {"patch_size", 4}, {"in_chans", 1}, {"num_classes", 5},
       {"embed_dim", 16}, {"depth", 1}, {"num_heads", 2}}));
  EXPECT_THROW(train::train(*wrong, data, nullptr, tiny_config("")), std::invalid_argument);
}

// A checkpoint that cannot be written (file-size limit, like a full disk) is an error, and the
// previous checkpoint and the latest pointer stay intact.
TEST(Checkpointing, WriteFailureKeepsPreviousCheckpoint) {
  const auto dir = test::scratch_dir("train_diskfull");
  train::RunDir run(dir);
  auto m = tiny_model();
  train::TrainingState st;
  st.progress.epoch = 1;
  const auto first = run.save(train::serialize_training_checkpoint(*m, {}, st), st.progress, false, 2);
  const auto before = read_file_bytes(first);
  train::install_stop_signals();  // ignores SIGXFSZ
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  st.progress.epoch = 2;
  bool threw = false;
  try {
    run.save(train::serialize_training_checkpoint(*m, {}, st), st.progress, true, 2);
  } catch (const std::runtime_error& e) {
    threw = true;
    EXPECT_NE(std::string(e.what()).find("ckpt-e0002"), std::string::npos) << e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_TRUE(threw);
  EXPECT_EQ(train::resolve_resume_path(dir), first);
  EXPECT_EQ(read_file_bytes(first), before);
  for (auto& e : fs::directory_iterator(dir + "/checkpoints"))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "left a temp file: " << e.path();
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/ckpt-e0002-s0000000.safetensors"));
}

TEST(Checkpointing, ResumePathResolution) {
  const auto dir = test::scratch_dir("train_resolve");
  EXPECT_THROW(train::resolve_resume_path(dir + "/missing"), std::invalid_argument);
  EXPECT_THROW(train::resolve_resume_path(dir), std::invalid_argument);  // no checkpoints/latest
  train::RunDir run(dir);
  write_file_atomic(dir + "/checkpoints/latest", std::string("ckpt-gone.safetensors\n"));
  try {
    train::resolve_resume_path(dir);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt-gone"), std::string::npos);
  }
  // A plain artifact is not a training checkpoint.
  auto m = tiny_model();
  models::save_artifact(dir + "/plain.safetensors", *m);
  EXPECT_THROW(train::read_training_state(dir + "/plain.safetensors"), std::runtime_error);
}

// --max-steps stops like a signal (checkpoint, resumable) but is not a failure, and it is not
// carried into the resumed run.
TEST(Trainer, MaxStepsStopsWithACheckpoint) {
  TinyData data(32);
  const auto dir = test::scratch_dir("train_max_steps");
  auto m = tiny_model();
  auto cfg = tiny_config(dir);
  cfg.eval = false;
  train::TrainContext ctx;
  ctx.max_steps = 5;
  const auto r = train::train(*m, data, nullptr, cfg, ctx);
  EXPECT_TRUE(r.stopped_at_max_steps);
  EXPECT_EQ(r.stop_signal, 0);
  EXPECT_EQ(r.steps, 5);
  EXPECT_NE(r.last_checkpoint.find("ckpt-e0001-s0000001"), std::string::npos) << r.last_checkpoint;
  auto resumed = models::load_model(train::resolve_resume_path(dir)).model;
  train::TrainContext again;
  again.resume = train::resolve_resume_path(dir);
  const auto r2 = train::train(*resumed, data, nullptr, cfg, again);
  EXPECT_FALSE(r2.stopped_at_max_steps);
  EXPECT_EQ(r2.steps, 3 * 4 - 5);
}

namespace {
std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}
}  // namespace

TEST(Checkpointing, TrimJsonlKeepsAcceptedRecordsAndRepairsATornLastLine) {
  const auto dir = test::scratch_dir("trim_jsonl");
  const std::string path = dir + "/metrics.jsonl";
  EXPECT_EQ(train::trim_jsonl(path, [](const nlohmann::json&) { return true; }), 0);  // missing: fine
  EXPECT_FALSE(fs::exists(path));
  write_file_atomic(path, std::string("{\"epoch\":1}\n{\"epoch\":2}\n{\"epoch\":3}\n{\"epo"));
  EXPECT_EQ(train::trim_jsonl(path, [](const nlohmann::json& r) { return r["epoch"].get<int>() <= 2; }), 2);
  const auto kept = read_jsonl(path);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[1]["epoch"], 2);
  // Nothing to drop: the file is left as it is.
  const auto bytes = read_file_bytes(path);
  EXPECT_EQ(train::trim_jsonl(path, [](const nlohmann::json&) { return true; }), 0);
  EXPECT_EQ(read_file_bytes(path), bytes);
  // A damaged line that is not the last one is an error naming the file, and the file is kept.
  write_file_atomic(path, std::string("{\"epoch\":1}\nnot json\n{\"epoch\":2}\n"));
  try {
    train::trim_jsonl(path, [](const nlohmann::json&) { return true; });
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file_bytes(path).size(), std::string("{\"epoch\":1}\nnot json\n{\"epoch\":2}\n").size());
}

// A process killed after an epoch's metrics line but before its checkpoint resumes from the previous
// checkpoint and trains that epoch again: metrics.jsonl must still end with one record per epoch,
// equal to an uninterrupted run's (modelled by resuming a finished run from its epoch-1 checkpoint).
TEST(Trainer, ResumeFromAnOlderCheckpointRewritesLaterMetrics) {
  TinyData data(64), eval(16);
  const auto dir_a = test::scratch_dir("train_metrics_a"), dir_b = test::scratch_dir("train_metrics_b");
  auto cfg_a = tiny_config(dir_a), cfg_b = tiny_config(dir_b);
  cfg_a.keep_last = cfg_b.keep_last = 5;
  auto a = tiny_model();
  train::train(*a, data, &eval, cfg_a);
  auto b = tiny_model();
  train::train(*b, data, &eval, cfg_b);
  ASSERT_EQ(read_jsonl(dir_b + "/metrics.jsonl").size(), 3u);
  const std::string older = dir_b + "/checkpoints/ckpt-e0001-s0000000.safetensors";
  ASSERT_TRUE(fs::exists(older));
  auto c = models::load_model(older).model;
  train::TrainContext ctx;
  ctx.resume = older;
  train::train(*c, data, &eval, cfg_b, ctx);
  const auto ma = read_jsonl(dir_a + "/metrics.jsonl"), mb = read_jsonl(dir_b + "/metrics.jsonl");
  ASSERT_EQ(mb.size(), 3u);
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(mb[i]["epoch"], static_cast<int>(i) + 1);
    for (const char* key : {"train_loss", "lr", "top1", "top5", "eval_loss", "global_step"})
      EXPECT_EQ(ma[i][key], mb[i][key]) << "epoch " << i + 1 << " " << key;
  }
  expect_same(weights(*a), weights(*c));
}
