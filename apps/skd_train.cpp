// skd-train: training / fine-tuning (DeiT recipe) or PIAD super-network training (--mode piad) on one or many
// processes (torchrun/SLURM), with exact resume and graceful stop. Parses flags, then train::resolve_config
// (flag > --config JSON > the checkpoint's config (--resume) > defaults) and train::run.
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
  options.backend = cfg.dist_backend;
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
  app::OptionBinder<train::TrainConfig> b(c);
  train::ConfigSources src;
  train::RunOptions run;
  std::string log_level;
  auto* gm = app.add_option_group("Model and data");
  b.add(gm, "model", "start from these weights (artifact or checkpoint)");
  b.add(gm, "arch", "architecture (named or JSON); alone: train from scratch");
  b.add(gm, "data", "'fashion-mnist', an IDX folder or an image folder (root/train, root/val)");
  b.add(gm, "limit", "use only the first N training images");
  b.add(gm, "eval", "evaluate on the test/val split after every epoch", "--eval,!--no-eval");
  b.add(gm, "augment", "training augmentation", "--augment,!--no-augment");
  b.add(gm, "workers", "data loader threads per process");
  gm->add_flag("--new-head", run.new_head,
               "re-initialise the classifier even when the data has the model's class count (another class count always "
               "gets a new head)");
  auto* gr = app.add_option_group("Recipe");
  b.add_config_options(gr, "recipe", "batch_size");
  b.add(gr, "epochs", ""); b.add(gr, "batch_size", "per process");
  b.add(gr, "lr", "base LR; peak = lr * global batch / 512 unless --unscale-lr");
  b.add(gr, "unscale_lr", "use --lr as the peak LR");
  for (const char* key : {"min_lr", "warmup_epochs", "warmup_lr", "weight_decay", "opt_eps", "beta1", "beta2"})
    b.add(gr, key, "");
  b.add(gr, "smoothing", "label smoothing");
  b.add(gr, "mixup", "mixup Beta alpha (0 = off)");
  b.add(gr, "cutmix", "cutmix Beta alpha (0 = off)");
  b.add(gr, "mixup_prob", ""); b.add(gr, "mixup_switch_prob", "");
  b.add(gr, "drop_path", "stochastic depth rate (linear over blocks)");
  b.add(gr, "clip_grad", "max grad norm (0 = off)");
  b.add(gr, "model_ema", "keep an EMA of the weights", "--model-ema,!--no-model-ema");
  b.add(gr, "model_ema_decay", "");
  b.add(gr, "repeated_aug", "DeiT repeated augmentation", "--repeated-aug,!--no-repeated-aug");
  b.add(gr, "amp", "none | bf16 | fp16 (CUDA)");
  b.add(gr, "device", "cpu | cuda | cuda:N (distributed: cuda -> cuda:LOCAL_RANK)");
  b.add(gr, "seed", "");
  auto* gp = app.add_option_group("PIAD (--mode piad: super-network training, docs/algorithm.md §3)");
  b.add(gp, "mode", "train (plain training / fine-tuning) | piad (super-network)");
  b.add(gp, "piad_progressive_epochs", "mask-table updates before epochs 0 .. N-1 (Pe)");
  b.add(gp, "piad_budget_ratio", "fraction of the full MACs removed by the end of the progressive phase (r)");
  b.add(gp, "piad_attn_group", "head dims per attention unit");
  b.add(gp, "piad_mlp_groups", "units per MLP (group = hidden / N)");
  b.add(gp, "piad_proxy_samples", "proxy images per update");
  b.add(gp, "piad_proxy_batch", "proxy batch per process");
  b.add(gp, "piad_sensitivity", "module sensitivity from the proxy loss (paper) or top-1 accuracy (official code)");
  b.add(gp, "piad_sandwich", "sandwich rule: train the full and the smallest network at every step too (3 "
                             "forward/backward)", "--piad-sandwich,!--no-piad-sandwich");
  b.add(gp, "piad_distill",
        "in-place distillation of the sub-networks (beyond the paper): none (the paper) | "
        "frozen (the model as PIAD started) | full (code 0 of the current weights) | "
        "progressive (a larger code of the same step)");
  b.add(gp, "piad_distill_weight", "λ of CE + λ·T²·KL(teacher ‖ student), >= 0");
  b.add(gp, "piad_distill_temperature", "T of the distillation term, > 0");
  auto* go = app.add_option_group("Run");
  b.add(go, "run_dir", "config.json, metrics.jsonl, train.log, checkpoints/");
  b.add(go, "out", "final model artifact (default <run-dir>/model.safetensors)");
  b.add(go, "keep_last", "epoch checkpoints to keep (plus best)");
  b.add(go, "log_every", "steps between progress lines off a terminal (0 = off)");
  go->add_option("--resume", src.resume, "continue a run: its run directory or a checkpoint file");
  go->add_option("--max-steps", run.max_steps, "stop with a checkpoint after this many optimizer steps in total")
      ->transform(app::decimal_integer<decltype(run.max_steps)>())
      ->check(app::non_negative());
  b.add(go, "dist_backend", "auto | gloo | nccl");
  b.add(go, "dist_timeout", "seconds before a silent peer counts as dead");
  app::add_common_options(app, run.threads = app::kAutoThreads, log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(run.threads, log_level);
    src.config_file = b.config_file();
    src.given = b.given();
    const train::ResolvedConfig resolved = train::resolve_config(src);
    const train::TrainConfig& cfg = resolved.config;
    if (b.dump_config()) {
      std::printf("%s\n", train::config_to_json(cfg).dump(2).c_str());
      return 0;
    }
    if (resolved.resume_path.empty() && cfg.model.empty() && cfg.arch.empty())
      throw std::invalid_argument("give --model and/or --arch (or --resume)");
    if (run.new_head && (!resolved.resume_path.empty() || cfg.model.empty()))
      throw std::invalid_argument("--new-head goes with --model (a resumed run keeps its head, a new model has a new one)");
    train::check_run_outputs(resolved);  // before join opens <run_dir>/train.log
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
