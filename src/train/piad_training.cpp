// PIAD super-network training: the observer that plugs a Piad into the trainer and its run-directory
// files.
#include "skd/train/piad_training.h"

#include "skd/core/device.h"
#include "skd/core/fs.h"
#include "skd/core/logging.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"
#include "skd/train/checkpointing.h"
#include "skd/dist/communicator.h"

namespace skd::train {

PiadObserver::PiadObserver(piad::Piad& piad, models::ElasticModelImpl& model, const data::Dataset& data,
                           dist::Communicator* comm, const std::string& run_dir)
    : piad_(piad), model_(model), data_(data), comm_(comm), run_dir_(run_dir),
      writer_((comm ? comm->rank() : 0) == 0 && !run_dir.empty()) {}

void PiadObserver::on_epoch_start(int64_t epoch) {
  const auto rec = piad_.update_table(epoch, model_, data_, comm_);
  if (!rec) return;
  log_info("PIAD epoch ", epoch, ": +", rec->added_codes, " op codes (0..", piad_.table().last_code(),
           "), smallest sub-network ", models::macs_format(static_cast<int64_t>(rec->smallest_macs)),
           " (target removed ", models::macs_format(static_cast<int64_t>(rec->target_macs_removed)), ")");
  if (writer_) {
    models::write_mask_table(mask_table_path(), piad_.table());
    append_line_synced(piad_log_path(), rec->to_json().dump());
  }
}

std::vector<const models::Widths*> PiadObserver::step_subnets(int64_t, int64_t, data::Rng& rng) {
  return piad_.step_subnets(rng);
}

nlohmann::json PiadObserver::manifest_extra() const { return piad_.manifest_entries(); }

void PiadObserver::rewind_files() const {
  if (!writer_) return;
  const int64_t last = piad_.table().last_code();
  const int64_t n = trim_jsonl(piad_log_path(), [last](const nlohmann::json& r) {
    return r.contains("codes") && r["codes"].is_array() && r["codes"].size() == 2 &&
           r["codes"][1].is_number_integer() && r["codes"][1].get<int64_t>() <= last;
  });
  if (n > 0) log_info("piad.jsonl: dropped ", n, " update record(s) made after the checkpoint");
  if (last > 0) models::write_mask_table(mask_table_path(), piad_.table());
}

piad::PiadOptions piad_options(const TrainConfig& config, const torch::Device& device) {
  piad::PiadOptions po = config.piad;
  po.seed = config.seed;
  po.device = device;
  return po;
}

PiadTrainResult train_piad(models::ElasticModelImpl& model, const data::Dataset& train_set,
                           const data::Dataset* eval_set, const TrainConfig& config, const TrainContext& context,
                           const nlohmann::json* resume_manifest) {
  validate(config);
  const torch::Device device = context.device ? *context.device : parse_device(config.device);
  nlohmann::json manifest;
  if (!context.resume.empty() && !resume_manifest) manifest = read_training_state(context.resume).manifest;
  piad::Piad piad = piad::Piad::from_manifest(model.config(), model.widths(), piad_options(config, device),
                                              resume_manifest ? *resume_manifest : manifest,
                                              context.resume.empty() ? "resume" : context.resume);
  PiadObserver observer(piad, model, train_set, context.comm.get(), config.run_dir);
  if (!context.resume.empty()) observer.rewind_files();
  TrainContext ctx = context;
  ctx.observers.push_back(&observer);
  PiadTrainResult result;
  static_cast<TrainResult&>(result) = train(model, train_set, eval_set, config, ctx);
  result.mask_table = piad.table();
  return result;
}

}  // namespace skd::train
