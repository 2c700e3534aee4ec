#include "skd/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "skd/core/device.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/core/logging.h"
#include "skd/core/progress.h"
#include "skd/data/loader.h"
#include "skd/data/mixup.h"
#include "skd/data/sampler.h"
#include "skd/distributed/communicator.h"
#include "skd/eval/evaluate.h"
#include "skd/models/checkpoint.h"
#include "skd/train/checkpointing.h"
#include "skd/train/optim.h"
#include "skd/train/signals.h"
#include "skd/train/step_timer.h"

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

// Progress on a terminal (one rewritten skd::ProgressLine), or a log line every `every` steps otherwise.
class StepProgress : public TrainObserver {
 public:
  // `interval` gives the step-time breakdown since the previous log line (StepBreakdown::line).
  StepProgress(int64_t epochs, int64_t steps_per_epoch, int64_t images_per_step, int64_t every, bool enabled,
               std::function<std::string()> interval)
      : interval_(std::move(interval)),
        epochs_(epochs),
        steps_(steps_per_epoch),
        total_(steps_per_epoch * epochs),
        per_step_(images_per_step),
        every_(every),
        enabled_(enabled),
        line_(enabled) {}
  void on_step_loss(int64_t epoch, int64_t step_index, double loss, double lr) override {
    if (!enabled_) return;
    const int64_t step = step_index + 1, done = epoch * steps_ + step;
    ++since_start_;
    const double el = line_.seconds();
    const double rate = since_start_ * per_step_ / std::max(el, 1e-9);
    const double eta = (total_ - done) * per_step_ / std::max(rate, 1e-9);
    if (line_.drawing()) {
      if (seconds_since(last_) < 0.2 && step != steps_) return;
      last_ = Clock::now();
      char buf[256];
      std::snprintf(
          buf, sizeof buf, "epoch %lld/%lld step %lld/%lld  loss %.4f  lr %.3g  %.0f img/s  ETA %s   ",
          static_cast<long long>(epoch + 1), static_cast<long long>(epochs_), static_cast<long long>(step),
          static_cast<long long>(steps_), loss, lr, rate, format_eta(eta).c_str());
      line_.draw(buf);
      if (step == steps_) line_.finish();
    } else if (every_ > 0 && (step % every_ == 0 || step == steps_)) {
      log_info("epoch ", epoch + 1, "/", epochs_, " step ", step, "/", steps_, " loss ", loss, " lr ", lr,
               " | ", static_cast<int64_t>(rate), " img/s, ETA ", format_eta(eta), " | ", interval_());
    }
  }

 private:
  std::function<std::string()> interval_;
  int64_t epochs_, steps_, total_, per_step_, every_;
  bool enabled_;
  ProgressLine line_;
  int64_t since_start_ = 0;
  Clock::time_point last_ = Clock::now() - std::chrono::seconds(1);
};

// metrics.jsonl of the run directory (rank 0; null run: nothing is written).
class MetricsLog : public TrainObserver {
 public:
  explicit MetricsLog(const RunDir* run) : run_(run) {}
  // A resumed run trains the epochs after its checkpoint again: their records go.
  void drop_after(int64_t epochs_done) const {
    if (!run_) return;
    const int64_t n = trim_jsonl(run_->metrics_path(), [epochs_done](const nlohmann::json& r) {
      return r.value("epoch", int64_t{0}) <= epochs_done;
    });
    if (n > 0) log_info("metrics.jsonl: dropped ", n, " record(s) written after the checkpoint");
  }
  void on_epoch_end(const nlohmann::json& record) override {
    if (run_) run_->append_metrics(record);
  }

 private:
  const RunDir* run_;
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
std::vector<double> all_reduce_sum(distributed::Communicator* comm, std::vector<double> values) {
  if (!comm || comm->world_size() == 1) return values;
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kFloat64)};
  comm->all_reduce_sum(t);
  auto c = t[0].contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// The stop signal the ranks agreed on: this process's own, or SIGTERM for a peer's.
int agreed_signal(bool agreed) { return agreed ? (stop_signal() ? stop_signal() : SIGTERM) : 0; }

// One training run, in phases: setup and resume (constructor), epochs of steps (run_epoch,
// train_step), evaluation and the epoch record (end_epoch, evaluate), the checkpoint-and-stop
// policy (save_checkpoint, stop_here) and the final artifacts (export_artifacts).
class Trainer {
 public:
  Trainer(models::ElasticModelImpl& model, const data::Dataset& train_set, const data::Dataset* eval_set,
          const TrainConfig& cfg, const TrainContext& ctx);
  TrainResult run();

