#include "skd/eval/evaluate.h"

#include <chrono>
#include <numeric>

#include "skd/core/error.h"

namespace skd::eval {

EvalResult evaluate(models::ElasticModelImpl& model, const data::Dataset& dataset, const EvalOptions& opt,
                    const ProgressFn& progress) {
  if (opt.batch_size <= 0) throw std::invalid_argument("--batch-size must be positive");
  if (dataset.num_classes() > model.config().num_classes)
    throw std::invalid_argument(cat("dataset has ", dataset.num_classes(), " classes but the model predicts ",
                                    model.config().num_classes));
  const int64_t total = opt.limit > 0 ? std::min(opt.limit, dataset.size()) : dataset.size();
  torch::NoGradGuard guard;
  model.eval();
  models::ForwardOptions fwd;
  fwd.widths = opt.widths;
  EvalResult r;
  std::vector<torch::Tensor> kept;
  double correct1 = 0, correct5 = 0, loss_sum = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t begin = 0; begin < total; begin += opt.batch_size) {
    const int64_t n = std::min(opt.batch_size, total - begin);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), begin);
    const auto batch = dataset.get_batch(idx);
    const auto logits = model.forward(batch.images, fwd);
    if (!torch::isfinite(logits).all().item<bool>())
      throw std::runtime_error(cat("the model produced non-finite logits on images ", begin, "..", begin + n - 1));
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    const auto topk = std::get<1>(logits.topk(k, 1));
    const auto hits = topk.eq(batch.labels.unsqueeze(1));
    correct1 += hits.select(1, 0).sum().item<double>();
    correct5 += hits.any(1).sum().item<double>();
    if (opt.keep_logits) kept.push_back(logits);
    r.images += n;
    if (progress) progress(r.images, total);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (r.images > 0) {
    r.top1 = 100.0 * correct1 / r.images;
    r.top5 = 100.0 * correct5 / r.images;
    r.loss = loss_sum / r.images;
    r.images_per_s = r.images / std::max(r.seconds, 1e-9);
  }
  if (opt.keep_logits && !kept.empty()) r.logits = torch::cat(kept, 0);
  return r;
}

}  // namespace skd::eval
