// PIAD super-network training: the observer that plugs a Piad into the trainer and its run-directory
// files.
#include "skd/train/piad_training.h"

#include "skd/core/device.h"
#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/core/logging.h"
#include "skd/distributed/communicator.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"
#include "skd/models/slice.h"
#include "skd/train/checkpointing.h"

namespace skd::train {

PiadObserver::PiadObserver(piad::Piad& piad, models::ElasticModelImpl& model, const data::Dataset& data,
                           distributed::Communicator* comm, const std::string& run_dir)
    : piad_(piad),
      model_(model),
      data_(data),
      comm_(comm),
      run_dir_(run_dir),
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

PiadDistiller::PiadDistiller(const piad::Piad& piad, const models::ElasticModelImpl& model) : piad_(piad) {
  if (piad.options().distill != piad::Distill::FROZEN) return;
  frozen_ = models::slice_model(model, model.widths());  // at its own widths: a copy
  for (auto& p : frozen_->parameters(true)) p.set_requires_grad(false);
  const auto params = model.parameters(true);
  if (!params.empty()) frozen_->to(params.front().device());
  frozen_->eval();
}

std::vector<Teacher> PiadDistiller::teachers(const std::vector<const models::Widths*>& subnets) {
  const auto& table = piad_.table();
  std::vector<int64_t> codes;
  for (const auto* w : subnets) {
    int64_t code = w == nullptr ? 0 : -1;
    for (int64_t c = 0; code < 0 && c <= table.last_code(); ++c)
      if (&table.widths(c) == w) code = c;
    if (code < 0)
      throw std::logic_error("PIAD distillation: a step's sub-network is not a code of the mask table");
    codes.push_back(code);
  }
  const auto teacher_codes = piad_.step_teachers(codes);
  std::vector<Teacher> out(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) {
    const int64_t t = teacher_codes[i];
    if (t == -1) continue;
    if (t == piad::Piad::kFrozenTeacher) {
      out[i].source = Teacher::Source::FROZEN;
      continue;
    }
    for (size_t j = 0; j < i && out[i].source == Teacher::Source::NONE; ++j)
      if (codes[j] == t) {
        out[i].source = Teacher::Source::STEP;
        out[i].step_index = j;
      }
    if (out[i].source == Teacher::Source::NONE) {
      out[i].source = Teacher::Source::FORWARD;
      out[i].widths = &table.widths(t);
    }
  }
  return out;
}

torch::Tensor PiadDistiller::frozen_logits(const torch::Tensor& images) {
  if (!frozen_) throw std::logic_error("PIAD distillation: no frozen teacher (piad_distill is not frozen)");
  torch::NoGradGuard no_grad;
  return frozen_->forward(images);
}

io::TensorMap PiadDistiller::state() const { return frozen_ ? models::state_dict(*frozen_) : io::TensorMap{}; }

void PiadDistiller::load_state(const io::TensorMap& state, const std::string& source) {
  if (!frozen_) {
    if (!state.empty())
      log_info(source, " holds a frozen distillation teacher; piad_distill is now ",
               enum_name(piad_.options().distill, piad::kDistillNames), ", so it is not used");
    return;
  }
  if (state.empty())
    throw ParameterFailure([=](const KeyNamer& name) {
      return cat(
          "'", source, "' holds no frozen teacher (train_state/teacher/*): it was written with another ",
          name("piad_distill"), " than frozen, and the model as PIAD started cannot be rebuilt from it; ",
          "resume with the checkpoint's ", name("piad_distill"), ", or start PIAD anew with ", name("model"));
    });
  models::load_state_dict(*frozen_, state, cat(source, " (frozen teacher, train_state/teacher/*)"));
}

void PiadDistiller::to(const torch::Device& device) {
  if (frozen_) frozen_->to(device);
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
  // The teacher (the frozen copy: the model as it is now, before any PIAD step; a resumed run
  // restores it from the checkpoint).
  std::unique_ptr<PiadDistiller> distiller;
  if (config.piad.distill != piad::Distill::NONE) {
    distiller = std::make_unique<PiadDistiller>(piad, model);
    ctx.distiller = distiller.get();
    log_info("PIAD distillation: ", enum_name(config.piad.distill, piad::kDistillNames), ", weight ",
             config.piad.distill_weight, ", temperature ", config.piad.distill_temperature);
  }
  PiadTrainResult result;
  static_cast<TrainResult&>(result) = train(model, train_set, eval_set, config, ctx);
  result.mask_table = piad.table();
  return result;
}

}  // namespace skd::train