 private:
  void setup_data();
  void setup_optimization();
  void resume();
  void open_run_dir();
  bool run_epoch(int64_t epoch);
  bool train_step(int64_t epoch, int64_t step, const data::LoadedBatch& batch);
  std::vector<const models::Widths*> step_subnets(int64_t epoch, int64_t step);
  torch::Tensor forward_backward(const std::vector<const models::Widths*>& subnets,
                                 const std::vector<Teacher>& teachers, const torch::Tensor& images,
                                 const torch::Tensor& labels, const torch::Tensor& targets);
  torch::Tensor teacher_logits(const Teacher& teacher, const std::vector<torch::Tensor>& step_logits,
                               const torch::Tensor& images, torch::Tensor& frozen);
  void optimizer_step(double lr);
  bool read_losses(int64_t epoch);
  bool end_epoch(int64_t epoch, int64_t first, double secs);
  bool evaluate(int64_t epoch, nlohmann::json& rec);
  void save_checkpoint(bool is_best);
  bool stop_here(int64_t epoch, int64_t step, bool epoch_end, int sig, bool at_max);
  void export_artifacts();
  nlohmann::json manifest_extra() const;
  bool multi() const { return comm_ && world_ > 1; }
  bool at_max_steps(int64_t global_step) const { return ctx_.max_steps > 0 && global_step >= ctx_.max_steps; }

  models::ElasticModelImpl& model_;
  const data::Dataset& train_set_;
  const data::Dataset* eval_set_;
  const TrainConfig& cfg_;
  const TrainContext& ctx_;
  distributed::Communicator* comm_;
  Distiller* distiller_;
  int rank_, world_;
  bool main_;
  torch::Device device_;
  Amp amp_;
  int64_t global_batch_;
  int64_t examples_ = 0;  // training examples used (--limit)
  int64_t steps_per_epoch_ = 0;
  data::RepeatedAugOptions ra_;
  NamedTensors params_, state_tensors_;  // the same tensors all run (updates are in place)
  // Gradient averaging hooks on the parameters, removed with the trainer (also when setup throws).
  struct GradientHooks {
    distributed::Communicator* comm = nullptr;
    ~GradientHooks() {
      if (comm) comm->detach_gradient_hooks();
    }
  } gradient_hooks_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<GradScaler> scaler_;
  std::unique_ptr<ModelEma> ema_;
  LrSchedule sched_;
  bool mixing_ = false;
  data::MixupConfig mix_;
  TrainProgress progress_;
  std::unique_ptr<RunDir> run_;
  nlohmann::json prov_;
  TrainResult result_;
  models::ForwardOptions fwd_;
  torch::nn::functional::CrossEntropyFuncOptions ce_opts_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<StepProgress> bar_;
  std::vector<TrainObserver*> observers_;  // the context's, then metrics and progress
  // Host synchronisation. On the CPU the step's loss is read every step (free there), so a non-finite
  // loss stops the run before that step's update and a stop request acts after the step it came in.
  // On a CUDA device the losses stay on the device and are read every --log-every steps (50 when 0),
  // at the end of an epoch and before a --max-steps stop: a non-finite loss then stops the run at the
  // next read, naming the first step it appeared in (the last good checkpoint is untouched), and in a
  // multi-process run a stop request is agreed on at the next read. A single process acts on a signal
  // after the current step, as on the CPU.
  int64_t sync_every_ = 1;
  struct PendingLoss {
    torch::Tensor loss;
    int64_t step;
    double lr;
  };
  std::vector<PendingLoss> pending_;
  // Where the steps' time goes (issue 28): the current log interval, and the epoch's intervals so far.
  StepTimer timer_;
  StepBreakdown epoch_time_;
  double loss_sum_ = 0;
  int64_t loss_count_ = 0;
  int64_t bad_images_ = 0;         // unreadable training images skipped in this epoch (this rank)
  std::string bad_example_;        // one of them
};

