// The training recipe and run settings of skd-train as one struct with a strict JSON form
// (skd/core/options.h: one visit() drives both directions and the enum names). Keys are the long
// command-line flags with '_' for '-' (e.g. "batch_size" for --batch-size); the resolved config is
// written to the run directory and into every training checkpoint. The PIAD options are piad's own
// struct (keys piad_*), the distributed backend distributed's enum, the precision core's.
// Precedence: command-line flag > --config JSON > the checkpoint's config (--resume) > defaults.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "skd/core/device.h"
#include "skd/data/preprocess.h"
#include "skd/distributed/communicator.h"
#include "skd/distributed/join.h"
#include "skd/piad/piad.h"

namespace skd::train {

// Plain training / fine-tuning, or PIAD super-network training (docs/algorithm.md §3).
enum class Mode { TRAIN, PIAD };
inline constexpr std::pair<const char*, Mode> kModeNames[] = {{"train", Mode::TRAIN}, {"piad", Mode::PIAD}};

struct TrainConfig {
  // Model and data
  std::string model;  // start from these weights (artifact or checkpoint)
  std::string arch;   // named config or JSON (alone: from scratch)
  std::string data = "fashion-mnist";
  int64_t limit = 0;  // use only the first N training images (0 = all)
  bool eval = true;   // evaluate on the test/val split after every epoch
  int workers = 2;    // loader threads per process
  bool augment = true;  // training augmentation (image folders: DeiT's; Fashion-MNIST: pad-crop + flip)
  // Over the model's preprocess entry (else the data's defaults): evaluation transform and normalization.
  data::PreprocessOverrides preprocess;

  // Recipe (DeiT defaults, docs/algorithm.md §3.7)
  int64_t epochs = 300;
  int64_t batch_size = 128;  // per process
  double lr = 5e-4;          // base LR; the peak is lr * global_batch / 512 unless unscale_lr
  bool unscale_lr = false;
  double min_lr = 1e-5;
  double warmup_epochs = 5;
  double warmup_lr = 1e-6;
  double weight_decay = 0.05;  // not on 1-D params, biases, cls_token, pos_embed, rel-pos tables
  double opt_eps = 1e-8;
  double beta1 = 0.9, beta2 = 0.999;
  double smoothing = 0.1;
  double mixup = 0.8;   // Beta alpha (0 = off)
  double cutmix = 1.0;  // Beta alpha (0 = off)
  double mixup_prob = 1.0;
  double mixup_switch_prob = 0.5;
  double drop_path = 0.1;
  double clip_grad = 0;  // max global grad norm (0 = off)
  bool model_ema = false;
  double model_ema_decay = 0.99996;
  bool repeated_aug = false;  // DeiT RASampler (3 repeats)
  Amp amp = Amp::NONE;        // none | bf16 | fp16 (CUDA only)
  std::string device = "cpu";
  uint64_t seed = 0;

  // Run directory and checkpoints
  std::string run_dir;        // config.json, metrics.jsonl, train.log, checkpoints ("" = none)
  std::string out;            // final model artifact ("" = <run_dir>/model.safetensors when run_dir is set)
  int keep_last = 2;          // epoch checkpoints kept (plus best.safetensors)
  int64_t log_every = 50;     // steps between progress lines when stderr is not a terminal (0 = off)
  // PIAD super-network training (mode piad; docs/algorithm.md §3): skd/piad/piad.h. Its keys are
  // piad_progressive_epochs (Pe), piad_budget_ratio (r), piad_attn_group, piad_mlp_groups,
  // piad_proxy_samples, piad_proxy_batch, piad_sensitivity, piad_sandwich; seed and device are the run's.
  Mode mode = Mode::TRAIN;
  piad::PiadOptions piad;
  distributed::Backend dist_backend = distributed::Backend::AUTO;
  double dist_timeout = distributed::kDefaultTimeoutSeconds;  // seconds before a silent peer is declared dead

  template <typename V>
  void visit(V&& v) {
    v("model", model, "start from these weights (artifact or checkpoint)");
    v("arch", arch, "architecture (named or JSON); alone: train from scratch");
    v("data", data, "'fashion-mnist', an IDX folder or an image folder (root/train, root/val)");
    v("limit", limit, "use only the first N training images");
    v("eval", eval, "evaluate on the test/val split after every epoch");
    v("workers", workers, "data loader threads per process");
    v("augment", augment, "training augmentation");
    preprocess.visit(v);
    v("epochs", epochs, "training epochs");
    v("batch_size", batch_size, "per process");
    v("lr", lr, "base LR; peak = lr * global batch / 512 unless --unscale-lr");
    v("unscale_lr", unscale_lr, "use --lr as the peak LR");
    v("min_lr", min_lr, "LR at the end of the cosine schedule");
    v("warmup_epochs", warmup_epochs, "linear warm-up epochs");
    v("warmup_lr", warmup_lr, "LR at the start of the warm-up");
    v("weight_decay", weight_decay, "AdamW weight decay (not on 1-D params, biases, cls_token, pos_embed)");
    v("opt_eps", opt_eps, "AdamW epsilon");
    v("beta1", beta1, "AdamW beta1");
    v("beta2", beta2, "AdamW beta2");
    v("smoothing", smoothing, "label smoothing");
    v("mixup", mixup, "mixup Beta alpha (0 = off)");
    v("cutmix", cutmix, "cutmix Beta alpha (0 = off)");
    v("mixup_prob", mixup_prob, "probability of mixup or cutmix per batch");
    v("mixup_switch_prob", mixup_switch_prob, "probability of cutmix instead of mixup");
    v("drop_path", drop_path, "stochastic depth rate (linear over blocks)");
    v("clip_grad", clip_grad, "max grad norm (0 = off)");
    v("model_ema", model_ema, "keep an EMA of the weights");
    v("model_ema_decay", model_ema_decay, "decay of the weights' EMA");
    v("repeated_aug", repeated_aug, "DeiT repeated augmentation");
    v("amp", amp, kAmpNames, "autocast (CUDA)");
    v("device", device, "cpu | cuda | cuda:N (distributed: cuda -> cuda:LOCAL_RANK)");
    v("seed", seed, "seed of the initialisation, the data order and the augmentation");
    v("run_dir", run_dir, "config.json, metrics.jsonl, train.log, checkpoints/");
    v("out", out, "final model artifact (default <run-dir>/model.safetensors)");
    v("keep_last", keep_last, "epoch checkpoints to keep (plus best)");
    v("log_every", log_every,
      "steps between progress lines off a terminal (0 = off); each ends with the interval's "
      "step-time breakdown (data wait, forward, backward, optimizer incl. clipping and EMA, "
      "gradient all-reduce wait, rest: mean step ms and shares), the epoch line and "
      "metrics.jsonl ('step_time') with the epoch's; host clock on the CPU, CUDA events on a GPU");
    v("mode", mode, kModeNames, "plain training / fine-tuning (train) or super-network training (piad)");
    piad.visit(v);
    v("dist_backend", dist_backend, distributed::kBackendNames, "the process group of a multi-process job");
    v("dist_timeout", dist_timeout, "seconds before a silent peer counts as dead");
  }
};

// options::to_json / options::from_json of a TrainConfig.
nlohmann::json config_to_json(const TrainConfig& config);
// Overlays the keys of `j` onto `base`. Unknown keys, wrong types and unknown enum names are
// std::invalid_argument naming `source` and the key.
TrainConfig config_from_json(const nlohmann::json& j, const std::string& source, TrainConfig base = {});
// Range checks; skd::ParameterError naming the key.
void validate(const TrainConfig& config);

}  // namespace skd::train
