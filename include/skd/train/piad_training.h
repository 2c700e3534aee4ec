// PIAD super-network training (skd/piad/piad.h): the trainer of skd/train/trainer.h with a Piad
// plugged in as an observer. Before each epoch of the progressive phase the mask table grows; every
// step trains the sampled sub-network(s); every checkpoint and the final artifact carry the table.
// With a run directory, rank 0 also writes
//   mask_table.json  the current mask table (the official code's schema), rewritten after each update
//   piad.jsonl       one record per update (γ per module, operations added, MACs removed so far)
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/data/dataset.h"
#include "skd/models/model.h"
#include "skd/piad/piad.h"
#include "skd/train/distill.h"
#include "skd/train/trainer.h"

namespace skd::train {

// A Piad plugged into the trainer: the table update before each epoch (statistics on `data`, logged,
// and with a non-empty `run_dir` on rank 0 written to mask_table.json and piad.jsonl), the step's
// sub-networks, the gradients of removed parts zeroed, the table in every manifest. `piad`, `model`
// and `data` must outlive the observer.
class PiadObserver : public TrainObserver {
 public:
  PiadObserver(piad::Piad& piad, models::ElasticModelImpl& model, const data::Dataset& data,
               distributed::Communicator* comm, const std::string& run_dir = "");
  void on_epoch_start(int64_t epoch) override;
  std::vector<const models::Widths*> step_subnets(int64_t epoch, int64_t step, data::Rng& rng) override;
  bool zero_grad_removed() const override { return true; }
  nlohmann::json manifest_extra() const override;

  std::string mask_table_path() const { return run_dir_ + "/mask_table.json"; }
  std::string piad_log_path() const { return run_dir_ + "/piad.jsonl"; }
  // Whether this process writes the run directory's PIAD files (rank 0 with a run directory).
  bool writes_files() const { return writer_; }
  // A resumed run: the updates made after its checkpoint are not in the Piad's table and happen
  // again, so their piad.jsonl records go and mask_table.json is put back to the table.
  void rewind_files() const;

 private:
  piad::Piad& piad_;
  models::ElasticModelImpl& model_;
  const data::Dataset& data_;
  distributed::Communicator* comm_;
  std::string run_dir_;
  bool writer_;
};

// The teachers of PIAD's in-place distillation (piad_distill, piad::Distill): the step's codes mapped
// to their teacher codes (Piad::step_teachers), each taken from an earlier sub-network of the step
// when one has that code, else a no-grad forward of the current weights; for `frozen` a copy of the
// model as it is when the distiller is made (the start of PIAD), float32 like the model, eval mode,
// no gradient and no optimizer state, saved in every checkpoint and restored on resume.
class PiadDistiller : public Distiller {
 public:
  PiadDistiller(const piad::Piad& piad, const models::ElasticModelImpl& model);
  double weight() const override { return piad_.options().distill_weight; }
  double temperature() const override { return piad_.options().distill_temperature; }
  std::vector<Teacher> teachers(const std::vector<const models::Widths*>& subnets) override;
  torch::Tensor frozen_logits(const torch::Tensor& images) override;
  io::TensorMap state() const override;
  void load_state(const io::TensorMap& state, const std::string& source) override;
  void to(const torch::Device& device) override;
  // The frozen copy (null unless piad_distill is frozen).
  const models::ElasticModel& frozen() const { return frozen_; }

 private:
  const piad::Piad& piad_;
  models::ElasticModel frozen_;
};

// The PiadOptions of a TrainConfig: its piad options with the run's seed and this rank's device.
piad::PiadOptions piad_options(const TrainConfig& config, const torch::Device& device);

struct PiadTrainResult : TrainResult {
  models::MaskTable mask_table;  // the super-network's mask table when the call returns
};

// PIAD super-network training: trains `model` as the super-network with the Piad the config
// describes (piad_* fields), continuing the checkpoint's mask table and update epoch on resume
// (context.resume). Rank 0 writes mask_table.json and piad.jsonl into config.run_dir (when set); a
// resumed run first drops the records of updates made after its checkpoint (they happen again) and
// puts mask_table.json back to the checkpoint's table. `resume_manifest`: the checkpoint's manifest
// when the caller has read it (null: read here). Errors as for train().
PiadTrainResult train_piad(models::ElasticModelImpl& model, const data::Dataset& train_set,
                           const data::Dataset* eval_set, const TrainConfig& config,
                           const TrainContext& context = {}, const nlohmann::json* resume_manifest = nullptr);

}  // namespace skd::train
