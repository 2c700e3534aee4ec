// skd-train: training / fine-tuning (DeiT recipe) or PIAD super-network training (--mode piad) on one or many
// processes (torchrun/SLURM), with exact resume and graceful stop. Binds its flags to a train::TrainConfig
// (flag > --config JSON > the checkpoint's config (--resume) > defaults) and calls train::run_train_job.
#include "app_common.h"
#include "skd/train/run.h"

using namespace skd;

int main(int argc, char** argv) {
  CLI::App app{"Train or fine-tune a model (DeiT recipe; multi-process via torchrun/SLURM).", "skd-train"};
  train::TrainConfig c;
  app::OptionBinder<train::TrainConfig> b(c);
  train::RunOptions run;
  std::string resume, log_level;
  auto* gm = app.add_option_group("Model and data");
  for (const char* key : {"model", "arch", "data", "limit"}) b.add(gm, key);
  b.add_named(gm, "eval", "--eval,!--no-eval");
  b.add_named(gm, "augment", "--augment,!--no-augment");
  b.add(gm, "workers");
  for (const char* key : {"crop_pct", "interpolation", "mean", "std"}) b.add(gm, key);
  gm->add_flag("--new-head", run.new_head,
               "re-initialise the classifier even when the data has the model's class count (another class count always "
               "gets a new head)");
  auto* gr = app.add_option_group("Recipe");
  b.add_config_options(gr, "recipe", "batch_size");
  for (const char* key : {"epochs", "batch_size", "lr", "unscale_lr", "min_lr", "warmup_epochs", "warmup_lr",
                          "weight_decay", "opt_eps", "beta1", "beta2", "smoothing", "mixup", "cutmix",
                          "mixup_prob", "mixup_switch_prob", "drop_path", "clip_grad"})
    b.add(gr, key);
  b.add_named(gr, "model_ema", "--model-ema,!--no-model-ema");
  b.add(gr, "model_ema_decay");
  b.add_named(gr, "repeated_aug", "--repeated-aug,!--no-repeated-aug");
  for (const char* key : {"amp", "device", "seed"}) b.add(gr, key);
  auto* gp = app.add_option_group("PIAD (--mode piad: super-network training, docs/algorithm.md §3)");
  for (const char* key : {"mode", "piad_progressive_epochs", "piad_budget_ratio", "piad_attn_group",
                          "piad_mlp_groups", "piad_proxy_samples", "piad_proxy_batch", "piad_sensitivity"})
    b.add(gp, key);
  b.add_named(gp, "piad_sandwich", "--piad-sandwich,!--no-piad-sandwich");
  for (const char* key : {"piad_distill", "piad_distill_weight", "piad_distill_temperature"}) b.add(gp, key);
  auto* go = app.add_option_group("Run");
  for (const char* key : {"run_dir", "out", "keep_last", "log_every"}) b.add(go, key);
  go->add_option("--resume", resume, "continue a run: its run directory or a checkpoint file");
  go->add_option("--max-steps", run.max_steps, "stop with a checkpoint after this many optimizer steps in total")
      ->transform(app::decimal_integer<decltype(run.max_steps)>())
      ->check(app::non_negative());
  for (const char* key : {"dist_backend", "dist_timeout"}) b.add(go, key);
  app::add_common_options(app, run.threads = app::kAutoThreads, log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(run.threads, log_level);
    train::Resume from = train::read_resume(resume);
    const auto layers = from.layers;
    const train::ResolvedConfig resolved = train::resolve_run(b.resolve(layers), std::move(from));
    if (b.dump_config()) {
      std::printf("%s\n", train::config_to_json(resolved.config).dump(2).c_str());
      return 0;
    }
    const auto r = train::run_train_job(resolved, run, stdout);
    return r.stop_signal ? 128 + r.stop_signal : 0;
  });
}