Trainer::Trainer(models::ElasticModelImpl& model, const data::Dataset& train_set, const data::Dataset* eval_set,
                 const TrainConfig& cfg, const TrainContext& ctx)
    : model_(model), train_set_(train_set), eval_set_(eval_set), cfg_(cfg), ctx_(ctx), comm_(ctx.comm.get()),
      distiller_(ctx.distiller), rank_(comm_ ? comm_->rank() : 0), world_(comm_ ? comm_->world_size() : 1),
      main_(rank_ == 0), device_(ctx.device ? *ctx.device : parse_device(cfg.device)), amp_(cfg.amp),
      global_batch_(cfg.batch_size * world_) {
  check_amp_device(amp_, device_);
  setup_data();
  setup_optimization();
  if (distiller_) distiller_->to(device_);
  progress_.world_size = world_;
  progress_.global_batch = global_batch_;
  if (!ctx_.resume.empty()) resume();
  if (multi()) {  // every rank starts from rank 0's weights
    std::vector<torch::Tensor> state;
    for (const auto& [k, t] : state_tensors_) state.push_back(t.detach());
    comm_->broadcast(state, 0);
  }
  open_run_dir();
  prov_ = ctx_.provenance.is_object() ? ctx_.provenance : nlohmann::json::object();
  prov_["trained_by"] = "skd-train";
  prov_["train_data"] = train_set_.describe();
  fwd_.drop_path = cfg_.drop_path;
  observers_ = ctx_.observers;
  for (const auto* o : observers_) fwd_.zero_grad_removed = fwd_.zero_grad_removed || o->zero_grad_removed();
  bar_ = std::make_unique<StepProgress>(cfg_.epochs, steps_per_epoch_, global_batch_, cfg_.log_every, main_,
                                        [this] {
                                          const StepBreakdown b = timer_.take();
                                          epoch_time_ += b;
                                          return b.line();
                                        });
  observers_.push_back(metrics_.get());
  observers_.push_back(bar_.get());
  ce_opts_.label_smoothing(cfg_.smoothing);
  sync_every_ = device_.is_cuda() ? (cfg_.log_every > 0 ? cfg_.log_every : 50) : 1;
  // On CUDA the step-time breakdown reads CUDA events (no host synchronisation of its own).
  if (device_.is_cuda() && !timer_.use_cuda_events(device_.index()))
    log_debug("step-time breakdown: this LibTorch has no CUDA event timing (< 2.4); host clock");
}

// The class count check and the epoch's length on this rank.
void Trainer::setup_data() {
  examples_ = cfg_.limit > 0 ? std::min(cfg_.limit, train_set_.size()) : train_set_.size();
  const int64_t num_classes = train_set_.num_classes();
  if (model_.config().num_classes != num_classes)
    throw ParameterError(
        [=, model_classes = model_.config().num_classes, data = cfg_.data](const KeyNamer& name) {
          return cat("the model has ", model_classes, " classes but the training data '", data, "' has ",
                     num_classes, "; use an ", name("arch"), " with num_classes ", num_classes);
        });
  if (examples_ < 256 * 3) ra_.round_down_to = 0;
  const int64_t per_rank = cfg_.repeated_aug ? data::repeated_aug_length(examples_, world_, ra_)
                                             : data::distributed_length(examples_, world_);
  steps_per_epoch_ = per_rank / cfg_.batch_size;  // drop_last
  if (steps_per_epoch_ == 0)
    throw ParameterError("batch_size",
                         cat(" ", cfg_.batch_size, ": each of the ", world_, " process(es) gets ", per_rank,
                             " training images per epoch, less than one batch"));
}

// Model on the device, gradient averaging, AdamW, loss scaler, EMA, LR schedule and Mixup/CutMix.
void Trainer::setup_optimization() {
  model_.to(device_);
  model_.train();
  params_ = named_params(model_);
  state_tensors_ = named_state(model_);
  // Gradient averaging overlapped with backward (hooks on the parameters, removed with the trainer).
  if (multi()) {
    std::vector<torch::Tensor> param_list;
    for (const auto& [k, p] : params_) param_list.push_back(p);
    gradient_hooks_.comm = comm_;
    comm_->attach_gradient_hooks(param_list);
  }
  opt_ = std::make_unique<AdamW>(params_, AdamWConfig{cfg_.beta1, cfg_.beta2, cfg_.opt_eps, cfg_.weight_decay});
  scaler_ = std::make_unique<GradScaler>(amp_ == Amp::FP16);
  if (cfg_.model_ema) ema_ = std::make_unique<ModelEma>(state_tensors_, cfg_.model_ema_decay);
  const double peak = cfg_.unscale_lr ? cfg_.lr : cfg_.lr * static_cast<double>(global_batch_) / 512.0;
  sched_ = LrSchedule{peak, cfg_.min_lr, cfg_.warmup_lr, cfg_.warmup_epochs, cfg_.epochs};
  mixing_ = cfg_.mixup > 0 || cfg_.cutmix > 0;
  mix_.mixup_alpha = cfg_.mixup;
  mix_.cutmix_alpha = cfg_.cutmix;
  mix_.prob = cfg_.mixup_prob;
  mix_.switch_prob = cfg_.mixup_switch_prob;
  mix_.label_smoothing = cfg_.smoothing;
  mix_.num_classes = train_set_.num_classes();
  if (mixing_) data::validate(mix_);
}

