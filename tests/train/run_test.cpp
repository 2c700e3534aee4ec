// train::resolve_config: defaults < the checkpoint's config (resume) < the config file < given keys,
// the config file checked strictly on its own, the result validated.
#include <gtest/gtest.h>

#include <fstream>

#include "skd/train/run.h"
#include "test_util.h"

using namespace skd;

TEST(ResolveConfig, GivenKeysOverrideTheFileWhichOverridesDefaults) {
  const auto dir = test::scratch_dir("resolve_config");
  std::ofstream(dir + "/recipe.json") << R"({"epochs": 7, "lr": 0.001, "mode": "piad"})";
  train::ConfigSources src;
  src.config_file = dir + "/recipe.json";
  src.given = {{"epochs", 9}};
  const auto r = train::resolve_config(src);
  EXPECT_EQ(r.config.epochs, 9);
  EXPECT_DOUBLE_EQ(r.config.lr, 0.001);
  EXPECT_EQ(r.config.mode, train::Mode::PIAD);
  EXPECT_EQ(r.config.batch_size, train::TrainConfig{}.batch_size);
  EXPECT_TRUE(r.resume_path.empty());

  std::ofstream(dir + "/bad.json") << R"({"epochs": 7, "bogus": 1})";
  src.config_file = dir + "/bad.json";
  src.config_name = "--config";
  try {
    train::resolve_config(src);
    ADD_FAILURE() << "an unknown key was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--config '" + dir + "/bad.json': unknown key 'bogus'"), std::string::npos)
        << e.what();
  }
  src.config_file.clear();
  src.given = {{"epochs", 0}};
  EXPECT_THROW(train::resolve_config(src), std::invalid_argument) << "not validated";
}
