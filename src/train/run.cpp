// skd-train as one library call: config resolution, model and data setup, mode dispatch.
#include "skd/train/run.h"

#include "skd/core/error.h"
#include "skd/core/json_file.h"
#include "skd/core/logging.h"
#include "skd/core/options.h"
#include "skd/data/dataset.h"
#include "skd/dist/communicator.h"
#include "skd/models/checkpoint.h"
#include "skd/models/head.h"
#include "skd/train/checkpointing.h"
#include "skd/train/piad_training.h"

namespace skd::train {

namespace {

// The model to train and the provenance of its weights.
struct InitialModel {
  models::ElasticModel net;
  nlohmann::json provenance = nlohmann::json::object();
};

InitialModel initial_model(const ResolvedConfig& resolved) {
  const TrainConfig& cfg = resolved.config;
  InitialModel m;
  if (!resolved.resume_path.empty()) {  // train() restores the checkpoint's weights
    m.net = models::create_model(resolved.resume_arch);
    m.provenance["resumed_from"] = resolved.resume_path;
  } else if (!cfg.model.empty()) {
    m.net = models::load_model(cfg.model, cfg.arch).model;
    m.provenance["init"] = cfg.model;
    m.provenance["init_sha256"] = models::file_sha256(cfg.model);
  } else {
    m.net = models::create_model(models::resolve_arch(cfg.arch));
    m.provenance["init"] = "scratch";
  }
  return m;
}

// Fine-tuning on data with another class count (DeiT's fine-tuning, timm's num_classes=N): a new
// head; the run would otherwise stop at the class check. Resumed runs already have theirs.
void replace_head_for(InitialModel& m, const data::Dataset& train_set, const ResolvedConfig& resolved, bool new_head) {
  const TrainConfig& cfg = resolved.config;
  const int64_t before = m.net->config().num_classes;
  if (!resolved.resume_path.empty() || cfg.model.empty() || (!new_head && train_set.num_classes() == before)) return;
  models::replace_head(m.net, train_set.num_classes(), cfg.seed);
  m.provenance["new_head"] = {{"num_classes", m.net->config().num_classes}, {"replaced_num_classes", before},
                              {"init", "trunc_normal(std=0.02), bias 0"}, {"seed", cfg.seed}};
  log_warn("new classification head: ", before, " -> ", m.net->config().num_classes, " classes (",
           train_set.describe(), "), re-initialised (trunc_normal std 0.02, bias 0); the backbone keeps its weights ",
           "and widths");
}

}  // namespace

ResolvedConfig resolve_config(const ConfigSources& sources) {
  nlohmann::json resolved = config_to_json(TrainConfig{});
  ResolvedConfig r;
  if (!sources.resume.empty()) {
    r.resume_path = resolve_resume_path(sources.resume);
    const auto state = read_training_state(r.resume_path);
    for (auto& [k, v] : state.config.items()) resolved[k] = v;
    // The same checks as load_model: a valid config, and no model larger than the file's weights.
    r.resume_arch = models::manifest_config(state.manifest, r.resume_path);
    models::check_params_fit(r.resume_arch, state.model, r.resume_path);
    r.resume_manifest = state.manifest;
  }
  if (!sources.config_file.empty()) {
    const auto j = read_json_file_of(sources.config_name, sources.config_file, "");
    try {
      config_from_json(j, cat("'", sources.config_file, "'"));  // strict check of the file alone
    } catch (const std::invalid_argument& e) {
      throw ParameterError(sources.config_name, cat(" ", e.what()));
    }
    for (auto& [k, v] : j.items()) resolved[k] = v;
  }
  config_from_json(sources.given, options::kCommandLine);  // the flags' types and values, named as flags
  for (auto& [k, v] : sources.given.items()) resolved[k] = v;
  r.config = config_from_json(resolved, "resolved config");
  validate(r.config);
  return r;
}

TrainResult run(const ResolvedConfig& resolved, const RunOptions& options) {
  const TrainConfig& cfg = resolved.config;
  torch::manual_seed(cfg.seed);
  InitialModel m = initial_model(resolved);
  data::DataSpec spec;
  spec.spec = cfg.data;
  spec.split = "train";
  spec.img_size = m.net->config().img_size;
  spec.channels = m.net->config().in_chans;
  spec.train_augment = cfg.augment;
  auto train_set = data::open_dataset(spec);
  replace_head_for(m, *train_set, resolved, options.new_head);
  std::unique_ptr<data::Dataset> test_set;
  if (cfg.eval) {
    spec.split = "test";
    spec.train_augment = false;
    test_set = data::open_dataset(spec);
  }
  const std::string subset = cfg.limit > 0 && cfg.limit < train_set->size()
                                 ? "the first " + std::to_string(cfg.limit) + " images of "
                                 : "";
  log_info("training ", m.net->config().name, " on ", subset, train_set->describe(), " for ", cfg.epochs,
           " epoch(s), batch ", cfg.batch_size, " x ", options.comm ? options.comm->world_size() : 1,
           " process(es), ", options.threads, " thread(s)");
  TrainContext ctx;
  ctx.comm = options.comm;
  ctx.device = options.device;
  ctx.resume = resolved.resume_path;
  ctx.provenance = m.provenance;
  ctx.max_steps = options.max_steps;
  if (cfg.mode == Mode::PIAD)
    return train_piad(*m.net, *train_set, test_set.get(), cfg, ctx, &resolved.resume_manifest);
  return train(*m.net, *train_set, test_set.get(), cfg, ctx);
}

}  // namespace skd::train