void Trainer::resume() {
  const TrainingState st = read_training_state(ctx_.resume);
  models::load_state_dict(model_, st.model, ctx_.resume);
  opt_->load_state(st.optimizer, ctx_.resume);
  if (ema_) {
    if (st.ema.empty()) log_warn(ctx_.resume, " has no EMA state; the EMA restarts from the current weights");
    else ema_->load(st.ema, ctx_.resume);
  }
  scaler_->set_state(st.scaler_scale, st.scaler_growth_tracker);
  if (distiller_) distiller_->load_state(st.teacher, ctx_.resume);
  if (st.progress.world_size != world_ || st.progress.global_batch != global_batch_)
    log_warn("resuming a run made with ", st.progress.world_size, " process(es) and global batch ",
             st.progress.global_batch, " with ", world_, " and ", global_batch_,
             ": the data order differs from an uninterrupted run");
  progress_ = st.progress;
  progress_.world_size = world_;
  progress_.global_batch = global_batch_;
  if (progress_.step_in_epoch >= steps_per_epoch_) {
    progress_.epoch += 1;
    progress_.step_in_epoch = 0;
  }
  log_info("resumed from ", ctx_.resume, " at epoch ", progress_.epoch, " step ", progress_.step_in_epoch,
           " (global step ", progress_.global_step, ")");
}

// Rank 0 with a run directory: config.json, and metrics.jsonl cut back to the checkpoint.
void Trainer::open_run_dir() {
  if (main_ && !cfg_.run_dir.empty()) {
    run_ = std::make_unique<RunDir>(cfg_.run_dir);
    write_file_atomic(run_->config_path(), config_to_json(cfg_).dump(2) + "\n");
  }
  metrics_ = std::make_unique<MetricsLog>(run_.get());
  if (!ctx_.resume.empty()) metrics_->drop_after(progress_.epoch);
}

TrainResult Trainer::run() {
  for (int64_t epoch = progress_.epoch; epoch < cfg_.epochs; ++epoch)
    if (!run_epoch(epoch)) return result_;
  result_.best_top1 = progress_.best_top1;
  if (main_) export_artifacts();
  if (multi()) comm_->barrier();
  return result_;
}

// One epoch from its first step not yet done; false when the run stopped in it.
bool Trainer::run_epoch(int64_t epoch) {
  for (auto* o : observers_) o->on_epoch_start(epoch);
  model_.train();
  const auto epoch_start = Clock::now();
  const int64_t B = cfg_.batch_size;
  const int64_t first = epoch == progress_.epoch ? progress_.step_in_epoch : 0;
  auto indices = cfg_.repeated_aug ? data::repeated_aug_indices(examples_, rank_, world_, epoch, cfg_.seed, ra_)
                                   : data::distributed_indices(examples_, rank_, world_, epoch, cfg_.seed);
  indices.resize(static_cast<size_t>(steps_per_epoch_ * B));
  std::vector<int64_t> order(indices.begin() + first * B, indices.end());
  data::LoaderOptions lo;
  lo.batch_size = B;
  lo.workers = cfg_.workers;
  lo.augment = cfg_.augment;
  lo.seed = cfg_.seed;
  lo.epoch = epoch;
  lo.pin_memory = device_.is_cuda();
  data::Loader loader(train_set_, std::move(order), lo);
  loss_sum_ = 0;
  loss_count_ = 0;
  data::LoadedBatch batch;
  const auto note_bad = [&] {
    bad_images_ = loader.bad_images();
    const auto paths = loader.bad_paths();
    bad_example_ = paths.empty() ? "" : paths.front();
  };
  timer_.start();
  epoch_time_ = StepBreakdown{};
  for (int64_t step = first; step < steps_per_epoch_; ++step) {
    timer_.mark(StepPhase::REST);
    const bool got = loader.next(batch);
    timer_.mark(StepPhase::DATA);
    if (!got) {
      note_bad();
      if (bad_images_ == 0) throw std::runtime_error(cat("data loader ended early at step ", step));
      throw std::runtime_error(cat(train_set_.describe(), ": ",
                                   step == first ? "none of the training images could be read"
                                                 : cat("the training images ran out at step ", step, " of ",
                                                       steps_per_epoch_),
                                   " (", bad_images_, " unreadable image(s) skipped in epoch ", epoch + 1, ", e.g. '",
                                   bad_example_, "')"));
    }
    if (!train_step(epoch, step, batch)) return false;
  }
  timer_.mark(StepPhase::REST);
  epoch_time_ += timer_.take(/*settle=*/true);
  note_bad();
  return end_epoch(epoch, first, seconds_since(epoch_start));
}

