// skd-train as one library call: the resumed checkpoint as a config layer, the checks of the resolved
// config, model and data setup, mode dispatch, and the job skd-train runs.
#include "skd/train/run.h"

#include <algorithm>
#include <filesystem>

#include "skd/core/device.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/core/logging.h"
#include "skd/core/options.h"
#include "skd/data/dataset.h"
#include "skd/distributed/communicator.h"
#include "skd/distributed/join.h"
#include "skd/models/checkpoint.h"
#include "skd/models/head.h"
#include "skd/train/checkpointing.h"
#include "skd/train/piad_training.h"
#include "skd/train/signals.h"

namespace skd::train {

namespace {

// The model to train and the provenance of its weights.
struct InitialModel {
  models::ElasticModel net;
  nlohmann::json provenance = nlohmann::json::object();
  std::optional<data::Preprocess> preprocess;  // the preprocess entry of the weights' file
  std::string source;                          // that file
};

InitialModel initial_model(const ResolvedConfig& resolved) {
  const TrainConfig& cfg = resolved.config;
  InitialModel m;
  if (!resolved.resume_path.empty()) {  // train() restores the checkpoint's weights
    m.net = models::create_model(resolved.resume_arch);
    m.provenance["resumed_from"] = resolved.resume_path;
    m.preprocess =
        models::manifest_preprocess(resolved.resume_manifest, resolved.resume_arch, resolved.resume_path);
    m.source = resolved.resume_path;
  } else if (!cfg.model.empty()) {
    auto loaded = models::load_model(cfg.model, cfg.arch);
    m.net = loaded.model;
    m.preprocess = loaded.preprocess;
    m.source = cfg.model;
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

namespace fs = std::filesystem;

// The run directory of a --resume argument: the directory itself (a run directory), the folder above a
// checkpoints folder, or the run directory of a checkpoint file inside <run>/checkpoints. "" for a
// checkpoint file elsewhere (not part of a run).
std::string resume_run_dir(const std::string& arg, const std::string& checkpoint) {
  std::error_code ec;
  fs::path p = fs::path(arg).lexically_normal();
  if (p.has_filename() == false && p.has_parent_path()) p = p.parent_path();  // "runs/a/" -> "runs/a"
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "checkpoints" / "latest", ec)) return p.string();
    const fs::path above = fs::absolute(p, ec).lexically_normal().parent_path();
    return above.string();
  }
  const fs::path folder = fs::absolute(fs::path(checkpoint), ec).lexically_normal().parent_path();
  if (folder.filename() == "checkpoints") return folder.parent_path().string();
  return "";
}

// The training state of the checkpoint to resume. When it cannot be read (truncated, corrupt), the error
// also names the newest earlier checkpoint of its folder that reads, or says there is none.
TrainingState read_resume_state(const std::string& path) {
  try {
    return read_training_state(path);
  } catch (const std::runtime_error& e) {
    const fs::path file(path);
    if (file.filename().string().rfind("ckpt-e", 0) != 0) throw;  // not one of a run's checkpoints
    const std::string what = e.what();
    const fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    std::vector<std::string> earlier;
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string n = it->path().filename().string();
      if (n.rfind("ckpt-e", 0) == 0 && n.size() > 12 && n.substr(n.size() - 12) == ".safetensors" &&
          n < file.filename().string())
        earlier.push_back(n);
    }
    std::sort(earlier.rbegin(), earlier.rend());
    std::string intact;
    for (const auto& n : earlier) {
      try {
        read_training_state((folder / n).string());
        intact = (folder / n).string();
        break;
      } catch (const std::runtime_error&) {
      }
    }
    throw ParameterFailure([=](const KeyNamer& name) {
      if (intact.empty())
        return cat("cannot resume from '", path, "': ", what, "; no intact earlier checkpoint in '", folder.string(),
                   "'");
      return cat("cannot resume from '", path, "': ", what, "; the newest intact earlier checkpoint is '", intact,
                 "' (resume from it with ", name("resume"), " ", intact, ")");
    });
  }
}

}  // namespace

