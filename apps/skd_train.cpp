// skd-train: training / fine-tuning (DeiT recipe) or PIAD super-network training (--mode piad) on one or many
// processes (torchrun/SLURM), with exact resume and graceful stop. Parses flags, then train::resolve_config
// (flag > --config JSON > the checkpoint's config (--resume) > defaults) and train::run.
#include <map>

#include "app_common.h"
#include "skd/core/device.h"
#include "skd/dist/join.h"
#include "skd/train/run.h"
#include "skd/train/signals.h"

using namespace skd;

// Joins the job (skd/dist/join.h): this rank's device, the log rank, the run's train.log (rank 0) and the
// communicator of a multi-process job. Returns the rank.
static int join(const train::TrainConfig& cfg, train::RunOptions& run) {
  dist::JoinOptions options;
  options.backend = dist::parse_backend(cfg.dist_backend);
  options.timeout = dist::timeout_from_seconds(cfg.dist_timeout);
  if (!cfg.run_dir.empty()) options.log_file = cfg.run_dir + "/train.log";
  auto session = dist::join(options, parse_device(cfg.device));
  run.device = session.device;
  run.comm = session.comm;
  return session.env.rank;
}

int main(int argc, char** argv) {
  CLI::App app{"Train or fine-tune a model (DeiT recipe; multi-process via torchrun/SLURM).", "skd-train"};
  train::TrainConfig c;
  train::ConfigSources src;
  train::RunOptions run;
  std::string log_level;
  bool dump_config = false;
  std::map<CLI::Option*, std::string> keys;  // option -> config key (the long flag with '_' for '-')
  auto opt = [&](CLI::App* g, const char* flags, auto& field, const char* help = "") {
    CLI::Option* o = nullptr;
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, bool>) o = g->add_flag(flags, field, help);
    else o = g->add_option(flags, field, help);
    std::string& key = keys[o] = o->get_name().substr(2);
    std::replace(key.begin(), key.end(), '-', '_');
  };
  auto* gm = app.add_option_group("Model and data");
  opt(gm, "--model", c.model, "start from these weights (artifact or checkpoint)");
  opt(gm, "--arch", c.arch, "architecture (named or JSON); alone: train from scratch");
  opt(gm, "--data", c.data, "'fashion-mnist', an IDX folder or an image folder (root/train, root/val)");
  opt(gm, "--limit", c.limit, "use only the first N training images");
  opt(gm, "--eval,!--no-eval", c.eval, "evaluate on the test/val split after every epoch");
  opt(gm, "--augment,!--no-augment", c.augment, "training augmentation");
  opt(gm, "--workers", c.workers, "data loader threads per process");
  gm->add_flag("--new-head", run.new_head,
               "re-initialise the classifier even when the data has the model's class count (another class count always "
               "gets a new head)");
  auto* gr = app.add_option_group("Recipe");
  gr->add_option("--config", src.config_file, "JSON recipe (keys: the long flags with '_', e.g. batch_size)");
  opt(gr, "--epochs", c.epochs); opt(gr, "--batch-size", c.batch_size, "per process");
  opt(gr, "--lr", c.lr, "base LR; peak = lr * global batch / 512 unless --unscale-lr");
  opt(gr, "--unscale-lr", c.unscale_lr, "use --lr as the peak LR");
  opt(gr, "--min-lr", c.min_lr); opt(gr, "--warmup-epochs", c.warmup_epochs); opt(gr, "--warmup-lr", c.warmup_lr);
  opt(gr, "--weight-decay", c.weight_decay); opt(gr, "--opt-eps", c.opt_eps);
  opt(gr, "--beta1", c.beta1); opt(gr, "--beta2", c.beta2); opt(gr, "--smoothing", c.smoothing, "label smoothing");
  opt(gr, "--mixup", c.mixup, "mixup Beta alpha (0 = off)");
  opt(gr, "--cutmix", c.cutmix, "cutmix Beta alpha (0 = off)");
  opt(gr, "--mixup-prob", c.mixup_prob); opt(gr, "--mixup-switch-prob", c.mixup_switch_prob);
  opt(gr, "--drop-path", c.drop_path, "stochastic depth rate (linear over blocks)");
  opt(gr, "--clip-grad", c.clip_grad, "max grad norm (0 = off)");
  opt(gr, "--model-ema,!--no-model-ema", c.model_ema, "keep an EMA of the weights");
  opt(gr, "--model-ema-decay", c.model_ema_decay);
  opt(gr, "--repeated-aug,!--no-repeated-aug", c.repeated_aug, "DeiT repeated augmentation");
  opt(gr, "--amp", c.amp, "none | bf16 | fp16 (CUDA)");
  opt(gr, "--device", c.device, "cpu | cuda | cuda:N (distributed: cuda -> cuda:LOCAL_RANK)");
  opt(gr, "--seed", c.seed);
  auto* gp = app.add_option_group("PIAD (--mode piad: super-network training, docs/algorithm.md §3)");
  opt(gp, "--mode", c.mode, "train (plain training / fine-tuning) | piad (super-network)");
  opt(gp, "--piad-progressive-epochs", c.piad_progressive_epochs, "mask-table updates before epochs 0 .. N-1 (Pe)");
  opt(gp, "--piad-budget-ratio", c.piad_budget_ratio,
      "fraction of the full MACs removed by the end of the progressive phase (r)");
  opt(gp, "--piad-attn-group", c.piad_attn_group, "head dims per attention unit");
  opt(gp, "--piad-mlp-groups", c.piad_mlp_groups, "units per MLP (group = hidden / N)");
  opt(gp, "--piad-proxy-samples", c.piad_proxy_samples, "proxy images per update");
  opt(gp, "--piad-proxy-batch", c.piad_proxy_batch, "proxy batch per process");
  opt(gp, "--piad-sensitivity", c.piad_sensitivity,
      "module sensitivity from the proxy loss (paper) or top-1 accuracy (official code)");
  opt(gp, "--piad-sandwich,!--no-piad-sandwich", c.piad_sandwich,
      "sandwich rule: train the full and the smallest network at every step too (3 forward/backward)");
  auto* go = app.add_option_group("Run");
  opt(go, "--run-dir", c.run_dir, "config.json, metrics.jsonl, train.log, checkpoints/");
  opt(go, "--out", c.out, "final model artifact (default <run-dir>/model.safetensors)");
  opt(go, "--keep-last", c.keep_last, "epoch checkpoints to keep (plus best)");
  opt(go, "--log-every", c.log_every, "steps between progress lines off a terminal (0 = off)");
  go->add_option("--resume", src.resume, "continue a run: its run directory or a checkpoint file");
  go->add_option("--max-steps", run.max_steps, "stop with a checkpoint after this many optimizer steps in total")
      ->check(app::non_negative());
  opt(go, "--dist-backend", c.dist_backend, "auto | gloo | nccl");
  opt(go, "--dist-timeout", c.dist_timeout, "seconds before a silent peer counts as dead");
  go->add_flag("--dump-config", dump_config, "print the resolved config as JSON and exit");
  app::add_common_options(app, run.threads = app::kAutoThreads, log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(run.threads, log_level);
    const auto given = train::config_to_json(c);
    for (const auto& [option, key] : keys)
      if (option->count() > 0) src.given[key] = given.at(key);
    const train::ResolvedConfig resolved = train::resolve_config(src);
    const train::TrainConfig& cfg = resolved.config;
    if (dump_config) {
      std::printf("%s\n", train::config_to_json(cfg).dump(2).c_str());
      return 0;
    }
    if (resolved.resume_path.empty() && cfg.model.empty() && cfg.arch.empty())
      throw std::invalid_argument("give --model and/or --arch (or --resume)");
    if (run.new_head && (!resolved.resume_path.empty() || cfg.model.empty()))
      throw std::invalid_argument("--new-head goes with --model (a resumed run keeps its head, a new model has a new one)");
    train::install_stop_signals();
    const int rank = join(cfg, run);
    const auto r = train::run(resolved, run);
    const char* where = cfg.run_dir.empty() ? "<checkpoint> (no --run-dir: nothing was saved)" : cfg.run_dir.c_str();
    if (rank == 0) std::printf("%s\n", train::summary(r).c_str());
    if (rank == 0 && r.stop_signal)
      std::printf("stopped by signal %d; resume with --resume %s\n", r.stop_signal, where);
    if (rank == 0 && r.stopped_at_max_steps)
      std::printf("stopped at --max-steps %lld; resume with --resume %s\n", static_cast<long long>(run.max_steps),
                  where);
    return r.stop_signal ? 128 + r.stop_signal : 0;
  });
}