std::vector<const models::Widths*> Trainer::step_subnets(int64_t epoch, int64_t step) {
  std::vector<const models::Widths*> subnets;
  data::Rng shared(step_seed(cfg_.seed, epoch, step, 0));
  for (auto* o : observers_) {
    auto more = o->step_subnets(epoch, step, shared);
    subnets.insert(subnets.end(), more.begin(), more.end());
  }
  if (subnets.empty()) subnets.push_back(nullptr);
  return subnets;
}

// One optimizer step; false when the run stopped after it.
bool Trainer::train_step(int64_t epoch, int64_t step, const data::LoadedBatch& batch) {
  timer_.step_done();
  const uint64_t s = step_seed(cfg_.seed, epoch, step, rank_);
  torch::manual_seed(s);
  data::Rng rng(s);
  const double lr = sched_.at(epoch + static_cast<double>(step) / steps_per_epoch_);
  const auto subnets = step_subnets(epoch, step);
  const auto teachers = distiller_ ? distiller_->teachers(subnets) : std::vector<Teacher>{};
  torch::Tensor images = batch.images, labels = batch.labels, targets;
  if (images.size(0) == 0) throw std::runtime_error(cat("epoch ", epoch, " step ", step, ": no readable image"));
  if (mixing_) {
    if (images.size(0) == 1) {  // skipped bad images left one: mixed with itself (dropping it left 0, a NaN loss)
      images = torch::cat({images, images});
      labels = torch::cat({labels, labels});
    } else if (images.size(0) % 2 != 0) {  // a skipped bad image left an odd batch
      images = images.narrow(0, 0, images.size(0) - 1);
      labels = labels.narrow(0, 0, labels.size(0) - 1);
    }
    targets = data::mixup_batch(images, labels, mix_, rng).targets;
  }
  images = images.to(device_, true);
  if (mixing_) targets = targets.to(device_);
  labels = labels.to(device_);
  timer_.mark(StepPhase::REST);
  pending_.push_back({forward_backward(subnets, teachers, images, labels, targets), step, lr});
  // Read the losses (and agree on a stop request) now when the interval is full, at the end of the
  // epoch, before a --max-steps stop, or when a single process was asked to stop; a non-finite loss
  // then stops the run before this step's update.
  const bool at_max = at_max_steps(progress_.global_step + 1);  // this step reaches --max-steps
  bool stop_agreed = false;
  if (static_cast<int64_t>(pending_.size()) >= sync_every_ || step + 1 == steps_per_epoch_ || at_max ||
      (world_ == 1 && stop_signal() != 0))
    stop_agreed = read_losses(epoch);
  timer_.mark(StepPhase::REST);
  if (multi()) comm_->finish_gradient_average();
  timer_.mark(StepPhase::ALLREDUCE);
  optimizer_step(lr);
  timer_.mark(StepPhase::OPTIMIZER);
  ++result_.steps;
  ++progress_.global_step;
  progress_.step_in_epoch = step + 1;
  return !stop_here(epoch, step + 1, false, agreed_signal(stop_agreed), at_max);
}

