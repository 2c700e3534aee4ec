// The training recipe and run settings of skd-train as one struct with a strict JSON form.
// Keys are the long command-line flags with '_' for '-' (e.g. "batch_size" for --batch-size); the
// resolved config is written to the run directory and into every training checkpoint.
// Precedence: command-line flag > --config JSON > the checkpoint's config (--resume) > defaults.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "skd/dist/join.h"

namespace skd::train {

struct TrainConfig {
  // Model and data
  std::string model;  // start from these weights (artifact or checkpoint)
  std::string arch;   // named config or JSON (alone: from scratch)
  std::string data = "fashion-mnist";
  int64_t limit = 0;  // use only the first N training images (0 = all)
  bool eval = true;   // evaluate on the test/val split after every epoch
  int workers = 2;    // loader threads per process
  bool augment = true;  // training augmentation (image folders: DeiT's; Fashion-MNIST: pad-crop + flip)

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
  std::string amp = "none";   // none | bf16 | fp16 (CUDA only)
  std::string device = "cpu";
  uint64_t seed = 0;

  // Run directory and checkpoints
  std::string run_dir;        // config.json, metrics.jsonl, train.log, checkpoints ("" = none)
  std::string out;            // final model artifact ("" = <run_dir>/model.safetensors when run_dir is set)
  int keep_last = 2;          // epoch checkpoints kept (plus best.safetensors)
  int64_t log_every = 50;     // steps between progress lines when stderr is not a terminal (0 = off)
  // PIAD super-network training (mode "piad"; docs/algorithm.md §3): see skd/piad/piad.h.
  std::string mode = "train";              // train | piad
  int64_t piad_progressive_epochs = 50;    // Pe: mask-table updates before epochs 0 .. Pe-1
  double piad_budget_ratio = 0.875;        // r: MACs fraction removed by the end of the phase
  int64_t piad_attn_group = 8;             // head dims per attention unit
  int64_t piad_mlp_groups = 32;            // units per MLP (group = hidden / groups)
  int64_t piad_proxy_samples = 1024;       // proxy images per update
  int64_t piad_proxy_batch = 64;           // per process
  std::string piad_sensitivity = "loss";   // loss (paper eq. 13) | accuracy (official code)
  bool piad_sandwich = false;              // also train the full and the smallest network every step
  std::string dist_backend = "auto";  // auto | gloo | nccl
  double dist_timeout = dist::kDefaultTimeoutSeconds;  // seconds before a silent peer is declared dead
};

nlohmann::json config_to_json(const TrainConfig& config);
// Overlays the keys of `j` onto `base`. Unknown keys and wrong types are std::invalid_argument
// naming `source` and the key.
TrainConfig config_from_json(const nlohmann::json& j, const std::string& source, TrainConfig base = {});
// Range checks; std::invalid_argument naming the flag.
void validate(const TrainConfig& config);

}  // namespace skd::train
