// skd-train: supervised training / fine-tuning of a ViT or Swin with the DeiT recipe, on one or
// many processes (torchrun/SLURM environment), with exact resume and graceful stop.
// Values: command-line flag > --config JSON > the checkpoint's config (--resume) > defaults.
#include <fstream>
#include <map>

#include "app_common.h"
#include "skd/dist/join.h"
#include "skd/piad/piad.h"
#include "skd/core/device.h"
#include "skd/core/fs.h"
#include "skd/data/dataset.h"
#include "skd/models/checkpoint.h"
#include "skd/models/head.h"
#include "skd/train/checkpointing.h"
#include "skd/train/signals.h"
#include "skd/train/trainer.h"

using namespace skd;

namespace {

nlohmann::json read_json_file(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(cat(flag, ": cannot open '", path, "'"));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(cat(flag, " '", path, "': invalid JSON: ", e.what()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train or fine-tune a model (DeiT recipe; multi-process via torchrun/SLURM).", "skd-train"};
  train::TrainConfig c;
  std::string config_file, resume, log_level;
  bool dump_config = false, new_head = false;
  int threads = app::kAutoThreads;
  std::map<CLI::Option*, std::string> keys;  // option -> config key
  auto opt = [&](CLI::App* g, const std::string& flags, auto& field, const std::string& key, const std::string& help) {
    keys[g->add_option(flags, field, help)] = key;
  };
  auto flag = [&](CLI::App* g, const std::string& flags, bool& field, const std::string& key, const std::string& help) {
    keys[g->add_flag(flags, field, help)] = key;
  };
  auto* gm = app.add_option_group("Model and data");
  opt(gm, "--model", c.model, "model", "start from these weights (artifact or checkpoint)");
  opt(gm, "--arch", c.arch, "arch", "architecture (named or JSON); alone: train from scratch");
  opt(gm, "--data", c.data, "data", "'fashion-mnist', an IDX folder or an image folder (root/train, root/val)");
  opt(gm, "--limit", c.limit, "limit", "use only the first N training images");
  flag(gm, "--eval,!--no-eval", c.eval, "eval", "evaluate on the test/val split after every epoch");
  flag(gm, "--augment,!--no-augment", c.augment, "augment", "training augmentation");
  opt(gm, "--workers", c.workers, "workers", "data loader threads per process");
  gm->add_flag("--new-head", new_head, "re-initialise the classifier even when the data has the model's class count "
                                       "(another class count always gets a new head)");
  auto* gr = app.add_option_group("Recipe");
  gr->add_option("--config", config_file, "JSON recipe (keys: the long flags with '_', e.g. batch_size)");
  opt(gr, "--epochs", c.epochs, "epochs", "");
  opt(gr, "--batch-size", c.batch_size, "batch_size", "per process");
  opt(gr, "--lr", c.lr, "lr", "base LR; peak = lr * global batch / 512 unless --unscale-lr");
  flag(gr, "--unscale-lr", c.unscale_lr, "unscale_lr", "use --lr as the peak LR");
  opt(gr, "--min-lr", c.min_lr, "min_lr", "");
  opt(gr, "--warmup-epochs", c.warmup_epochs, "warmup_epochs", "");
  opt(gr, "--warmup-lr", c.warmup_lr, "warmup_lr", "");
  opt(gr, "--weight-decay", c.weight_decay, "weight_decay", "");
  opt(gr, "--opt-eps", c.opt_eps, "opt_eps", "");
  opt(gr, "--beta1", c.beta1, "beta1", "");
  opt(gr, "--beta2", c.beta2, "beta2", "");
  opt(gr, "--smoothing", c.smoothing, "smoothing", "label smoothing");
  opt(gr, "--mixup", c.mixup, "mixup", "mixup Beta alpha (0 = off)");
  opt(gr, "--cutmix", c.cutmix, "cutmix", "cutmix Beta alpha (0 = off)");
  opt(gr, "--mixup-prob", c.mixup_prob, "mixup_prob", "");
  opt(gr, "--mixup-switch-prob", c.mixup_switch_prob, "mixup_switch_prob", "");
  opt(gr, "--drop-path", c.drop_path, "drop_path", "stochastic depth rate (linear over blocks)");
  opt(gr, "--clip-grad", c.clip_grad, "clip_grad", "max grad norm (0 = off)");
  flag(gr, "--model-ema,!--no-model-ema", c.model_ema, "model_ema", "keep an EMA of the weights");
  opt(gr, "--model-ema-decay", c.model_ema_decay, "model_ema_decay", "");
  flag(gr, "--repeated-aug,!--no-repeated-aug", c.repeated_aug, "repeated_aug", "DeiT repeated augmentation");
  opt(gr, "--amp", c.amp, "amp", "none | bf16 | fp16 (CUDA)");
  opt(gr, "--device", c.device, "device", "cpu | cuda | cuda:N (distributed: cuda -> cuda:LOCAL_RANK)");
  opt(gr, "--seed", c.seed, "seed", "");
  auto* gp = app.add_option_group("PIAD (--mode piad: super-network training, reference §4)");
  opt(gp, "--mode", c.mode, "mode", "train (plain training / fine-tuning) | piad (super-network)");
  opt(gp, "--piad-progressive-epochs", c.piad_progressive_epochs, "piad_progressive_epochs",
      "mask-table updates before epochs 0 .. N-1 (Pe)");
  opt(gp, "--piad-budget-ratio", c.piad_budget_ratio, "piad_budget_ratio",
      "fraction of the full MACs removed by the end of the progressive phase (r)");
  opt(gp, "--piad-attn-group", c.piad_attn_group, "piad_attn_group", "head dims per attention unit");
  opt(gp, "--piad-mlp-groups", c.piad_mlp_groups, "piad_mlp_groups", "units per MLP (group = hidden / N)");
  opt(gp, "--piad-proxy-samples", c.piad_proxy_samples, "piad_proxy_samples", "proxy images per update");
  opt(gp, "--piad-proxy-batch", c.piad_proxy_batch, "piad_proxy_batch", "proxy batch per process");
  opt(gp, "--piad-sensitivity", c.piad_sensitivity, "piad_sensitivity",
      "module sensitivity from the proxy loss (paper) or top-1 accuracy (official code)");
  flag(gp, "--piad-sandwich,!--no-piad-sandwich", c.piad_sandwich, "piad_sandwich",
       "sandwich rule: train the full and the smallest network at every step too (3 forward/backward)");
  auto* go = app.add_option_group("Run");
  opt(go, "--run-dir", c.run_dir, "run_dir", "config.json, metrics.jsonl, train.log, checkpoints/");
  opt(go, "--out", c.out, "out", "final model artifact (default <run-dir>/model.safetensors)");
  opt(go, "--keep-last", c.keep_last, "keep_last", "epoch checkpoints to keep (plus best)");
  opt(go, "--log-every", c.log_every, "log_every", "steps between progress lines off a terminal (0 = off)");
  go->add_option("--resume", resume, "continue a run: its run directory or a checkpoint file");
  int64_t max_steps = 0;
  go->add_option("--max-steps", max_steps, "stop with a checkpoint after this many optimizer steps in total")
      ->check(app::non_negative());
  opt(go, "--dist-backend", c.dist_backend, "dist_backend", "auto | gloo | nccl");
  opt(go, "--dist-timeout", c.dist_timeout, "dist_timeout", "seconds before a silent peer counts as dead");
  go->add_flag("--dump-config", dump_config, "print the resolved config as JSON and exit");
  app::add_common_options(app, threads, log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(threads, log_level);
    // Resolve: defaults < checkpoint config < --config < flags given.
    nlohmann::json resolved = train::config_to_json(train::TrainConfig{});
    std::string resume_path;
    models::ModelConfig resume_arch;  // the checkpoint's architecture; train() restores its weights
    nlohmann::json resume_manifest;
    if (!resume.empty()) {
      resume_path = train::resolve_resume_path(resume);
      const auto state = train::read_training_state(resume_path);
      for (auto& [k, v] : state.config.items()) resolved[k] = v;
      // The same checks as load_model: a valid config, and no model larger than the file's weights.
      resume_arch = models::manifest_config(state.manifest, resume_path);
      models::check_params_fit(resume_arch, state.model, resume_path);
      resume_manifest = state.manifest;
    }
    if (!config_file.empty()) {
      const auto j = read_json_file(config_file, "--config");
      train::config_from_json(j, "--config '" + config_file + "'");  // strict check of the file alone
      for (auto& [k, v] : j.items()) resolved[k] = v;
    }
    const auto given = train::config_to_json(c);
    for (const auto& [option, key] : keys)
      if (option->count() > 0) resolved[key] = given.at(key);
    const train::TrainConfig cfg = train::config_from_json(resolved, "resolved config");
    train::validate(cfg);
    if (dump_config) {
      std::printf("%s\n", train::config_to_json(cfg).dump(2).c_str());
      return 0;
    }
    if (resume_path.empty() && cfg.model.empty() && cfg.arch.empty())
      throw std::invalid_argument("give --model and/or --arch (or --resume)");
    if (new_head && (!resume_path.empty() || cfg.model.empty()))
      throw std::invalid_argument("--new-head goes with --model (a resumed run keeps its head, a new model has a new one)");

    train::install_stop_signals();
    train::TrainConfig run_cfg = cfg;
    dist::JoinOptions join_options;
    join_options.backend = dist::parse_backend(cfg.dist_backend);
    join_options.timeout = dist::timeout_from_seconds(cfg.dist_timeout);
    if (!cfg.run_dir.empty()) join_options.log_file = cfg.run_dir + "/train.log";
    const auto session = dist::join(join_options, parse_device(cfg.device));
    const auto& env = session.env;
    const auto dev = session.device;
    const auto& comm = session.comm;
    torch::manual_seed(cfg.seed);
    models::ElasticModel net;
    nlohmann::json prov;
    if (!resume_path.empty()) {
      net = models::create_model(resume_arch);
      prov["resumed_from"] = resume_path;
    } else if (!cfg.model.empty()) {
      net = models::load_model(cfg.model, cfg.arch).model;
      prov["init"] = cfg.model;
      prov["init_sha256"] = models::file_sha256(cfg.model);
    } else {
      net = models::create_model(models::resolve_arch(cfg.arch));
      prov["init"] = "scratch";
    }
    models::ModelConfig mc = net->config();  // a copy: replace_head below swaps the model
    data::DataSpec spec;
    spec.spec = cfg.data;
    spec.split = "train";
    spec.img_size = mc.img_size;
    spec.channels = mc.in_chans;
    spec.train_augment = cfg.augment;
    auto train_set = data::open_dataset(spec);
    // Fine-tuning on data with another class count (DeiT's fine-tuning, timm's num_classes=N): a new
    // head; the run would otherwise stop at the class check. Resumed runs already have theirs.
    if (resume_path.empty() && !cfg.model.empty() && (new_head || train_set->num_classes() != mc.num_classes)) {
      const int64_t before = mc.num_classes;
      models::replace_head(net, train_set->num_classes(), cfg.seed);
      mc = net->config();
      prov["new_head"] = {{"num_classes", net->config().num_classes}, {"replaced_num_classes", before},
                          {"init", "trunc_normal(std=0.02), bias 0"}, {"seed", cfg.seed}};
      log_warn("new classification head: ", before, " -> ", net->config().num_classes, " classes (", train_set->describe(),
               "), re-initialised (trunc_normal std 0.02, bias 0); the backbone keeps its weights and widths");
    }
    std::unique_ptr<data::Dataset> test_set;
    if (cfg.eval) {
      spec.split = "test";
      spec.train_augment = false;
      test_set = data::open_dataset(spec);
    }
    const std::string subset = cfg.limit > 0 && cfg.limit < train_set->size()
                                   ? "the first " + std::to_string(cfg.limit) + " images of "
                                   : "";
    log_info("training ", mc.name, " on ", subset, train_set->describe(), " for ", cfg.epochs, " epoch(s), batch ",
             cfg.batch_size, " x ", env.world_size, " process(es), ", threads, " thread(s)");
    train::TrainContext ctx;
    ctx.comm = comm;
    ctx.device = dev;
    ctx.resume = resume_path;
    ctx.provenance = prov;
    ctx.max_steps = max_steps;
    std::unique_ptr<piad::Piad> super;
    if (cfg.mode == "piad") {
      piad::PiadOptions po;
      po.progressive_epochs = cfg.piad_progressive_epochs;
      po.budget_ratio = cfg.piad_budget_ratio;
      po.attn_group = cfg.piad_attn_group;
      po.mlp_groups = cfg.piad_mlp_groups;
      po.proxy_samples = cfg.piad_proxy_samples;
      po.proxy_batch = cfg.piad_proxy_batch;
      po.sensitivity = piad::parse_sensitivity(cfg.piad_sensitivity);
      po.sandwich = cfg.piad_sandwich;
      po.seed = cfg.seed;
      po.device = dev;
      super = std::make_unique<piad::Piad>(piad::Piad::from_manifest(
          mc, net->widths(), po, resume_manifest, resume_path.empty() ? "resume" : resume_path));
      const bool writer = env.rank == 0 && !cfg.run_dir.empty();
      const std::string piad_log = cfg.run_dir + "/piad.jsonl", table_path = cfg.run_dir + "/mask_table.json";
      if (writer && !resume_path.empty()) {
        // Updates made after the checkpoint are not in its table and happen again: drop their
        // records, and put the run directory's mask_table.json back to the checkpoint's table.
        const int64_t last = super->table().last_code();
        const int64_t n = train::trim_jsonl(piad_log, [last](const nlohmann::json& r) {
          return r.contains("codes") && r["codes"].is_array() && r["codes"].size() == 2 &&
                 r["codes"][1].is_number_integer() && r["codes"][1].get<int64_t>() <= last;
        });
        if (n > 0) log_info("piad.jsonl: dropped ", n, " update record(s) made after the checkpoint");
        if (last > 0) piad::write_mask_table(table_path, super->table());
      }
      ctx.hooks.zero_grad_removed = true;
      ctx.hooks.on_epoch_start = [&, writer, piad_log, table_path](int64_t epoch) {
        const auto rec = super->update(epoch, *net, *train_set, comm.get());
        if (rec.is_null()) return;
        log_info("PIAD epoch ", epoch, ": +", rec["added_codes"].get<int64_t>(), " op codes (0..",
                 super->table().last_code(), "), smallest sub-network ",
                 models::macs_format(static_cast<int64_t>(rec["smallest_macs"].get<double>())), " (target removed ",
                 models::macs_format(static_cast<int64_t>(rec["target_macs_removed"].get<double>())), ")");
        if (writer) {
          piad::write_mask_table(table_path, super->table());
          append_line_synced(piad_log, rec.dump());
        }
      };
      ctx.hooks.step_subnets = [&](int64_t, int64_t, data::Rng& rng) { return super->step_subnets(rng); };
      ctx.hooks.manifest_extra = [&] { return super->manifest_entries(); };
    }
    const auto r = train::train(*net, *train_set, test_set.get(), run_cfg, ctx);
    if (env.rank == 0) {
      std::printf("trained %lld steps, last loss %.4f, %.1f images/s", static_cast<long long>(r.steps), r.last_loss,
                  r.images_per_s);
      if (r.eval_top1 >= 0) std::printf(", test top-1 %.2f%%", r.eval_top1);
      if (r.best_top1 >= 0) std::printf(" (best %.2f%%)", r.best_top1);
      std::printf("\n");
      const char* where = cfg.run_dir.empty() ? "<checkpoint> (no --run-dir: nothing was saved)" : cfg.run_dir.c_str();
      if (r.stop_signal) std::printf("stopped by signal %d; resume with --resume %s\n", r.stop_signal, where);
      if (r.stopped_at_max_steps) std::printf("stopped at --max-steps %lld; resume with --resume %s\n",
                                             static_cast<long long>(max_steps), where);
    }
    return r.stop_signal ? 128 + r.stop_signal : 0;
  });
}