// Every sub-network of the step sees the same batch; the mean of their losses is what is
// differentiated (one backward each, so only one graph is alive at a time). With a distiller each
// sub-network's loss adds λ·T²·KL to its teacher's logits (distill.h): an earlier sub-network's of
// this step (kept detached, no extra forward), a no-grad forward of the current weights, or the
// frozen model's (one forward per step, shared by the step's sub-networks). The returned loss stays
// on the device until the next host synchronisation (see sync_every_).
torch::Tensor Trainer::forward_backward(const std::vector<const models::Widths*>& subnets,
                                        const std::vector<Teacher>& teachers, const torch::Tensor& images,
                                        const torch::Tensor& labels, const torch::Tensor& targets) {
  if (!teachers.empty() && teachers.size() != subnets.size())
    throw std::logic_error(
        cat("distiller gave ", teachers.size(), " teachers for ", subnets.size(), " sub-networks"));
  std::vector<bool> taught_later(subnets.size(), false);
  for (size_t i = 0; i < teachers.size(); ++i)
    if (teachers[i].source == Teacher::Source::STEP) {
      if (teachers[i].step_index >= i)
        throw std::logic_error(cat("sub-network ", i, " of the step learns from sub-network ",
                                   teachers[i].step_index, ", which is not trained before it"));
      taught_later[teachers[i].step_index] = true;
    }
  std::vector<torch::Tensor> step_logits(subnets.size());
  torch::Tensor frozen;
  torch::Tensor step_loss;
  const double share = 1.0 / static_cast<double>(subnets.size());
  for (size_t si = 0; si < subnets.size(); ++si) {
    const torch::Tensor teacher =
        teachers.empty() ? torch::Tensor() : teacher_logits(teachers[si], step_logits, images, frozen);
    fwd_.widths = subnets[si];
    // The gradient average runs bucket by bucket during the step's last backward.
    if (multi() && si + 1 == subnets.size()) comm_->arm_gradient_hooks();
    torch::Tensor loss;
    {
      AutocastGuard autocast(amp_);
      auto logits = model_.forward(images, fwd_).to(torch::kFloat32);
      loss = mixing_ ? data::soft_target_cross_entropy(logits, targets)
                     : torch::nn::functional::cross_entropy(logits, labels, ce_opts_);
      if (teacher.defined())
        loss = loss + distiller_->weight() * distillation_loss(logits, teacher, distiller_->temperature());
      if (taught_later[si]) step_logits[si] = logits.detach();
    }
    if (subnets.size() > 1) loss = loss * share;
    step_loss = step_loss.defined() ? step_loss + loss.detach() : loss.detach();
    timer_.mark(StepPhase::FORWARD);
    scaler_->scale_loss(loss).backward();
    timer_.mark(StepPhase::BACKWARD);
  }
  fwd_.widths = nullptr;
  return step_loss;
}

// A sub-network's teacher logits (float32, no gradient; undefined for none). `frozen` caches the
// frozen model's logits for the step.
torch::Tensor Trainer::teacher_logits(const Teacher& teacher, const std::vector<torch::Tensor>& step_logits,
                                      const torch::Tensor& images, torch::Tensor& frozen) {
  switch (teacher.source) {
    case Teacher::Source::NONE:
      return {};
    case Teacher::Source::STEP:
      return step_logits.at(teacher.step_index);
    case Teacher::Source::FORWARD: {
      torch::NoGradGuard no_grad;
      AutocastGuard autocast(amp_);
      models::ForwardOptions fo = fwd_;
      fo.widths = teacher.widths;
      fo.zero_grad_removed = false;
      return model_.forward(images, fo).to(torch::kFloat32);
    }
    case Teacher::Source::FROZEN:
      if (!frozen.defined()) {
        torch::NoGradGuard no_grad;
        AutocastGuard autocast(amp_);
        frozen = distiller_->frozen_logits(images).to(torch::kFloat32);
      }
      return frozen;
  }
  return {};
}

// The update from the accumulated gradients (skipped on an fp16 overflow), then zeroed gradients.
void Trainer::optimizer_step(double lr) {
  const bool found_inf = scaler_->enabled() ? scaler_->unscale_and_check(params_) : false;
  if (!found_inf) {
    if (cfg_.clip_grad > 0) clip_grad_norm(params_, cfg_.clip_grad);
    opt_->step(lr);
    if (ema_) ema_->update(state_tensors_);
  } else {
    ++result_.skipped_steps;
    log_warn("fp16 overflow at global step ", progress_.global_step + 1, ": step skipped, loss scale ",
             scaler_->scale(), " -> ", scaler_->scale() * 0.5);
  }
  scaler_->update(found_inf);
  opt_->zero_grad();
}

