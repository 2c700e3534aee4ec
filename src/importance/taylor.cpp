#include "skd/importance/taylor.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/random.h"
#include "skd/models/config.h"
#include "skd/distributed/communicator.h"

namespace skd::importance {

const char* cost_name(Cost cost) { return enum_name(cost, kCostNames); }

std::vector<int64_t> proxy_indices(int64_t dataset_size, int64_t samples, uint64_t seed) {
  if (samples < 1) throw ParameterError("proxy_samples", cat(" must be at least 1 (got ", samples, ")"));
  if (samples > dataset_size)
    throw ParameterError("proxy_samples",
                         cat(" ", samples, " exceeds the ", dataset_size, " images of the dataset"));
  std::vector<int64_t> all(static_cast<size_t>(dataset_size));
  std::iota(all.begin(), all.end(), int64_t{0});
  // Partial Fisher-Yates with an explicit uniform draw (std::shuffle's algorithm is unspecified, so
  // the proxy set would differ between standard libraries).
  std::mt19937_64 rng(seed ^ 0x5eed'0f'9a'c0ULL);
  for (int64_t i = 0; i < samples; ++i) {
    const uint64_t r = uniform_below(rng, static_cast<uint64_t>(dataset_size - i));
    std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>(i + static_cast<int64_t>(r))]);
  }
  all.resize(static_cast<size_t>(samples));
  return all;
}

std::vector<std::vector<int64_t>> proxy_batches(const std::vector<int64_t>& indices, int64_t batch_size, int rank,
                                                int world_size) {
  if (batch_size < 1) throw ParameterError("batch_size", cat(" must be positive (got ", batch_size, ")"));
  const int64_t n = static_cast<int64_t>(indices.size());
  if (n < batch_size)
    throw ParameterError([=](const KeyNamer& name) {
      return cat("the proxy set (", n, " images, ", name("proxy_samples"), ") is smaller than one batch (",
                 name("batch_size"), " ", batch_size, "): raise ", name("proxy_samples"), " or lower ",
                 name("batch_size"));
    });
  SKD_CHECK(world_size >= 1 && rank >= 0 && rank < world_size);
  std::vector<std::vector<int64_t>> out;
  const int64_t count = (n + batch_size - 1) / batch_size;
  for (int64_t b = rank; b < count; b += world_size) {
    const int64_t begin = b * batch_size, end = std::min(n, begin + batch_size);
    out.emplace_back(indices.begin() + begin, indices.begin() + end);
  }
  return out;
}

