// skd-train as one library call: the config resolution (defaults < the checkpoint's config <
// a config file < values given explicitly) and the run it describes: the model (a checkpoint to
// continue, weights to fine-tune, or an architecture from scratch), the data, a new classifier head
// for data with another class count, then plain training or PIAD super-network training (mode).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "skd/models/config.h"
#include "skd/train/config.h"
#include "skd/train/trainer.h"

namespace skd::train {

// Where a run's config comes from, in rising precedence after the defaults.
struct ConfigSources {
  std::string resume;       // a run directory or checkpoint to continue ("" = none): its config
  std::string config_file;  // a JSON file of config keys ("" = none)
  std::string config_name = "config";               // the config key of config_file, named in the errors
  nlohmann::json given = nlohmann::json::object();  // keys set explicitly (skd-train: the flags given)
};

struct ResolvedConfig {
  TrainConfig config;               // validated
  std::string resume_path;          // the checkpoint file of ConfigSources::resume ("" = none)
  models::ModelConfig resume_arch;  // its architecture (checked against its weights)
  nlohmann::json resume_manifest;   // its manifest (PIAD continues its mask table)
  std::string resume_run_dir;       // the run directory resumed (config.run_dir; "" = a loose checkpoint file)
};

// Resolves and validates the config. The config file alone is checked strictly (unknown keys, wrong
// types) before its keys are applied. std::invalid_argument for bad values, unreadable or invalid
// JSON; errors of the checkpoint as for read_training_state.
ResolvedConfig resolve_config(const ConfigSources& sources);

// What a run needs besides its config (per invocation, never saved).
struct RunOptions {
  bool new_head = false;  // re-initialise the classifier even for data with the model's class count
  int64_t max_steps = 0;  // TrainContext::max_steps
  int threads = 1;        // intra-op threads of this process (logged)
  std::shared_ptr<dist::Communicator> comm;  // null: single process
  torch::Device device = torch::kCPU;  // this process's device
};

// Every output location of the run checked before any work (docs/reliability.md, "Hostile input"):
// run_dir an existing writable folder or creatable, out (or <run_dir>/model.safetensors) not a directory,
// special file or input (model, arch, the resumed checkpoint), in a writable folder. Errors as for
// skd::check_output_file, naming run_dir / out. run() calls it first; skd-train also before joining the job
// (which opens <run_dir>/train.log).
void check_run_outputs(const ResolvedConfig& resolved);

// Builds the model and the data the resolved config describes and trains it (mode "train": train(),
// "piad": train_piad()). Errors as for train().
TrainResult run(const ResolvedConfig& resolved, const RunOptions& options);

}  // namespace skd::train