// Reads the pending losses, all ranks agreeing on them and on a stop request (one small all-reduce);
// throws on a non-finite loss (unless fp16 loss scaling handles overflow); returns the stop request.
bool Trainer::read_losses(int64_t epoch) {
  std::vector<torch::Tensor> dev;
  for (const auto& p : pending_) dev.push_back(p.loss.to(torch::kFloat64).reshape({1}));
  std::vector<double> values;
  if (!dev.empty()) {
    const auto host = torch::cat(dev).cpu();
    values.assign(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
  }
  values.push_back(static_cast<double>(stop_signal()));
  const auto agreed = all_reduce_sum(comm_, values);
  const int64_t global_first = progress_.global_step - static_cast<int64_t>(pending_.size()) + 1;
  for (size_t i = 0; i < pending_.size(); ++i) {
    const double lv = agreed[i] / world_;
    const int64_t step = pending_[i].step;
    if (!std::isfinite(lv) && !scaler_->enabled())
      throw ParameterFailure([=, last = result_.last_checkpoint,
                              global = global_first + static_cast<int64_t>(i) + 1](const KeyNamer& name) {
        return cat(
            "loss is ", lv, " at epoch ", epoch + 1, " step ", step + 1, " (global step ", global,
            "); stopping. Lower ", name("lr"), ", set ", name("clip_grad"), ", or check the data. ",
            last.empty() ? std::string("No checkpoint was written.") : "Last good checkpoint: " + last);
      });
    if (std::isfinite(lv)) {
      loss_sum_ += lv;
      ++loss_count_;
    }
    result_.last_loss = lv;
    for (auto* o : observers_) o->on_step_loss(epoch, step, lv, pending_[i].lr);
  }
  pending_.clear();
  return agreed.back() > 0;
}

// The epoch's record, evaluation, checkpoint and stop check; false when the run stops here.
bool Trainer::end_epoch(int64_t epoch, int64_t first, double secs) {
  progress_.epoch = epoch + 1;
  progress_.step_in_epoch = 0;
  const auto train_stats =
      all_reduce_sum(comm_, {loss_sum_, static_cast<double>(loss_count_), static_cast<double>(bad_images_)});
  const auto skipped_images = static_cast<int64_t>(train_stats[2]);
  result_.skipped_images += skipped_images;
  if (skipped_images > 0)
    log_warn("epoch ", epoch + 1, ": skipped ", skipped_images, " unreadable training image(s)",
             bad_example_.empty() ? "" : cat(", e.g. '", bad_example_, "'"));
  nlohmann::json rec = {{"epoch", epoch + 1},
                        {"global_step", progress_.global_step},
                        {"train_loss", train_stats[1] > 0 ? train_stats[0] / train_stats[1] : NAN},
                        {"lr", sched_.at(epoch + 1.0 - 1e-9)},
                        {"images_per_s", (steps_per_epoch_ - first) * global_batch_ / secs},
                        {"epoch_seconds", secs},
                        {"skipped_steps", result_.skipped_steps},
                        {"skipped_images", skipped_images},
                        {"step_time", epoch_time_.to_json()}};
  result_.images_per_s = rec["images_per_s"];
  const bool evaluated = eval_set_ && cfg_.eval;
  const bool is_best = evaluated && evaluate(epoch, rec);
  if (evaluated)
    log_info("epoch ", epoch + 1, "/", cfg_.epochs, ": train loss ", rec["train_loss"].get<double>(),
             ", top-1 ", rec["top1"].get<double>(), "%, top-5 ", rec["top5"].get<double>(), "% (best ",
             progress_.best_top1, "% at epoch ", progress_.best_epoch, "), ",
             static_cast<int64_t>(result_.images_per_s), " img/s, ", secs, " s | ", epoch_time_.line());
  else
    log_info("epoch ", epoch + 1, "/", cfg_.epochs, ": train loss ", rec["train_loss"].get<double>(), ", ",
             static_cast<int64_t>(result_.images_per_s), " img/s, ", secs, " s | ", epoch_time_.line());
  for (auto* o : observers_) o->on_epoch_end(rec);
  save_checkpoint(is_best);
  const bool agreed = all_reduce_sum(comm_, {static_cast<double>(stop_signal())})[0] > 0;
  return !stop_here(epoch, steps_per_epoch_, true, agreed_signal(agreed), at_max_steps(progress_.global_step));
}

// Top-1/top-5/loss on the evaluation set (each rank its shard) into `rec`; true for a new best.
bool Trainer::evaluate(int64_t epoch, nlohmann::json& rec) {
  Shard shard(*eval_set_, rank_, world_);
  eval::EvalOptions eo;
  eo.batch_size = std::max<int64_t>(cfg_.batch_size, 256);
  eo.workers = cfg_.workers;
  eo.device = device_;
  eo.amp = amp_;
  const auto r = eval::evaluate(model_, shard, eo);
  const auto tot = all_reduce_sum(comm_, {r.top1 * r.images / 100.0, r.top5 * r.images / 100.0, r.loss * r.images,
                                          static_cast<double>(r.images)});
  const double top1 = 100.0 * tot[0] / tot[3], top5 = 100.0 * tot[1] / tot[3];
  rec["top1"] = top1;
  rec["top5"] = top5;
  rec["eval_loss"] = tot[2] / tot[3];
  result_.eval_top1 = top1;
  bool is_best = false;
  if (top1 > progress_.best_top1) {
    progress_.best_top1 = top1;
    progress_.best_epoch = epoch + 1;
    is_best = true;
  }
  rec["best_top1"] = progress_.best_top1;
  model_.train();
  return is_best;
}

nlohmann::json Trainer::manifest_extra() const {
  // The preprocessing of the data it trained on (data::Dataset::preprocess: the resolved entry for image
  // folders; Fashion-MNIST's resize with the resolved mean and std).
  nlohmann::json extra = models::preprocess_entry(train_set_.preprocess());
  for (const auto* o : observers_) extra.update(o->manifest_extra());
  return extra;
}

// A training checkpoint of the current position (rank 0 with a run directory); every rank waits.
void Trainer::save_checkpoint(bool is_best) {
  if (main_ && run_) {
    TrainingState st;
    st.progress = progress_;
    st.config = config_to_json(cfg_);
    st.optimizer = opt_->state();
    if (ema_) st.ema = to_map(ema_->values());
    if (distiller_) st.teacher = distiller_->state();
    st.scaler_scale = scaler_->scale();
    st.scaler_growth_tracker = scaler_->growth_tracker();
    nlohmann::json p = prov_;
    p["epochs_completed"] = progress_.epoch;
    result_.last_checkpoint = run_->save(serialize_training_checkpoint(model_, p, st, manifest_extra()), progress_,
                                         is_best, cfg_.keep_last);
    log_info("checkpoint ", result_.last_checkpoint);
  }
  if (multi()) comm_->barrier();
}

// The stop policy: a stop request (signal `sig`, agreed on by all ranks) or --max-steps ends the run
// when training remains. Mid-epoch (after `step` steps) it writes the checkpoint of that position;
// at an epoch's end (`epoch_end`) that epoch's checkpoint is already written. True: stopped.
bool Trainer::stop_here(int64_t epoch, int64_t step, bool epoch_end, int sig, bool at_max) {
  const bool remains = epoch_end ? epoch + 1 < cfg_.epochs : step < steps_per_epoch_;
  if ((sig == 0 && !at_max) || !remains) return false;
  const std::string what = epoch_end ? cat("stopping after epoch ", epoch + 1)
                                     : cat("writing a checkpoint at epoch ", epoch + 1, " step ", step);
  if (sig != 0)
    log_warn("signal ", sig, " received: ", what);
  else
    log_info("reached ", log_key("max_steps"), " ", ctx_.max_steps, ": ", what);
  if (!epoch_end) save_checkpoint(false);
  result_.stop_signal = sig;
  result_.stopped_at_max_steps = at_max && (sig == 0 || !epoch_end);
  result_.best_top1 = progress_.best_top1;
  return true;
}

// The final artifact (--out, default <run_dir>/model.safetensors) and, with an EMA and a run
// directory, model_ema.safetensors: the EMA weights swapped in for the save only.
void Trainer::export_artifacts() {
  std::string out = cfg_.out;
  if (out.empty() && run_) out = run_->root() + "/model.safetensors";
  if (out.empty()) return;
  nlohmann::json p = prov_;
  p["epochs"] = cfg_.epochs;
  p["global_batch"] = global_batch_;
  p["seed"] = cfg_.seed;
  if (result_.eval_top1 >= 0) p["eval_top1"] = result_.eval_top1;
  models::save_artifact(out, model_, p, manifest_extra());
  result_.artifact = out;
  log_info("wrote ", out);
  if (ema_ && run_) {
    p["weights"] = "ema";
    with_ema_weights(*ema_, state_tensors_,
                     [&] { models::save_artifact(run_->root() + "/model_ema.safetensors", model_, p, manifest_extra()); });
  }
}

}  // namespace

std::string summary(const TrainResult& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "trained %lld steps, last loss %.4f, %.1f images/s", static_cast<long long>(r.steps),
                r.last_loss, r.images_per_s);
  std::string s = buf;
  if (r.eval_top1 >= 0) {
    std::snprintf(buf, sizeof buf, ", test top-1 %.2f%%", r.eval_top1);
    s += buf;
  }
  if (r.best_top1 >= 0) {
    std::snprintf(buf, sizeof buf, " (best %.2f%%)", r.best_top1);
    s += buf;
  }
  if (r.skipped_images > 0) s += cat("; skipped ", r.skipped_images, " unreadable training image(s)");
  return s;
}

TrainResult train(models::ElasticModelImpl& model, const data::Dataset& train_set, const data::Dataset* eval_set,
                  const TrainConfig& cfg, const TrainContext& ctx) {
  validate(cfg);
  return Trainer(model, train_set, eval_set, cfg, ctx).run();
}

}  // namespace skd::train
