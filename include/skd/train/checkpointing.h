// Training checkpoints and the run directory.
//
// A training checkpoint is an skd artifact (safetensors: model weights under timm keys plus the
// manifest, so skd-eval/skd-extract read it like any model) that also carries the training state:
// tensors "train_state/optimizer/<param>/{exp_avg,exp_avg_sq,step}", "train_state/ema/<name>"
// and a metadata entry "skd_train_state" (progress, loss-scaler state, the resolved config).
// Every file is written atomically (temp + fsync + rename), so a crash or kill -9 while saving
// leaves the previous checkpoint and the "latest" pointer intact.
//
// Run directory layout:
//   config.json           resolved config
//   metrics.jsonl         one JSON object per epoch
//   train.log             the log
//   checkpoints/ckpt-e<completed epochs>-s<steps into the next>.safetensors (keep-last-N)
//   checkpoints/best.safetensors, checkpoints/latest (name of the newest checkpoint)
#pragma once

#include <torch/torch.h>

#include <map>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/io/tensor_record.h"
#include "skd/models/model.h"

namespace skd::train {

inline constexpr const char* kTrainStateKey = "skd_train_state";
inline constexpr const char* kTrainStatePrefix = "train_state/";

struct TrainProgress {
  int64_t epoch = 0;          // epochs completed
  int64_t step_in_epoch = 0;  // steps done in the next epoch (a checkpoint taken on a signal)
  int64_t global_step = 0;
  double best_top1 = -1;
  int64_t best_epoch = 0;
  int world_size = 1;
  int64_t global_batch = 0;
};

struct TrainingState {
  io::TensorMap model;                                 // the model weights (timm keys)
  nlohmann::json manifest = nlohmann::json::object();  // the artifact manifest (architecture)
  TrainProgress progress;
  nlohmann::json config = nlohmann::json::object();  // resolved TrainConfig
  std::map<std::string, torch::Tensor> optimizer;    // AdamW::state()
  std::map<std::string, torch::Tensor> ema;          // ModelEma values (empty: no EMA)
  io::TensorMap teacher;                             // Distiller::state() (empty: none)
  double scaler_scale = 65536.0;
  int64_t scaler_growth_tracker = 0;
};

// Serialized checkpoint (model weights + manifest + training state).
// `extra`: additional manifest entries (models::make_manifest).
std::vector<uint8_t> serialize_training_checkpoint(const models::ElasticModelImpl& model,
                                                   const nlohmann::json& provenance, const TrainingState& state,
                                                   const nlohmann::json& extra = nlohmann::json::object());
void save_training_checkpoint(const std::string& path, const models::ElasticModelImpl& model,
                              const nlohmann::json& provenance, const TrainingState& state,
                              const nlohmann::json& extra = nlohmann::json::object());
// Everything a checkpoint holds, from one read of the file. Throws
// std::runtime_error naming the file when it is not a training checkpoint or is malformed.
TrainingState read_training_state(const std::string& path);

class RunDir {
 public:
  // Creates `root` and root/checkpoints when missing.
  explicit RunDir(std::string root);
  const std::string& root() const { return root_; }
  std::string config_path() const { return root_ + "/config.json"; }
  std::string metrics_path() const { return root_ + "/metrics.jsonl"; }
  std::string log_path() const { return root_ + "/train.log"; }
  std::string checkpoint_dir() const { return root_ + "/checkpoints"; }
  std::string best_path() const { return checkpoint_dir() + "/best.safetensors"; }
  static std::string checkpoint_name(const TrainProgress& progress);

  // Writes the checkpoint for `progress`, points "latest" at it, also makes it best.safetensors
  // when `is_best`, and removes all but the newest `keep_last` ckpt-* files. Returns its path.
  std::string save(const std::vector<uint8_t>& bytes, const TrainProgress& progress, bool is_best, int keep_last);
  // Appends one line to metrics.jsonl (flushed and fsync'ed).
  void append_metrics(const nlohmann::json& record) const;

 private:
  std::string root_;
};

// Keeps the records of a JSON-lines file (metrics.jsonl, piad.jsonl) that `keep` accepts and drops
// the others and a torn last line (a process killed mid-append); the file is rewritten atomically,
// and only when something is dropped. A resumed run calls it for the records written after its
// checkpoint (the work it now does again), so a run killed at any moment and resumed ends with the
// records of an uninterrupted run. A missing file is fine. Returns the number of lines dropped.
int64_t trim_jsonl(const std::string& path, const std::function<bool(const nlohmann::json&)>& keep);

// --resume argument -> checkpoint file: a run directory (its checkpoints/latest), a checkpoints
// folder, or a checkpoint file. Throws std::invalid_argument naming the path otherwise.
std::string resolve_resume_path(const std::string& path);

}  // namespace skd::train
