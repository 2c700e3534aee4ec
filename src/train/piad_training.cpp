// PIAD super-network training: the observer that plugs a Piad into the trainer and its run-directory
// files.
#include "skd/train/piad_training.h"

#include "skd/core/fs.h"
#include "skd/core/logging.h"
#include "skd/models/macs.h"
#include "skd/piad/mask_table.h"
#include "skd/train/distributed.h"

namespace skd::train {

PiadObserver::PiadObserver(piad::Piad& piad, models::ElasticModelImpl& model, const data::Dataset& data,
                           Communicator* comm, const std::string& run_dir)
    : piad_(piad), model_(model), data_(data), comm_(comm), run_dir_(run_dir),
      writer_((comm ? comm->rank() : 0) == 0 && !run_dir.empty()) {}

void PiadObserver::on_epoch_start(int64_t epoch) {
  const auto rec = piad_.update(epoch, model_, data_, comm_);
  if (rec.is_null()) return;
  log_info("PIAD epoch ", epoch, ": +", rec["added_codes"].get<int64_t>(), " op codes (0..",
           piad_.table().last_code(), "), smallest sub-network ",
           models::macs_format(static_cast<int64_t>(rec["smallest_macs"].get<double>())), " (target removed ",
           models::macs_format(static_cast<int64_t>(rec["target_macs_removed"].get<double>())), ")");
  if (writer_) {
    piad::write_mask_table(mask_table_path(), piad_.table());
    append_line_synced(piad_log_path(), rec.dump());
  }
}

std::vector<const models::Widths*> PiadObserver::step_subnets(int64_t, int64_t, data::Rng& rng) {
  return piad_.step_subnets(rng);
}

nlohmann::json PiadObserver::manifest_extra() const { return piad_.manifest_entries(); }

}  // namespace skd::train
