// The training engine behind skd-train: the DeiT recipe (AdamW with no-decay groups, linearly
// scaled LR, warmup + cosine, Mixup/CutMix + SoftTarget CE or label-smoothed CE, drop-path,
// grad clipping, EMA, bf16/fp16 autocast with a dynamic loss scaler on CUDA) on one or many
// processes (c10d), with a run directory, atomic keep-last-N/best checkpoints, exact resume and
// graceful stop on SIGINT/SIGTERM.
//
// Randomness is a pure function of (seed, epoch, step, rank, dataset index): the epoch order,
// every example's augmentation, the Mixup/CutMix draw and torch's generator (drop-path), which
// is re-seeded before every step. A checkpoint therefore needs only its position to resume
// exactly, even in the middle of an epoch.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/data/dataset.h"
#include "skd/models/model.h"
#include "skd/train/config.h"
#include "skd/train/distill.h"

namespace skd::distributed {
class Communicator;
}

namespace skd::train {

// What plugs into the training loop (PIAD, the metrics log, the progress line): every method has a
// do-nothing default, so an observer overrides only what it needs. Observers are called in the
// order of TrainContext::observers, the trainer's own (metrics, progress) after them.
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  // At the start of every epoch (before its first step).
  virtual void on_epoch_start(int64_t /*epoch*/) {}
  // Sub-networks to train at this step, by widths (nullptr: the full model); with more than one
  // (PIAD's sandwich rule) each is run forward/backward on the same batch and targets, the
  // gradients of their mean loss are accumulated and one optimizer step follows. The lists of all
  // observers are joined; empty: the full model. `rng` is the step's generator, identical on every
  // rank and shared by the observers in order.
  virtual std::vector<const models::Widths*> step_subnets(int64_t /*epoch*/, int64_t /*step*/, data::Rng& /*rng*/) {
    return {};
  }
  // Whether the gradients of the parts a sub-network removes are zeroed (models::ForwardOptions);
  // on when any observer asks for it.
  virtual bool zero_grad_removed() const { return false; }
  // A step's loss (all ranks' mean) once the host has read it: `step` counts from 0 in the epoch.
  virtual void on_step_loss(int64_t /*epoch*/, int64_t /*step*/, double /*loss*/, double /*lr*/) {}
  // The epoch's record (metrics.jsonl: epoch, global_step, train_loss, lr, ..., top1 when evaluated).
  virtual void on_epoch_end(const nlohmann::json& /*record*/) {}
  // Extra manifest entries for checkpoints and the final artifacts (PIAD: the mask table); the
  // objects of all observers are merged.
  virtual nlohmann::json manifest_extra() const { return nlohmann::json::object(); }
};

struct TrainContext {
  std::shared_ptr<distributed::Communicator> comm;  // null: single process
  std::string resume;                  // training checkpoint to continue from ("" = none)
  nlohmann::json provenance = nlohmann::json::object();  // written into artifacts/checkpoints
  std::vector<TrainObserver*> observers;  // not owned; they outlive the call to train()
  // Stop with a checkpoint once this many optimizer steps are done in total (0 = no limit), as a
  // signal would; --resume continues exactly. Not part of the config (it is per invocation).
  int64_t max_steps = 0;
  // In-place distillation of the step's sub-networks (not owned; null: labels only). Its state()
  // goes into every checkpoint and is restored on resume.
  Distiller* distiller = nullptr;
  // This rank's device (distributed::rank_device: "cuda" -> cuda:LOCAL_RANK). Unset: config.device. The
  // config keeps what the user asked for, so a resumed multi-process run pins each rank anew.
  std::optional<torch::Device> device;
};

struct TrainResult {
  int64_t steps = 0;          // optimizer steps taken in this call
  int64_t skipped_steps = 0;  // fp16 overflow steps skipped
  int64_t skipped_images = 0; // unreadable training images skipped (all ranks, epochs finished in this call)
  double last_loss = 0;
  double images_per_s = 0;  // of the last epoch, all ranks together
  double eval_top1 = -1;    // after the last epoch
  double best_top1 = -1;
  int stop_signal = 0;  // SIGINT/SIGTERM that ended the run early (a checkpoint was written)
  bool stopped_at_max_steps = false;
  std::string last_checkpoint;
  std::string artifact;  // final model artifact
};

// One line: "trained <steps> steps, last loss <l>, <r> images/s[, test top-1 <t>%][ (best <b>%)]".
std::string summary(const TrainResult& result);

// Trains `model` (moved to config.device) on `train_set`, evaluating on `eval_set` (may be null)
// after every epoch. Throws std::invalid_argument for bad settings and std::runtime_error for a
// non-finite loss (with the last good checkpoint named), I/O failures and dead peers.
TrainResult train(models::ElasticModelImpl& model, const data::Dataset& train_set, const data::Dataset* eval_set,
                  const TrainConfig& config, const TrainContext& context = {});

// Per-step seed shared by torch's generator (drop-path) and the Mixup/CutMix Rng.
uint64_t step_seed(uint64_t seed, int64_t epoch, int64_t step, int rank);

}  // namespace skd::train