Resume read_resume(const std::string& resume) {
  Resume r;
  if (resume.empty()) return r;
  r.path = resolve_resume_path(resume);
  const auto state = read_resume_state(r.path);
  // The resumed run is the directory given, wherever the run was when the checkpoint was written (a
  // moved or copied run, another working directory): every file of the run goes there, and the final
  // model to <run_dir>/model.safetensors unless an output is given again.
  r.run_dir = resume_run_dir(resume, r.path);
  nlohmann::json layer = state.config;
  layer["run_dir"] = r.run_dir;
  layer["out"] = "";
  r.layers.push_back({layer, cat("the config of the checkpoint '", r.path, "'")});
  if (r.run_dir.empty())
    log_warn(log_key("resume"), " '", resume,
             "' is a checkpoint outside a run directory: this run saves its ", "files only where ",
             log_key("run_dir"), " / ", log_key("out"), " say");
  // The same checks as load_model: a valid config, and no model larger than the file's weights.
  r.arch = models::manifest_config(state.manifest, r.path);
  models::check_params_fit(r.arch, state.model, r.path);
  r.manifest = state.manifest;
  return r;
}

ResolvedConfig resolve_run(const TrainConfig& config, Resume resume) {
  ResolvedConfig r;
  r.config = config;
  r.resume_path = std::move(resume.path);
  r.resume_arch = std::move(resume.arch);
  r.resume_manifest = std::move(resume.manifest);
  r.resume_run_dir = std::move(resume.run_dir);
  validate(r.config);
  if (!r.resume_run_dir.empty() && r.config.run_dir != r.resume_run_dir) {
    if (same_file(r.config.run_dir, r.resume_run_dir))
      r.config.run_dir = r.resume_run_dir;
    else  // given explicitly (flag or config file): the resumed run continues in another folder
      log_info("resuming the run of '", r.resume_run_dir, "' into ", log_key("run_dir"), " '", r.config.run_dir, "'");
  }
  return r;
}

void check_run_outputs(const ResolvedConfig& resolved) {
  const TrainConfig& cfg = resolved.config;
  const std::vector<std::string> inputs = {cfg.model, cfg.arch, resolved.resume_path};
  check_output_dir("run_dir", cfg.run_dir);
  std::error_code ec;
  if (!cfg.out.empty())
    check_output_file("out", cfg.out, inputs);
  else if (!cfg.run_dir.empty() && fs::is_directory(cfg.run_dir, ec))
    check_output_file("run_dir", cfg.run_dir + "/model.safetensors", inputs);
}

TrainResult run(const ResolvedConfig& resolved, const RunOptions& options) {
  const TrainConfig& cfg = resolved.config;
  check_run_outputs(resolved);
  torch::manual_seed(cfg.seed);
  InitialModel m = initial_model(resolved);
  data::DataSpec spec;
  spec.spec = cfg.data;
  spec.split = "train";
  spec.img_size = m.net->config().img_size;
  spec.channels = m.net->config().in_chans;
  spec.train_augment = cfg.augment;
  data::apply_preprocess(spec, m.preprocess, m.source, cfg.preprocess);
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

TrainResult run_train_job(const ResolvedConfig& resolved, RunOptions options, std::FILE* out) {
  const TrainConfig& cfg = resolved.config;
  using N = const KeyNamer&;
  if (resolved.resume_path.empty() && cfg.model.empty() && cfg.arch.empty())
    throw ParameterError(
        [](N n) { return cat("give ", n("model"), " and/or ", n("arch"), " (or ", n("resume"), ")"); });
  if (options.new_head && (!resolved.resume_path.empty() || cfg.model.empty()))
    throw ParameterError([](N n) {
      return cat(n("new_head"), " goes with ", n("model"),
                 " (a resumed run keeps its head, a new model has a new one)");
    });
  check_run_outputs(resolved);  // before join opens <run_dir>/train.log
  install_stop_signals();
  distributed::JoinOptions join;
  join.backend = cfg.dist_backend;
  join.timeout = distributed::timeout_from_seconds(cfg.dist_timeout);
  if (!cfg.run_dir.empty()) join.log_file = cfg.run_dir + "/train.log";
  auto session = distributed::join(join, parse_device(cfg.device));
  options.device = session.device;
  options.comm = session.comm;
  const bool main_rank = session.env.rank == 0;
  const TrainResult r = run(resolved, options);
  const std::string where = cfg.run_dir.empty()
                                ? cat("<checkpoint> (no ", log_key("run_dir"), ": nothing was saved)")
                                : cfg.run_dir;
  if (main_rank) std::fprintf(out, "%s\n", summary(r).c_str());
  if (main_rank && r.stop_signal)
    std::fprintf(out, "stopped by signal %d; resume with %s %s\n", r.stop_signal, log_key("resume").c_str(),
                 where.c_str());
  if (main_rank && r.stopped_at_max_steps)
    std::fprintf(out, "stopped at %s %lld; resume with %s %s\n", log_key("max_steps").c_str(),
                 static_cast<long long>(options.max_steps), log_key("resume").c_str(), where.c_str());
  return r;
}

}  // namespace skd::train
