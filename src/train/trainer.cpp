#include "skd/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "skd/core/device.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/core/logging.h"
#include "skd/data/loader.h"
#include "skd/data/mixup.h"
#include "skd/data/sampler.h"
#include "skd/dist/communicator.h"
#include "skd/eval/evaluate.h"
#include "skd/models/checkpoint.h"
#include "skd/train/checkpointing.h"
#include "skd/train/optim.h"
#include "skd/train/signals.h"

namespace skd::train {

uint64_t step_seed(uint64_t seed, int64_t epoch, int64_t step, int rank) {
  // Reuses the loader's mixing function on (seed, epoch, step) with the rank folded into the seed.
  return data::example_seed(seed ^ (0xd1b54a32d192ed03ULL * static_cast<uint64_t>(rank + 1)), epoch, step);
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Every world-th example of a dataset from position rank (evaluation shards; no padding, so the
// shards together hold each example exactly once).
class Shard : public data::Dataset {
 public:
  Shard(const data::Dataset& base, int rank, int world) : base_(base) {
    for (int64_t i = rank; i < base.size(); i += world) index_.push_back(i);
  }
  int64_t size() const override { return static_cast<int64_t>(index_.size()); }
  int64_t num_classes() const override { return base_.num_classes(); }
  data::Sample get(int64_t i, data::Rng* rng) const override { return base_.get(index_.at(i), rng); }
  data::Batch get_batch(const std::vector<int64_t>& idx) const override {
    std::vector<int64_t> mapped;
    mapped.reserve(idx.size());
    for (auto i : idx) mapped.push_back(index_.at(i));
    return base_.get_batch(mapped);
  }
  std::string describe() const override { return base_.describe(); }
  std::string path(int64_t i) const override { return base_.path(index_.at(i)); }

 private:
  const data::Dataset& base_;
  std::vector<int64_t> index_;
};

// Progress on a terminal (one rewritten line), or a log line every `every` steps otherwise.
class Progress {
 public:
  Progress(int64_t total_steps, int64_t images_per_step, int64_t every, bool enabled)
      : total_(total_steps), per_step_(images_per_step), every_(every), enabled_(enabled),
        tty_(enabled && isatty(fileno(stderr))) {}
  void step(int64_t epoch, int64_t epochs, int64_t step, int64_t steps, int64_t done, double loss, double lr) {
    if (!enabled_) return;
    ++since_start_;
    const double el = seconds_since(start_);
    const double rate = since_start_ * per_step_ / std::max(el, 1e-9);
    const double eta = (total_ - done) * per_step_ / std::max(rate, 1e-9);
    if (tty_) {
      if (seconds_since(last_) < 0.2 && step != steps) return;
      last_ = Clock::now();
      std::fprintf(stderr, "\repoch %lld/%lld step %lld/%lld  loss %.4f  lr %.3g  %.0f img/s  ETA %s   ",
                   static_cast<long long>(epoch + 1), static_cast<long long>(epochs), static_cast<long long>(step),
                   static_cast<long long>(steps), loss, lr, rate, format_eta(eta).c_str());
      if (step == steps) std::fprintf(stderr, "\n");
    } else if (every_ > 0 && (step % every_ == 0 || step == steps)) {
      log_info("epoch ", epoch + 1, "/", epochs, " step ", step, "/", steps, " loss ", loss, " lr ", lr, " | ",
               static_cast<int64_t>(rate), " img/s, ETA ", format_eta(eta));
    }
  }

 private:
  static std::string format_eta(double s) {
    const int64_t t = static_cast<int64_t>(s);
    char buf[32];
    if (t >= 3600)
      std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(t / 3600),
                    static_cast<long long>(t / 60 % 60));
    else
      std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
    return buf;
  }
  int64_t total_, per_step_, every_;
  bool enabled_, tty_;
  int64_t since_start_ = 0;
  Clock::time_point start_ = Clock::now(), last_ = Clock::now() - std::chrono::seconds(1);
};

NamedTensors named_params(models::ElasticModelImpl& model) {
  NamedTensors out;
  for (auto& p : model.named_parameters(true)) out.emplace_back(p.key(), p.value());
  return out;
}

NamedTensors named_state(models::ElasticModelImpl& model) {
  NamedTensors out = named_params(model);
  for (auto& b : model.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

std::map<std::string, torch::Tensor> to_map(const NamedTensors& v) {
  std::map<std::string, torch::Tensor> m;
  for (const auto& [k, t] : v) m[k] = t;
  return m;
}

// All ranks agree on one list of values (sum).
std::vector<double> all_reduce_sum(dist::Communicator* comm, std::vector<double> values) {
  if (!comm || comm->world_size() == 1) return values;
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kFloat64)};
  comm->all_reduce_sum(t);
  auto c = t[0].contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

TrainResult train(models::ElasticModelImpl& model, const data::Dataset& train_set, const data::Dataset* eval_set,
                  const TrainConfig& cfg, const TrainContext& ctx) {
  validate(cfg);
  dist::Communicator* comm = ctx.comm.get();
  const int rank = comm ? comm->rank() : 0;
  const int world = comm ? comm->world_size() : 1;
  const bool main = rank == 0;
  const torch::Device device = ctx.device ? *ctx.device : parse_device(cfg.device);
  const Amp amp = parse_amp(cfg.amp, device);
  const int64_t B = cfg.batch_size;
  const int64_t global_batch = B * world;
  const double peak = cfg.unscale_lr ? cfg.lr : cfg.lr * static_cast<double>(global_batch) / 512.0;
  const int64_t n = cfg.limit > 0 ? std::min(cfg.limit, train_set.size()) : train_set.size();
  const int64_t num_classes = train_set.num_classes();
  if (model.config().num_classes != num_classes)
    throw std::invalid_argument(cat("the model has ", model.config().num_classes, " classes but the training data '",
                                    cfg.data, "' has ", num_classes, "; use an --arch with num_classes ",
                                    num_classes));

  data::RepeatedAugOptions ra;
  if (n < 256 * 3) ra.round_down_to = 0;
  auto rank_indices = [&](int64_t epoch) {
    return cfg.repeated_aug ? data::repeated_aug_indices(n, rank, world, epoch, cfg.seed, ra)
                            : data::distributed_indices(n, rank, world, epoch, cfg.seed);
  };
  const int64_t per_rank = cfg.repeated_aug ? data::repeated_aug_length(n, world, ra) : data::distributed_length(n, world);
  const int64_t steps_per_epoch = per_rank / B;  // drop_last
  if (steps_per_epoch == 0)
    throw std::invalid_argument(cat("--batch-size ", B, ": each of the ", world, " process(es) gets ", per_rank,
                                    " training images per epoch, less than one batch"));

  model.to(device);
  model.train();
  const NamedTensors params = named_params(model);
  const NamedTensors state_tensors = named_state(model);  // the same tensors all run (updates are in place)
  std::vector<torch::Tensor> param_list;
  for (const auto& [k, p] : params) param_list.push_back(p);
  // Gradient averaging overlapped with backward (hooks on the parameters, removed when train returns).
  struct HookScope {
    dist::Communicator* comm;
    ~HookScope() {
      if (comm) comm->detach_gradient_hooks();
    }
  } hook_scope{comm && world > 1 ? comm : nullptr};
  if (hook_scope.comm) hook_scope.comm->attach_gradient_hooks(param_list);
  AdamW opt(params, AdamWConfig{cfg.beta1, cfg.beta2, cfg.opt_eps, cfg.weight_decay});
  GradScaler scaler(amp == Amp::FP16);
  std::unique_ptr<ModelEma> ema;
  if (cfg.model_ema) ema = std::make_unique<ModelEma>(state_tensors, cfg.model_ema_decay);
  LrSchedule sched{peak, cfg.min_lr, cfg.warmup_lr, cfg.warmup_epochs, cfg.epochs};
  const bool mixing = cfg.mixup > 0 || cfg.cutmix > 0;
  data::MixupConfig mix;
  mix.mixup_alpha = cfg.mixup;
  mix.cutmix_alpha = cfg.cutmix;
  mix.prob = cfg.mixup_prob;
  mix.switch_prob = cfg.mixup_switch_prob;
  mix.label_smoothing = cfg.smoothing;
  mix.num_classes = num_classes;
  if (mixing) data::validate(mix);

  TrainProgress progress;
  progress.world_size = world;
  progress.global_batch = global_batch;
  if (!ctx.resume.empty()) {
    const TrainingState st = read_training_state(ctx.resume);
    models::load_state_dict(model, st.model, ctx.resume);
    opt.load_state(st.optimizer, ctx.resume);
    if (ema) {
      if (st.ema.empty()) log_warn(ctx.resume, " has no EMA state; the EMA restarts from the current weights");
      else ema->load(st.ema, ctx.resume);
    }
    scaler.set_state(st.scaler_scale, st.scaler_growth_tracker);
    if (st.progress.world_size != world || st.progress.global_batch != global_batch)
      log_warn("resuming a run made with ", st.progress.world_size, " process(es) and global batch ",
               st.progress.global_batch, " with ", world, " and ", global_batch,
               ": the data order differs from an uninterrupted run");
    progress = st.progress;
    progress.world_size = world;
    progress.global_batch = global_batch;
    if (progress.step_in_epoch >= steps_per_epoch) {
      progress.epoch += 1;
      progress.step_in_epoch = 0;
    }
    log_info("resumed from ", ctx.resume, " at epoch ", progress.epoch, " step ", progress.step_in_epoch,
             " (global step ", progress.global_step, ")");
  }
  if (comm && world > 1) {  // every rank starts from rank 0's weights
    std::vector<torch::Tensor> state;
    for (const auto& [k, t] : state_tensors) state.push_back(t.detach());
    comm->broadcast(state, 0);
  }

  std::unique_ptr<RunDir> run;
  if (main && !cfg.run_dir.empty()) {
    run = std::make_unique<RunDir>(cfg.run_dir);
    const std::string text = config_to_json(cfg).dump(2) + "\n";
    write_file_atomic(run->config_path(), text);
    if (!ctx.resume.empty()) {  // epochs finished after the checkpoint are trained again: their records go
      const int64_t done = progress.epoch;
      const int64_t n = trim_jsonl(run->metrics_path(), [done](const nlohmann::json& r) {
        return r.value("epoch", int64_t{0}) <= done;
      });
      if (n > 0) log_info("metrics.jsonl: dropped ", n, " record(s) written after the checkpoint");
    }
  }
  nlohmann::json prov = ctx.provenance.is_object() ? ctx.provenance : nlohmann::json::object();
  prov["trained_by"] = "skd-train";
  prov["train_data"] = train_set.describe();

  auto make_state = [&]() {
    TrainingState st;
    st.progress = progress;
    st.config = config_to_json(cfg);
    st.optimizer = opt.state();
    if (ema) st.ema = to_map(ema->values());
    st.scaler_scale = scaler.scale();
    st.scaler_growth_tracker = scaler.growth_tracker();
    return st;
  };
  auto manifest_extra = [&]() {
    return ctx.hooks.manifest_extra ? ctx.hooks.manifest_extra() : nlohmann::json::object();
  };
  TrainResult result;
  auto save_checkpoint = [&](bool is_best) {
    if (main && run) {
      nlohmann::json p = prov;
      p["epochs_completed"] = progress.epoch;
      result.last_checkpoint = run->save(serialize_training_checkpoint(model, p, make_state(), manifest_extra()),
                                         progress, is_best, cfg.keep_last);
      log_info("checkpoint ", result.last_checkpoint);
    }
    if (comm && world > 1) comm->barrier();
  };

  models::ForwardOptions fwd;
  fwd.drop_path = cfg.drop_path;
  fwd.zero_grad_removed = ctx.hooks.zero_grad_removed;
  const int64_t total_steps = steps_per_epoch * cfg.epochs;
  Progress bar(total_steps, global_batch, cfg.log_every, main);
  torch::nn::functional::CrossEntropyFuncOptions ce_opts;
  ce_opts.label_smoothing(cfg.smoothing);

  // Host synchronisation. On the CPU the step's loss is read every step (free there), so a non-finite
  // loss stops the run before that step's update and a stop request acts after the step it came in.
  // On a CUDA device the losses stay on the device and are read every --log-every steps (50 when 0),
  // at the end of an epoch and before a --max-steps stop: a non-finite loss then stops the run at the
  // next read, naming the first step it appeared in (the last good checkpoint is untouched), and in a
  // multi-process run a stop request is agreed on at the next read. A single process acts on a signal
  // after the current step, as on the CPU.
  const int64_t sync_every = device.is_cuda() ? (cfg.log_every > 0 ? cfg.log_every : 50) : 1;
  struct PendingLoss {
    torch::Tensor loss;
    int64_t step;
    double lr;
  };
  std::vector<PendingLoss> pending;
  double loss_sum = 0;
  int64_t loss_count = 0;
  // Reads the pending losses, all ranks agreeing on them and on a stop request (one small all-reduce);
  // throws on a non-finite loss (unless fp16 loss scaling handles overflow); returns the stop request.
  auto flush_losses = [&](int64_t epoch) {
    std::vector<torch::Tensor> dev;
    for (const auto& p : pending) dev.push_back(p.loss.to(torch::kFloat64).reshape({1}));
    std::vector<double> values;
    if (!dev.empty()) {
      const auto host = torch::cat(dev).cpu();
      values.assign(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
    }
    values.push_back(static_cast<double>(stop_signal()));
    const auto agreed = all_reduce_sum(comm, values);
    const int64_t global_first = progress.global_step - static_cast<int64_t>(pending.size()) + 1;
    for (size_t i = 0; i < pending.size(); ++i) {
      const double lv = agreed[i] / world;
      const int64_t step = pending[i].step;
      if (!std::isfinite(lv) && !scaler.enabled())
        throw std::runtime_error(cat("loss is ", lv, " at epoch ", epoch + 1, " step ", step + 1, " (global step ",
                                     global_first + static_cast<int64_t>(i) + 1, "); stopping. Lower --lr, set "
                                     "--clip-grad, or check the data. ",
                                     result.last_checkpoint.empty() ? std::string("No checkpoint was written.")
                                                                    : "Last good checkpoint: " + result.last_checkpoint));
      if (std::isfinite(lv)) {
        loss_sum += lv;
        ++loss_count;
      }
      result.last_loss = lv;
      bar.step(epoch, cfg.epochs, step + 1, steps_per_epoch, epoch * steps_per_epoch + step + 1, lv, pending[i].lr);
    }
    pending.clear();
    return agreed.back() > 0;
  };

  for (int64_t epoch = progress.epoch; epoch < cfg.epochs; ++epoch) {
    if (ctx.hooks.on_epoch_start) ctx.hooks.on_epoch_start(epoch);
    model.train();
    const auto epoch_start = Clock::now();
    const int64_t first = epoch == progress.epoch ? progress.step_in_epoch : 0;
    auto indices = rank_indices(epoch);
    indices.resize(static_cast<size_t>(steps_per_epoch * B));
    std::vector<int64_t> order(indices.begin() + first * B, indices.end());
    data::LoaderOptions lo;
    lo.batch_size = B;
    lo.workers = cfg.workers;
    lo.augment = cfg.augment;
    lo.seed = cfg.seed;
    lo.epoch = epoch;
    lo.pin_memory = device.is_cuda();
    data::Loader loader(train_set, std::move(order), lo);
    loss_sum = 0;
    loss_count = 0;
    data::LoadedBatch batch;
    for (int64_t step = first; step < steps_per_epoch; ++step) {
      if (!loader.next(batch)) throw std::runtime_error(cat("data loader ended early at step ", step));
      const uint64_t s = step_seed(cfg.seed, epoch, step, rank);
      torch::manual_seed(s);
      data::Rng rng(s);
      const double lr = sched.at(epoch + static_cast<double>(step) / steps_per_epoch);
      std::vector<const models::Widths*> subnets;
      if (ctx.hooks.step_subnets) {
        data::Rng shared(step_seed(cfg.seed, epoch, step, 0));
        subnets = ctx.hooks.step_subnets(epoch, step, shared);
      }
      if (subnets.empty()) subnets.push_back(nullptr);
      torch::Tensor images = batch.images, labels = batch.labels, targets;
      if (images.size(0) == 0) throw std::runtime_error(cat("epoch ", epoch, " step ", step, ": no readable image"));
      if (mixing) {
        if (images.size(0) % 2 != 0) {  // a skipped bad image left an odd batch
          images = images.narrow(0, 0, images.size(0) - 1);
          labels = labels.narrow(0, 0, labels.size(0) - 1);
        }
        targets = data::mixup_batch(images, labels, mix, rng).targets;
      }
      images = images.to(device, true);
      if (mixing) targets = targets.to(device);
      labels = labels.to(device);
      // Every sub-network of the step sees the same batch; the mean of their losses is what is
      // differentiated (one backward each, so only one graph is alive at a time). The loss stays on the
      // device until the next host synchronisation (see sync_every).
      torch::Tensor step_loss;
      const double share = 1.0 / static_cast<double>(subnets.size());
      for (size_t si = 0; si < subnets.size(); ++si) {
        const models::Widths* w = subnets[si];
        fwd.widths = w;
        // The gradient average runs bucket by bucket during the step's last backward.
        if (comm && world > 1 && si + 1 == subnets.size()) comm->arm_gradient_hooks();
        torch::Tensor loss;
        {
          AutocastGuard autocast(amp);
          auto logits = model.forward(images, fwd).to(torch::kFloat32);
          loss = mixing ? data::soft_target_cross_entropy(logits, targets)
                        : torch::nn::functional::cross_entropy(logits, labels, ce_opts);
        }
        if (subnets.size() > 1) loss = loss * share;
        step_loss = step_loss.defined() ? step_loss + loss.detach() : loss.detach();
        scaler.scale_loss(loss).backward();
      }
      fwd.widths = nullptr;
      pending.push_back({step_loss, step, lr});
      // Read the losses (and agree on a stop request) now when the interval is full, at the end of the
      // epoch, before a --max-steps stop, or when a single process was asked to stop; a non-finite loss
      // then stops the run before this step's update.
      // Whether this step reaches --max-steps (global_step counts it below).
      const bool at_max = ctx.max_steps > 0 && progress.global_step + 1 >= ctx.max_steps;
      bool stop_agreed = false;
      if (static_cast<int64_t>(pending.size()) >= sync_every || step + 1 == steps_per_epoch || at_max ||
          (world == 1 && stop_signal() != 0))
        stop_agreed = flush_losses(epoch);
      if (comm && world > 1) comm->finish_gradient_average();
      const bool found_inf = scaler.enabled() ? scaler.unscale_and_check(params) : false;
      if (!found_inf) {
        if (cfg.clip_grad > 0) clip_grad_norm(params, cfg.clip_grad);
        opt.step(lr);
        if (ema) ema->update(state_tensors);
      } else {
        ++result.skipped_steps;
        log_warn("fp16 overflow at global step ", progress.global_step + 1, ": step skipped, loss scale ",
                 scaler.scale(), " -> ", scaler.scale() * 0.5);
      }
      scaler.update(found_inf);
      opt.zero_grad();
      ++result.steps;
      ++progress.global_step;
      progress.step_in_epoch = step + 1;
      const int sig = static_cast<int>(stop_agreed ? (stop_signal() ? stop_signal() : SIGTERM) : 0);
      if ((sig != 0 || at_max) && step + 1 < steps_per_epoch) {
        if (sig != 0)
          log_warn("signal ", sig, " received: writing a checkpoint at epoch ", epoch + 1, " step ", step + 1);
        else
          log_info("reached --max-steps ", ctx.max_steps, ": writing a checkpoint at epoch ", epoch + 1, " step ",
                   step + 1);
        save_checkpoint(false);
        result.stop_signal = sig;
        result.stopped_at_max_steps = at_max;
        result.best_top1 = progress.best_top1;
        return result;
      }
    }
    progress.epoch = epoch + 1;
    progress.step_in_epoch = 0;
    const double secs = seconds_since(epoch_start);
    const auto train_stats = all_reduce_sum(comm, {loss_sum, static_cast<double>(loss_count)});
    nlohmann::json rec = {{"epoch", epoch + 1},
                          {"global_step", progress.global_step},
                          {"train_loss", train_stats[1] > 0 ? train_stats[0] / train_stats[1] : NAN},
                          {"lr", sched.at(epoch + 1.0 - 1e-9)},
                          {"images_per_s", (steps_per_epoch - first) * global_batch / secs},
                          {"epoch_seconds", secs},
                          {"skipped_steps", result.skipped_steps}};
    result.images_per_s = rec["images_per_s"];
    bool is_best = false;
    if (eval_set && cfg.eval) {
      Shard shard(*eval_set, rank, world);
      eval::EvalOptions eo;
      eo.batch_size = std::max<int64_t>(B, 256);
      eo.workers = cfg.workers;
      eo.device = device;
      eo.amp = amp;
      const auto r = eval::evaluate(model, shard, eo);
      const auto tot = all_reduce_sum(comm, {r.top1 * r.images / 100.0, r.top5 * r.images / 100.0,
                                             r.loss * r.images, static_cast<double>(r.images)});
      const double top1 = 100.0 * tot[0] / tot[3], top5 = 100.0 * tot[1] / tot[3];
      rec["top1"] = top1;
      rec["top5"] = top5;
      rec["eval_loss"] = tot[2] / tot[3];
      result.eval_top1 = top1;
      if (top1 > progress.best_top1) {
        progress.best_top1 = top1;
        progress.best_epoch = epoch + 1;
        is_best = true;
      }
      rec["best_top1"] = progress.best_top1;
      log_info("epoch ", epoch + 1, "/", cfg.epochs, ": train loss ", rec["train_loss"].get<double>(), ", top-1 ",
               top1, "%, top-5 ", top5, "% (best ", progress.best_top1, "% at epoch ", progress.best_epoch, "), ",
               static_cast<int64_t>(result.images_per_s), " img/s, ", secs, " s");
      model.train();
    } else {
      log_info("epoch ", epoch + 1, "/", cfg.epochs, ": train loss ", rec["train_loss"].get<double>(), ", ",
               static_cast<int64_t>(result.images_per_s), " img/s, ", secs, " s");
    }
    if (main && run) run->append_metrics(rec);
    save_checkpoint(is_best);
    const int sig = static_cast<int>(all_reduce_sum(comm, {static_cast<double>(stop_signal())})[0] > 0 ? SIGTERM : 0);
    const bool at_max = ctx.max_steps > 0 && progress.global_step >= ctx.max_steps;
    if ((sig != 0 || at_max) && epoch + 1 < cfg.epochs) {
      if (sig != 0) {
        result.stop_signal = stop_signal() ? stop_signal() : sig;
        log_warn("signal ", result.stop_signal, " received: stopping after epoch ", epoch + 1);
      } else {
        result.stopped_at_max_steps = true;
        log_info("reached --max-steps ", ctx.max_steps, ": stopping after epoch ", epoch + 1);
      }
      result.best_top1 = progress.best_top1;
      return result;
    }
  }
  result.best_top1 = progress.best_top1;
  if (main) {
    std::string out = cfg.out;
    if (out.empty() && run) out = run->root() + "/model.safetensors";
    if (!out.empty()) {
      nlohmann::json p = prov;
      p["epochs"] = cfg.epochs;
      p["global_batch"] = global_batch;
      p["seed"] = cfg.seed;
      if (result.eval_top1 >= 0) p["eval_top1"] = result.eval_top1;
      models::save_artifact(out, model, p, manifest_extra());
      result.artifact = out;
      log_info("wrote ", out);
      if (ema && run) {
        const NamedTensors& live = state_tensors;
        std::vector<torch::Tensor> saved;
        for (const auto& [k, t] : live) saved.push_back(t.detach().clone());
        ema->copy_to(live);
        p["weights"] = "ema";
        models::save_artifact(run->root() + "/model_ema.safetensors", model, p, manifest_extra());
        torch::NoGradGuard ng;
        for (size_t i = 0; i < live.size(); ++i) live[i].second.copy_(saved[i]);
      }
    }
  }
  if (comm && world > 1) comm->barrier();
  return result;
}

}  // namespace skd::train
