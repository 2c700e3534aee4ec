// skd-train as one library call: the resumed checkpoint as a layer of config values (below a config file
// and the flags: skd/core/options.h, resolved by the command line's binder like every app's), the checks
// of the resolved config, and the run it describes: the model (a checkpoint to continue, weights to
// fine-tune, or an architecture from scratch), the data, a new classifier head for data with another
// class count, then plain training or PIAD super-network training (mode). run_train_job is the whole
// job skd-train runs: checks, the distributed job joined, the run, its summary.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/core/options.h"
#include "skd/models/config.h"
#include "skd/train/config.h"
#include "skd/train/trainer.h"

namespace skd::train {

// The checkpoint a run continues (--resume, key "resume") and its config as a layer of values: defaults <
// this layer < a config file < the flags.
struct Resume {
  std::string path;          // the checkpoint file ("" = not resuming)
  std::string run_dir;       // the run directory resumed ("" = a checkpoint file outside a run)
  models::ModelConfig arch;  // its architecture (checked against its weights)
  nlohmann::json manifest;   // its manifest (PIAD continues its mask table)
  // Its config, with run_dir = the resumed run and out = "" (no layer when not resuming).
  std::vector<options::Layer> layers;
};

// Reads the checkpoint of a run directory or checkpoint file ("" = not resuming: an empty Resume).
// Errors as for read_training_state; a damaged run checkpoint's error names the newest intact earlier one.
Resume read_resume(const std::string& resume);

struct ResolvedConfig {
  TrainConfig config;               // validated
  std::string resume_path;          // the checkpoint resumed ("" = none)
  models::ModelConfig resume_arch;  // its architecture (checked against its weights)
  nlohmann::json resume_manifest;   // its manifest (PIAD continues its mask table)
  std::string resume_run_dir;       // the run directory resumed (config.run_dir; "" = a loose checkpoint file)
};

// The resolved config of a run (`config`: the layers resolved) validated and joined with what it resumes:
// a run_dir given again that is the resumed run's folder by another path becomes that folder.
// skd::ParameterError naming the key for a bad value.
ResolvedConfig resolve_run(const TrainConfig& config, Resume resume);

// What a run needs besides its config (per invocation, never saved).
struct RunOptions {
  bool new_head = false;  // re-initialise the classifier even for data with the model's class count
  int64_t max_steps = 0;  // TrainContext::max_steps
  int threads = 1;        // intra-op threads of this process (logged)
  std::shared_ptr<distributed::Communicator> comm;  // null: single process
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

// skd-train's job: the model given (model, arch or a resumed run; new_head only with model), the outputs
// checked before the job is joined (which opens <run_dir>/train.log), stop signals installed, the job
// joined (skd/distributed/join.h: this rank's device and communicator, replacing those of `options`), run(),
// and rank 0 prints the summary to `out` (and how to resume a run stopped by a signal or at max_steps). The
// caller's exit code for a run stopped by a signal is 128 + TrainResult::stop_signal.
TrainResult run_train_job(const ResolvedConfig& resolved, RunOptions options, std::FILE* out);

}  // namespace skd::train