ProxyPassResult run_proxy_pass(models::ElasticModelImpl& model, const data::Dataset& dataset,
                               const std::vector<std::vector<int64_t>>& batches, const ProxyOptions& options,
                               bool capture_qkv, bool capture_mlp, const BatchVisitor& visit,
                               const ProxyProgress& progress) {
  const bool was_training = model.is_training();
  model.eval();
  const int64_t classes = model.config().num_classes;
  ProxyPassResult result;
  int64_t done = 0;
  using clock = std::chrono::steady_clock;
  auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
  for (const auto& indices : batches) {
    auto t0 = clock::now();
    auto batch = dataset.get_batch(indices);
    auto images = batch.images.to(options.device);
    auto labels = batch.labels.to(options.device);
    result.seconds_data += since(t0);
    t0 = clock::now();
    const auto bad = (labels < 0).logical_or(labels >= classes);
    if (bad.any().item<bool>())
      throw std::invalid_argument(cat("proxy batch ", done, ": a label is outside the model's ", classes,
                                      " classes (dataset ", dataset.describe(), ")"));
    models::Probes probes;
    probes.capture_qkv = capture_qkv;
    probes.capture_mlp_act = capture_mlp;
    models::ForwardOptions fo;
    fo.probes = &probes;
    fo.widths = options.widths;
    fo.attention = models::AttentionKernel::EXPLICIT;  // the statistics are defined on the explicit form
    torch::Tensor logits = model.forward(images, fo);
    if (!torch::isfinite(logits).all().item<bool>())
      throw std::runtime_error(cat("proxy batch ", done, " (dataset indices from ", indices.front(),
                                   "): the model produced non-finite logits (NaN/Inf in the weights or the images)"));
    torch::Tensor cost = options.cost == Cost::LOGIT
                             ? logits.gather(1, labels.unsqueeze(1)).sum()
                             : torch::nn::functional::cross_entropy(
                                   logits, labels,
                                   torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    std::vector<torch::Tensor> inputs;
    for (const auto& t : probes.qkv) inputs.push_back(t);
    for (const auto& t : probes.mlp_act) inputs.push_back(t);
    std::vector<torch::Tensor> grads;
    if (!inputs.empty()) {
      grads = torch::autograd::grad({cost}, inputs, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    }
    ProbedBatch pb;
    pb.images = images.size(0);
    pb.qkv_blocks = probes.qkv_blocks;
    pb.mlp_blocks = probes.mlp_blocks;
    size_t k = 0;
    auto grad_or_zero = [&](const torch::Tensor& f) {
      auto g = grads[k++];
      return g.defined() ? g : torch::zeros_like(f);
    };
    for (const auto& f : probes.qkv) {
      pb.qkv_grad.push_back(grad_or_zero(f));
      pb.qkv.push_back(f.detach());
    }
    for (const auto& f : probes.mlp_act) {
      pb.mlp_grad.push_back(grad_or_zero(f));
      pb.mlp_act.push_back(f.detach());
    }
    pb.logits = logits.detach();
    pb.labels = labels;
    if (result.batches == 0) {
      result.first_images = images;
      result.first_logits = pb.logits;
    }
    result.seconds_model += since(t0);
    t0 = clock::now();
    visit(pb);
    result.seconds_visit += since(t0);
    result.images += pb.images;
    ++result.batches;
    ++done;
    if (progress) progress(done, static_cast<int64_t>(batches.size()));
  }
  model.train(was_training);
  return result;
}

torch::Tensor accumulate_taylor(const torch::Tensor& f, const torch::Tensor& g, torch::Tensor& fo, torch::Tensor& so) {
  auto p = f * g;
  so += 0.5 * p.square().sum(0, false, torch::kFloat64).view(so.sizes());
  p.abs_();
  fo += p.sum(0, false, torch::kFloat64).view(fo.sizes());
  return p;
}

torch::Tensor taylor_fo_sum(const torch::Tensor& f, const torch::Tensor& g) {
  return (f * g).abs().reshape({-1, f.size(-1)}).sum(0, false, torch::kFloat64);
}

DimImportance dim_importance(models::ElasticModelImpl& model, const data::Dataset& dataset,
                             const std::vector<std::vector<int64_t>>& batches, const ProxyOptions& options,
                             distributed::Communicator* comm) {
  const auto specs = models::block_specs(model.config());
  const models::Widths widths = options.widths ? *options.widths : model.widths();
  DimImportance theta;
  for (const auto& w : widths) {
    theta.attention.push_back(torch::zeros({w.attn}, torch::kFloat64));
    theta.mlp.push_back(torch::zeros({w.mlp}, torch::kFloat64));
  }
  run_proxy_pass(model, dataset, batches, options, true, true, [&](const ProbedBatch& pb) {
    for (size_t k = 0; k < pb.qkv.size(); ++k) {
      const auto blk = static_cast<size_t>(pb.qkv_blocks[k]);
      const int64_t H = specs[blk].num_heads, a = widths[blk].attn;
      SKD_CHECK(pb.qkv[k].size(-1) == 3 * H * a, "qkv probe of block ", blk);
      theta.attention[blk] += taylor_fo_sum(pb.qkv[k], pb.qkv_grad[k]).view({3, H, a}).sum(0).mean(0).cpu();
    }
    for (size_t k = 0; k < pb.mlp_act.size(); ++k) {
      const auto blk = static_cast<size_t>(pb.mlp_blocks[k]);
      theta.mlp[blk] += taylor_fo_sum(pb.mlp_act[k], pb.mlp_grad[k]).cpu();
    }
  });
  if (comm && comm->world_size() > 1) {
    std::vector<torch::Tensor> all;
    for (size_t i = 0; i < widths.size(); ++i) {
      all.push_back(theta.attention[i]);
      all.push_back(theta.mlp[i]);
    }
    comm->all_reduce_sum(all);
    for (size_t i = 0; i < widths.size(); ++i) {
      theta.attention[i] = all[2 * i];
      theta.mlp[i] = all[2 * i + 1];
    }
  }
  return theta;
}

}  // namespace skd::importance
