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
#include "skd/train/trainer.h"

namespace skd::train {

// A Piad plugged into the trainer: the table update before each epoch (statistics on `data`, logged,
// and with a non-empty `run_dir` on rank 0 written to mask_table.json and piad.jsonl), the step's
// sub-networks, the gradients of removed parts zeroed, the table in every manifest. `piad`, `model`
// and `data` must outlive the observer.
class PiadObserver : public TrainObserver {
 public:
  PiadObserver(piad::Piad& piad, models::ElasticModelImpl& model, const data::Dataset& data, Communicator* comm,
               const std::string& run_dir = "");
  void on_epoch_start(int64_t epoch) override;
  std::vector<const models::Widths*> step_subnets(int64_t epoch, int64_t step, data::Rng& rng) override;
  bool zero_grad_removed() const override { return true; }
  nlohmann::json manifest_extra() const override;

  std::string mask_table_path() const { return run_dir_ + "/mask_table.json"; }
  std::string piad_log_path() const { return run_dir_ + "/piad.jsonl"; }
  // Whether this process writes the run directory's PIAD files (rank 0 with a run directory).
  bool writes_files() const { return writer_; }

 private:
  piad::Piad& piad_;
  models::ElasticModelImpl& model_;
  const data::Dataset& data_;
  Communicator* comm_;
  std::string run_dir_;
  bool writer_;
};

}  // namespace skd::train
