#include "skd/eval/evaluate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>

#include "skd/core/error.h"

namespace skd::eval {

EvalResult evaluate(models::ElasticModelImpl& model, const data::Dataset& dataset, const EvalOptions& opt,
                    const ProgressFn& progress) {
  torch::NoGradGuard guard;
  model.eval();
  models::ForwardOptions fwd;
  fwd.widths = opt.widths;
  const BatchForward forward = [&](const torch::Tensor& x) {
    AutocastGuard autocast(opt.amp);
    return model.forward(x, fwd);
  };
  return evaluate(forward, model.config().num_classes, dataset, opt, progress);
}

EvalResult evaluate(const BatchForward& forward, int64_t num_classes, const data::Dataset& dataset,
                    const EvalOptions& opt, const ProgressFn& progress) {
  if (opt.batch_size <= 0) throw ParameterError("batch_size", " must be positive");
  if (dataset.num_classes() > num_classes)
    throw std::invalid_argument(
        cat("the dataset has ", dataset.num_classes(), " classes but the model predicts ", num_classes));
  const int64_t total = opt.limit > 0 ? std::min(opt.limit, dataset.size()) : dataset.size();
  std::vector<int64_t> order(static_cast<size_t>(total));
  std::iota(order.begin(), order.end(), 0);
  data::LoaderOptions lo;
  lo.batch_size = opt.batch_size;
  lo.workers = opt.workers;
  lo.on_bad_image = opt.on_bad_image;
  lo.pin_memory = opt.device.is_cuda();
  data::Loader loader(dataset, std::move(order), lo);

  torch::NoGradGuard guard;
  EvalResult r;
  std::vector<torch::Tensor> kept, kept_inputs;
  double correct1 = 0, correct5 = 0, loss_sum = 0;
  const auto start = std::chrono::steady_clock::now();
  data::LoadedBatch batch;
  while (loader.next(batch)) {
    const auto x = batch.images.to(opt.device, /*non_blocking=*/true);
    const auto y = batch.labels.to(opt.device, true);
    torch::Tensor logits = forward(x).to(torch::kFloat32);
    if (logits.dim() != 2 || logits.size(0) != x.size(0) || logits.size(1) != num_classes)
      throw std::runtime_error(cat("the model returned logits of shape ", logits.sizes(), " for ", x.size(0),
                                   " images of ", num_classes, " classes"));
    if (!torch::isfinite(logits).all().item<bool>())
      throw std::runtime_error(cat("the model produced non-finite logits (first image of the batch: dataset index ",
                                   batch.indices.front(), ")"));
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    const auto hits = std::get<1>(logits.topk(k, 1)).eq(y.unsqueeze(1));
    correct1 += hits.select(1, 0).sum().item<double>();
    correct5 += hits.any(1).sum().item<double>();
    if (opt.keep_logits) {
      kept.push_back(logits.cpu());
      if (opt.keep_inputs) kept_inputs.push_back(batch.images.to(torch::kFloat32).cpu());
      r.indices.insert(r.indices.end(), batch.indices.begin(), batch.indices.end());
    }
    r.images += x.size(0);
    if (progress) progress(r.images + loader.bad_images(), total);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.bad_images = loader.bad_images();
  r.bad_paths = loader.bad_paths();
  if (r.images == 0 && r.bad_images > 0)  // an accuracy over no images would read as 0 %
    throw std::runtime_error(cat(dataset.describe(), ": none of its ", r.bad_images, " images could be read (e.g. '",
                                 r.bad_paths.empty() ? std::string("?") : r.bad_paths.front(), "')"));
  if (r.images > 0) {
    r.top1 = 100.0 * correct1 / r.images;
    r.top5 = 100.0 * correct5 / r.images;
    r.loss = loss_sum / r.images;
    r.images_per_s = r.images / std::max(r.seconds, 1e-9);
  }
  if (opt.keep_logits && !kept.empty()) r.logits = torch::cat(kept, 0);
  if (opt.keep_logits && !kept_inputs.empty()) r.inputs = torch::cat(kept_inputs, 0);
  return r;
}

LatencyResult measure_latency(models::ElasticModelImpl& model, int64_t batch_size, const torch::Device& device,
                              Amp amp, int warmup, int repeats, const models::Widths* widths) {
  if (batch_size <= 0) throw ParameterError("latency", " batch sizes must be positive");
  if (repeats <= 0 || warmup < 0) throw ParameterError("latency_repeats", " must be positive");
  const auto& c = model.config();
  torch::NoGradGuard guard;
  model.eval();
  models::ForwardOptions fwd;
  fwd.widths = widths;
  const auto x = torch::randn({batch_size, c.in_chans, c.img_size, c.img_size}).to(device);
  AutocastGuard autocast(amp);
  // Warm-up by count and by time; the first measurement of the process also lets the CPU settle
  // (extract::kSettleSeconds).
  static std::atomic<bool> settled{false};
  const double spin = extract::kWarmupSeconds + (settled.exchange(true) ? 0.0 : extract::kSettleSeconds);
  const auto w0 = std::chrono::steady_clock::now();
  for (int i = 0;
       i < warmup || std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count() < spin;
       ++i) {
    model.forward(x, fwd);
    synchronize(device);
  }
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model.forward(x, fwd);
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double q) { return ms[static_cast<size_t>(q * (ms.size() - 1) + 0.5)]; };
  LatencyResult r;
  r.batch_size = batch_size;
  r.median_ms = pct(0.5);
  r.p10_ms = pct(0.1);
  r.p90_ms = pct(0.9);
  r.images_per_s = batch_size / (r.median_ms / 1000.0);
  return r;
}

}  // namespace skd::eval
