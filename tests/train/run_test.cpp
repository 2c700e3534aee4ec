// A run's config: the layers (defaults < the checkpoint's config (resume) < the config file < given keys,
// each checked strictly on its own) resolved by skd/core/options.h like every app's, then
// train::resolve_run validates it; train::read_resume of no checkpoint adds no layer.
#include <gtest/gtest.h>

#include "skd/core/options.h"
#include "skd/train/run.h"
#include "test_util.h"

using namespace skd;

TEST(ResolveRun, LayersResolveInOrderAndTheResultIsValidated) {
  const train::Resume none = train::read_resume("");
  EXPECT_TRUE(none.layers.empty());
  EXPECT_TRUE(none.path.empty());
  auto layers = none.layers;
  layers.push_back({{{"epochs", 7}, {"lr", 0.001}, {"mode", "piad"}}, "--config 'recipe.json'"});
  layers.push_back({{{"epochs", 9}}, options::kCommandLine});
  const auto r = train::resolve_run(options::resolve<train::TrainConfig>(layers), train::read_resume(""));
  EXPECT_EQ(r.config.epochs, 9);
  EXPECT_DOUBLE_EQ(r.config.lr, 0.001);
  EXPECT_EQ(r.config.mode, train::Mode::PIAD);
  EXPECT_EQ(r.config.batch_size, train::TrainConfig{}.batch_size);
  EXPECT_TRUE(r.resume_path.empty());

  const auto unknown = test::error_of([] {
    options::resolve<train::TrainConfig>({{{{"epochs", 7}, {"bogus", 1}}, "--config 'bad.json'"}});
  });
  EXPECT_NE(unknown.find("--config 'bad.json': unknown key 'bogus'"), std::string::npos) << unknown;
  train::TrainConfig zero;
  zero.epochs = 0;
  EXPECT_THROW(train::resolve_run(zero, {}), std::invalid_argument) << "not validated";
}

TEST(ResolveRun, TheJobNeedsAModel) {
  train::ResolvedConfig nothing;
  const auto e = test::error_of([&] { train::run_train_job(nothing, {}, stdout); });
  EXPECT_NE(e.find("give model and/or arch (or resume)"), std::string::npos) << e;
  train::ResolvedConfig scratch;
  scratch.config.arch = "deit_tiny";
  train::RunOptions new_head;
  new_head.new_head = true;
  const auto h = test::error_of([&] { train::run_train_job(scratch, new_head, stdout); });
  EXPECT_NE(h.find("new_head goes with model"), std::string::npos) << h;
}
