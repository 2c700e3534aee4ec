#include "skd/wpac/wpac.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <numeric>
#include <random>

#include <ATen/CPUGeneratorImpl.h>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/logging.h"
#include "skd/core/random.h"
#include "skd/distributed/communicator.h"
#include "skd/models/config.h"

namespace skd::wpac {

namespace {

constexpr auto kF64 = torch::kFloat64;
constexpr std::array<double, 3> kCaptureFractions = {0.25, 0.5, 0.75};  // the order of Captured

MlpCriterion resolve_mlp(const ConvertOptions& o) {
  if (o.mlp != MlpCriterion::AUTO) return o.mlp;
  switch (o.criterion) {
    // WPAC: second order, as the official code (measured better at small MLP widths, docs/wpac.md).
    case Criterion::WPAC:
    case Criterion::TAYLOR2: return MlpCriterion::TAYLOR2;
    case Criterion::TAYLOR: return MlpCriterion::TAYLOR;
    case Criterion::MAGNITUDE: return MlpCriterion::MAGNITUDE;
    case Criterion::RANDOM: return MlpCriterion::RANDOM;
  }
  return MlpCriterion::KEEP;
}

bool attention_needs_data(Criterion c) {
  return c == Criterion::WPAC || c == Criterion::TAYLOR || c == Criterion::TAYLOR2;
}
bool mlp_needs_data(MlpCriterion c) { return c == MlpCriterion::TAYLOR || c == MlpCriterion::TAYLOR2; }

// Stable descending order of a 1-D score (ties keep the lower index first).
torch::Tensor descending_order(const torch::Tensor& score) {
  auto s = score.to(torch::kCPU, kF64).contiguous();
  const auto* p = s.data_ptr<double>();
  std::vector<int64_t> idx(static_cast<size_t>(s.numel()));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  return torch::tensor(idx, torch::kInt64);
}

// Seeded permutation of n elements (explicit Fisher-Yates: the same on every standard library).
torch::Tensor random_order(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(uniform_below(rng, static_cast<uint64_t>(i + 1)))]);
  return torch::tensor(idx, torch::kInt64);
}

uint64_t mix_seed(uint64_t seed, int64_t block, int64_t head, int64_t which) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(block) * 0xBF58476D1CE4E5B9ULL +
               static_cast<uint64_t>(head) * 0x94D049BB133111EBULL + static_cast<uint64_t>(which) * 0x2545F4914F6CDD1DULL;
  s ^= s >> 31;
  return s;
}

// Basis [a, a] whose column j is the unit vector of old dim order[j].
torch::Tensor permutation_basis(const torch::Tensor& order) {
  return torch::eye(order.size(0), torch::TensorOptions().dtype(kF64)).index_select(1, order);
}

torch::Tensor stack_orders(int64_t heads, const std::function<torch::Tensor(int64_t)>& order_of_head) {
  std::vector<torch::Tensor> b;
  for (int64_t h = 0; h < heads; ++h) b.push_back(permutation_basis(order_of_head(h)));
  return torch::stack(b);
}

// Weighted covariances [3, H, a, a] of q, k and v, centred by the proxy set's weighted mean (GLOBAL)
// or uncentred (NONE). BATCH has no per-part form; covariances() reads its scatters directly.
torch::Tensor global_or_raw(const BlockStatistics& s, Centering c) {
  auto m = s.moment.to(torch::kCPU);
  if (c == Centering::NONE) return m;
  auto w = s.weight.to(torch::kCPU).unsqueeze(-1).unsqueeze(-1);  // [3,H,1,1]
  auto mu = s.weighted_sum.to(torch::kCPU);                       // [3,H,a]
  auto outer = mu.unsqueeze(-1) * mu.unsqueeze(-2);
  return m - torch::where(w > 0, outer / w.clamp_min(1e-300), torch::zeros_like(outer));
}

std::pair<torch::Tensor, torch::Tensor> covariances(const BlockStatistics& s, Centering c) {
  torch::Tensor cv, cqk;
  if (c == Centering::BATCH) {
    cv = s.scatter_v.to(torch::kCPU);
    cqk = s.scatter_qk.to(torch::kCPU);
  } else {
    auto all = global_or_raw(s, c);
    cv = all[2];
    cqk = all[0] + all[1];
  }
  return {0.5 * (cv + cv.transpose(1, 2)), 0.5 * (cqk + cqk.transpose(1, 2))};
}

struct Pca {
  torch::Tensor basis, eigenvalues;  // [H,a,a], [H,a]
  std::vector<int64_t> degenerate;
};

// `scale` [H]: trace of the uncentred weighted second moment of each head. A covariance whose trace
// is below 1e-12 of it (a spread below 1e-6 of the features' magnitude, within ten float32 ulps) is
// rounding of constant features: the float64 centring M − μ(Σwx)ᵀ − (Σwx)μᵀ + (Σw)μμᵀ cancels to
// ~1e-14 of M, not 0, and how far depends on the BLAS kernel's summation order (1e-15 held on one
// CPU and failed on an AVX-512 one). Such a head, or one with zero importance, is degenerate.
Pca principal_axes(const torch::Tensor& cov, const torch::Tensor& scale, int64_t block, const char* what) {
  const int64_t H = cov.size(0), a = cov.size(1);
  if (!torch::isfinite(cov).all().item<bool>())
    throw std::runtime_error(cat("WPAC: block ", block, ": the ", what,
                                 " statistics are not finite (NaN/Inf activations or gradients)"));
  Pca out;
  std::vector<torch::Tensor> bases, values;
  for (int64_t h = 0; h < H; ++h) {
    auto c = cov[h];
    const double trace = c.trace().item<double>();
    const double raw = scale[h].item<double>();
    if (!(trace > 0) || !(raw > 0) || trace <= 1e-12 * raw) {
      out.degenerate.push_back(h);
      bases.push_back(torch::eye(a, torch::TensorOptions().dtype(kF64)));
      values.push_back(torch::zeros({a}, kF64));
      continue;
    }
    auto [vals, vecs] = torch::linalg_eigh(c, "L");
    vals = vals.flip({0});
    vecs = vecs.flip({1}).contiguous();
    // Sign convention: the largest-magnitude entry of every eigenvector is positive, so the result
    // does not depend on the eigensolver's arbitrary signs.
    auto pivot = vecs.abs().argmax(0);                          // [a]
    auto sign = vecs.gather(0, pivot.unsqueeze(0)).sign();      // [1, a]
    vecs = vecs * torch::where(sign < 0, -torch::ones_like(sign), torch::ones_like(sign));
    bases.push_back(vecs);
    values.push_back(vals);
  }
  out.basis = torch::stack(bases);
  out.eigenvalues = torch::stack(values);
  return out;
}

// Variance of `cov` along the columns of `basis`: diag(Bᵀ C B) per head, [H, a].
torch::Tensor ordered_variance(const torch::Tensor& cov, const torch::Tensor& basis) {
  return torch::matmul(torch::matmul(basis.transpose(1, 2), cov), basis).diagonal(0, 1, 2);
}

torch::Tensor descending_eigenvalues(const torch::Tensor& cov) {
  return torch::linalg_eigvalsh(cov, "L").flip({-1});
}

Captured captured(const torch::Tensor& ordered) {  // [a]
  auto v = ordered.clamp_min(0).to(kF64);
  const double total = v.sum().item<double>();
  const int64_t a = v.size(0);
  Captured out{};
  for (size_t i = 0; i < out.size(); ++i) {
    const double f = kCaptureFractions[i];
    const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(a) * f)));
    out[i] = total > 0 ? v.narrow(0, 0, k).sum().item<double>() / total : 0.0;
  }
  return out;
}

nlohmann::json captured_json(const Captured& c) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < c.size(); ++i) j[cat(kCaptureFractions[i])] = c[i];
  return j;
}

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, kF64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

std::map<std::string, torch::Tensor> parameter_map(const models::ElasticModelImpl& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value();
  return out;
}

}  // namespace

Criterion parse_criterion(const std::string& name) {
  return parse_enum(name, kCriterionNames, "criterion");
}
const char* criterion_name(Criterion c) { return enum_name(c, kCriterionNames); }
const char* mlp_criterion_name(MlpCriterion c) { return enum_name(c, kMlpCriterionNames); }
Centering parse_centering(const std::string& name) {
  return parse_enum(name, kCenteringNames, "centering");
}
const char* centering_name(Centering c) { return enum_name(c, kCenteringNames); }

std::vector<torch::Tensor> Statistics::tensors() {
  std::vector<torch::Tensor> out;
  for (auto& b : blocks) {
    for (auto* t : {&b.scatter_v, &b.scatter_qk, &b.moment, &b.weighted_sum, &b.weight, &b.fo, &b.so, &b.mlp_fo,
                    &b.mlp_so})
      if (t->defined()) out.push_back(*t);
  }
  out.push_back(images);
  return out;
}

BlockStatistics make_block_statistics(int64_t block, int64_t heads, int64_t dims, int64_t mlp, torch::Device device) {
  const auto o = torch::TensorOptions().dtype(kF64).device(device);
  BlockStatistics b;
  b.block = block;
  b.heads = heads;
  b.dims = dims;
  b.mlp = mlp;
  if (dims > 0) {
    const int64_t H = heads, a = dims;
    b.scatter_v = torch::zeros({H, a, a}, o);
    b.scatter_qk = torch::zeros({H, a, a}, o);
    b.moment = torch::zeros({3, H, a, a}, o);
    b.weighted_sum = torch::zeros({3, H, a}, o);
    b.weight = torch::zeros({3, H}, o);
    b.fo = torch::zeros({3, H, a}, o);
    b.so = torch::zeros({3, H, a}, o);
  }
  if (mlp > 0) {
    b.mlp_fo = torch::zeros({mlp}, o);
    b.mlp_so = torch::zeros({mlp}, o);
  }
  return b;
}

Statistics make_statistics(const models::ElasticModelImpl& model, torch::Device device) {
  const auto specs = models::block_specs(model.config());
  const auto widths = model.widths();
  Statistics s;
  for (size_t i = 0; i < specs.size(); ++i)
    s.blocks.push_back(make_block_statistics(specs[i].index, specs[i].num_heads, widths[i].attn, widths[i].mlp, device));
  s.images = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  return s;
}

void accumulate(Statistics& stats, const importance::ProbedBatch& batch) {
  torch::NoGradGuard no_grad;
  // Element-wise products stay in the probes' precision (float32 features and gradients: their
  // product is exact to float32 rounding); every sum and the matrix products are float64. Tokens are
  // processed in chunks of ~8 MB of float64 features: small enough to stay in cache and to be served
  // from the heap (glibc hands larger blocks to fresh mmap'ed, page-faulting memory every time).
  for (size_t i = 0; i < batch.qkv.size(); ++i) {
    auto& b = stats.blocks.at(static_cast<size_t>(batch.qkv_blocks.at(i)));
    const int64_t H = b.heads, a = b.dims;
    SKD_CHECK(b.dims > 0 && batch.qkv[i].size(-1) == 3 * H * a, "qkv probe of block ", b.block);
    const auto f_all = batch.qkv[i].reshape({-1, 3 * H * a});  // [N, 3·H·a], N = all tokens of the batch
    const auto g_all = batch.qkv_grad[i].reshape({-1, 3 * H * a});
    const int64_t N = f_all.size(0);
    const int64_t chunk = std::max<int64_t>(64, (int64_t{1} << 20) / (3 * H * a));
    const auto o = torch::TensorOptions().dtype(kF64).device(f_all.device());
    auto moment = torch::zeros({3 * H, a, a}, o), wx = torch::zeros({3 * H, a}, o);
    auto wsum = torch::zeros({3 * H}, o), xsum = torch::zeros({3 * H, a}, o);
    for (int64_t start = 0; start < N; start += chunk) {
      const int64_t n = std::min(chunk, N - start);
      auto f = f_all.narrow(0, start, n), g = g_all.narrow(0, start, n);
      auto p = importance::accumulate_taylor(f, g, b.fo, b.so);  // |g ⊙ f| [n, 3·H·a]
      auto w = p.view({n, 3 * H, a}).mean(-1).to(kF64).t().contiguous();       // [3H, n] token weights
      auto x = f.reshape({n, 3 * H, a}).to(kF64).permute({1, 0, 2}).contiguous();  // [3H, n, a]
      auto xw = x * w.unsqueeze(-1);
      moment += torch::bmm(xw.transpose(1, 2), x);  // Σ w x xᵀ
      wx += xw.sum(1);
      wsum += w.sum(1);
      xsum += x.sum(1);
    }
    b.moment += moment.view({3, H, a, a});
    b.weighted_sum += wx.view({3, H, a});
    b.weight += wsum.view({3, H});
    // Centred by this batch's unweighted mean μ: Σ w (x-μ)(x-μ)ᵀ = M − μ(Σwx)ᵀ − (Σwx)μᵀ + (Σw) μμᵀ
    auto mu = xsum / static_cast<double>(N);
    auto mu_wx = mu.unsqueeze(-1) * wx.unsqueeze(-2);
    auto scatter = (moment - mu_wx - mu_wx.transpose(-1, -2) +
                    wsum.view({-1, 1, 1}) * (mu.unsqueeze(-1) * mu.unsqueeze(-2)))
                       .view({3, H, a, a});
    b.scatter_qk += scatter[0] + scatter[1];
    b.scatter_v += scatter[2];
  }
  for (size_t i = 0; i < batch.mlp_act.size(); ++i) {
    auto& b = stats.blocks.at(static_cast<size_t>(batch.mlp_blocks.at(i)));
    SKD_CHECK(b.mlp > 0 && batch.mlp_act[i].size(-1) == b.mlp, "mlp probe of block ", b.block);
    importance::accumulate_taylor(batch.mlp_act[i].reshape({-1, b.mlp}), batch.mlp_grad[i].reshape({-1, b.mlp}),
                                  b.mlp_fo, b.mlp_so);
  }
  stats.images += batch.images;
}

bool needs_data(const ConvertOptions& options) {
  return attention_needs_data(options.criterion) || mlp_needs_data(resolve_mlp(options));
}

std::vector<BlockTransform> compute_transforms(const models::ElasticModelImpl& model, const Statistics* stats,
                                               const ConvertOptions& options) {
  const auto& config = model.config();
  const auto specs = models::block_specs(config);
  const auto widths = model.widths();
  const MlpCriterion mlp = resolve_mlp(options);
  if ((attention_needs_data(options.criterion) || mlp_needs_data(mlp)) && !stats)
    throw ParameterError([=](const KeyNamer& name) {
      return cat(name("criterion"), " ", criterion_name(options.criterion), " / ", name("mlp_criterion"), " ",
                 mlp_criterion_name(mlp), " needs proxy data (", name("data"), ")");
    });
  const auto params = parameter_map(model);
  std::vector<BlockTransform> out;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& spec = specs[i];
    const std::string prefix = models::block_prefix(config, spec);
    const BlockStatistics* bs = stats ? &stats->blocks.at(i) : nullptr;
    BlockTransform t;
    t.block = spec.index;
    const int64_t H = spec.num_heads, a = widths[i].attn, m = widths[i].mlp;
    if (a > 0) {
      torch::Tensor cv, cqk;
      if (bs) {
        std::tie(cv, cqk) = covariances(*bs, options.centering);
        if (!torch::isfinite(bs->fo).all().item<bool>() || !torch::isfinite(cv).all().item<bool>() ||
            !torch::isfinite(cqk).all().item<bool>())
          throw std::runtime_error(cat("WPAC: block ", spec.index,
                                       ": attention statistics are not finite (NaN/Inf activations or gradients)"));
      }
      switch (options.criterion) {
        case Criterion::WPAC: {
          auto m = bs->moment.to(torch::kCPU).diagonal(0, 2, 3).sum(-1);  // [3, H] traces
          auto pv = principal_axes(cv, m[2], spec.index, "V");
          auto pqk = principal_axes(cqk, m[0] + m[1], spec.index, "Q/K");
          t.v_basis = pv.basis;
          t.qk_basis = pqk.basis;
          t.degenerate_heads = pv.degenerate;
          for (auto h : pqk.degenerate)
            if (std::find(t.degenerate_heads.begin(), t.degenerate_heads.end(), h) == t.degenerate_heads.end())
              t.degenerate_heads.push_back(h);
          break;
        }
        case Criterion::TAYLOR:
        case Criterion::TAYLOR2: {
          auto s = (options.criterion == Criterion::TAYLOR ? bs->fo : bs->so).to(torch::kCPU);
          if (!torch::isfinite(s).all().item<bool>())
            throw std::runtime_error(cat("block ", spec.index, ": Taylor scores are not finite"));
          t.qk_basis = stack_orders(H, [&](int64_t h) { return descending_order(s[0][h] + s[1][h]); });
          t.v_basis = stack_orders(H, [&](int64_t h) { return descending_order(s[2][h]); });
          break;
        }
        case Criterion::MAGNITUDE: {
          auto w = params.at(prefix + "attn.qkv.weight").detach().to(torch::kCPU, kF64);
          auto norms = w.view({3, H, a, -1}).norm(2, -1);  // [3, H, a]
          t.qk_basis = stack_orders(H, [&](int64_t h) { return descending_order(norms[0][h] + norms[1][h]); });
          t.v_basis = stack_orders(H, [&](int64_t h) { return descending_order(norms[2][h]); });
          break;
        }
        case Criterion::RANDOM:
          t.qk_basis = stack_orders(H, [&](int64_t h) { return random_order(a, mix_seed(options.seed, spec.index, h, 0)); });
          t.v_basis = stack_orders(H, [&](int64_t h) { return random_order(a, mix_seed(options.seed, spec.index, h, 1)); });
          break;
      }
      if (bs) {
        t.v_eigenvalues = descending_eigenvalues(cv);
        t.qk_eigenvalues = descending_eigenvalues(cqk);
        t.v_ordered = ordered_variance(cv, t.v_basis);
        t.qk_ordered = ordered_variance(cqk, t.qk_basis);
      }
    }
    if (m > 0) {
      switch (mlp) {
        case MlpCriterion::TAYLOR:
        case MlpCriterion::TAYLOR2: {
          auto s = mlp == MlpCriterion::TAYLOR ? bs->mlp_fo : bs->mlp_so;
          if (!torch::isfinite(s).all().item<bool>())
            throw std::runtime_error(cat("block ", spec.index, ": MLP Taylor scores are not finite"));
          t.mlp_order = descending_order(s);
          break;
        }
        case MlpCriterion::MAGNITUDE:
          t.mlp_order = descending_order(params.at(prefix + "mlp.fc1.weight").detach().to(torch::kCPU, kF64).norm(2, 1));
          break;
        case MlpCriterion::RANDOM: t.mlp_order = random_order(m, mix_seed(options.seed, spec.index, 0, 2)); break;
        case MlpCriterion::KEEP:
        case MlpCriterion::AUTO: break;
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

void apply_transforms(models::ElasticModelImpl& model, const std::vector<BlockTransform>& transforms) {
  torch::NoGradGuard no_grad;
  const auto& config = model.config();
  const auto specs = models::block_specs(config);
  const auto widths = model.widths();
  auto params = parameter_map(model);
  SKD_CHECK(transforms.size() == specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& t = transforms[i];
    const std::string prefix = models::block_prefix(config, specs[i]);
    const int64_t H = specs[i].num_heads, a = widths[i].attn;
    if (a > 0 && (t.v_basis.defined() || t.qk_basis.defined())) {
      auto& w = params.at(prefix + "attn.qkv.weight");
      const auto dev = w.device();
      auto eye = torch::eye(a, torch::TensorOptions().dtype(kF64)).expand({H, a, a});
      auto qk = (t.qk_basis.defined() ? t.qk_basis : eye).to(dev, kF64);
      auto v = (t.v_basis.defined() ? t.v_basis : eye).to(dev, kF64);
      auto rotate_rows = [&](torch::Tensor& p) {  // [3·H·a, ...] rows of q, k, v per head
        auto x = p.to(kF64).reshape({3, H, a, -1});
        auto nq = torch::matmul(qk.transpose(1, 2), x[0]);
        auto nk = torch::matmul(qk.transpose(1, 2), x[1]);
        auto nv = torch::matmul(v.transpose(1, 2), x[2]);
        p.copy_(torch::stack({nq, nk, nv}).reshape(p.sizes()));
      };
      rotate_rows(w);
      auto it = params.find(prefix + "attn.qkv.bias");
      if (it != params.end()) rotate_rows(it->second);
      auto& proj = params.at(prefix + "attn.proj.weight");  // [C, H·a]
      const int64_t C = proj.size(0);
      auto pw = proj.to(kF64).view({C, H, a}).permute({1, 0, 2});  // [H, C, a]
      proj.copy_(torch::matmul(pw, v).permute({1, 0, 2}).reshape({C, H * a}));
    }
    if (widths[i].mlp > 0 && t.mlp_order.defined()) {
      auto& fc1w = params.at(prefix + "mlp.fc1.weight");
      auto& fc1b = params.at(prefix + "mlp.fc1.bias");
      auto& fc2w = params.at(prefix + "mlp.fc2.weight");
      auto order = t.mlp_order.to(fc1w.device());
      fc1w.copy_(fc1w.index_select(0, order));
      fc1b.copy_(fc1b.index_select(0, order));
      fc2w.copy_(fc2w.index_select(1, order));
    }
  }
}

namespace {

double transform_checksum(const std::vector<BlockTransform>& ts) {
  double s = 0;
  int64_t k = 1;
  for (const auto& t : ts) {
    for (const auto* x : {&t.v_basis, &t.qk_basis}) {
      if (!x->defined()) continue;
      auto flat = x->to(torch::kCPU, kF64).flatten();
      auto ramp = torch::arange(flat.numel(), torch::TensorOptions().dtype(kF64)) * 1e-3 + static_cast<double>(k++);
      s += (flat * ramp).sum().item<double>();
    }
    if (t.mlp_order.defined()) {
      auto o = t.mlp_order.to(torch::kCPU, kF64);
      s += (o * torch::arange(o.numel(), torch::TensorOptions().dtype(kF64))).sum().item<double>() * 1e-6;
    }
  }
  return s;
}

BlockReport block_report(const models::ModelConfig& config, const models::BlockSpec& spec,
                         const models::BlockWidth& width, const BlockTransform& t, const Statistics* stats) {
  BlockReport r;
  r.block = spec.index;
  r.prefix = models::block_prefix(config, spec);
  r.heads = spec.num_heads;
  r.head_dims = width.attn;
  r.mlp_units = width.mlp;
  if (width.attn > 0 && t.v_eigenvalues.defined()) {
    r.attention.emplace();
    for (int64_t h = 0; h < spec.num_heads; ++h) {
      HeadReport head;
      head.head = h;
      head.degenerate =
          std::find(t.degenerate_heads.begin(), t.degenerate_heads.end(), h) != t.degenerate_heads.end();
      head.v = {to_vector(t.v_eigenvalues[h]), captured(t.v_ordered[h]), captured(t.v_eigenvalues[h])};
      head.qk = {to_vector(t.qk_eigenvalues[h]), captured(t.qk_ordered[h]), captured(t.qk_eigenvalues[h])};
      r.attention->push_back(std::move(head));
    }
  }
  if (stats) {
    const auto& b = stats->blocks.at(static_cast<size_t>(spec.index));
    r.taylor_fo = BlockReport::ModuleTaylor{b.fo.defined() ? b.fo.sum().item<double>() : 0.0,
                                            b.mlp_fo.defined() ? b.mlp_fo.sum().item<double>() : 0.0};
    if (width.mlp > 0) {
      auto fo = b.mlp_fo.to(torch::kCPU);
      if (t.mlp_order.defined()) fo = fo.index_select(0, t.mlp_order);
      r.mlp_taylor_captured = captured(fo);
    }
  }
  return r;
}

// Mean over blocks and heads of the variance captured by the leading dims of V (or of Q/K).
Captured mean_captured(const std::vector<BlockReport>& blocks, bool qk) {
  Captured out{};
  for (size_t i = 0; i < out.size(); ++i) {
    double sum = 0;
    int64_t n = 0;
    for (const auto& b : blocks) {
      if (!b.attention) continue;
      for (const auto& h : *b.attention) {
        sum += (qk ? h.qk : h.v).captured[i];
        ++n;
      }
    }
    out[i] = n ? sum / static_cast<double>(n) : 0.0;
  }
  return out;
}

nlohmann::json spectrum_json(const SpectrumReport& s) {
  return {{"eigenvalues", s.eigenvalues},
          {"captured", captured_json(s.captured)},
          {"captured_by_pca", captured_json(s.captured_by_pca)}};
}

nlohmann::json block_json(const BlockReport& b) {
  nlohmann::json j{{"block", b.block}, {"prefix", b.prefix}, {"heads", b.heads}, {"head_dims", b.head_dims},
                   {"mlp_units", b.mlp_units}};
  if (b.attention) {
    nlohmann::json heads = nlohmann::json::array();
    for (const auto& h : *b.attention)
      heads.push_back({{"head", h.head}, {"degenerate", h.degenerate}, {"v", spectrum_json(h.v)},
                       {"qk", spectrum_json(h.qk)}});
    j["attention"] = heads;
  }
  if (b.taylor_fo) j["taylor_fo"] = {{"attention", b.taylor_fo->attention}, {"mlp", b.taylor_fo->mlp}};
  if (b.mlp_taylor_captured) j["mlp"] = {{"taylor_captured", captured_json(*b.mlp_taylor_captured)}};
  return j;
}

nlohmann::json heads_json(const std::vector<HeadIndex>& heads) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& h : heads) j.push_back({{"block", h.block}, {"head", h.head}});
  return j;
}

// This rank's proxy pass folded into statistics, summed over the ranks; fills report.proxy.
Statistics proxy_statistics(models::ElasticModelImpl& model, const data::Dataset& dataset,
                            const ConvertOptions& options, MlpCriterion mlp, distributed::Communicator* comm,
                            const importance::ProxyProgress& progress, importance::ProxyPassResult& pass,
                            ConversionReport& report) {
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->world_size() : 1;
  const auto indices = importance::proxy_indices(dataset.size(), options.proxy.samples, options.proxy.seed);
  const auto batches = importance::proxy_batches(indices, options.proxy.batch_size, rank, world);
  Statistics stats = make_statistics(model, options.proxy.device);
  pass = importance::run_proxy_pass(
      model, dataset, batches, options.proxy, attention_needs_data(options.criterion), mlp_needs_data(mlp),
      [&](const importance::ProbedBatch& b) { accumulate(stats, b); }, progress);
  if (comm && world > 1) {
    auto tensors = stats.tensors();
    comm->all_reduce_sum(tensors);
  }
  const int64_t images = stats.images.item<int64_t>();
  SKD_CHECK(images == options.proxy.samples, "proxy images ", images, " != ", options.proxy.samples);
  report.proxy = ProxyReport{importance::cost_name(options.proxy.cost),
                             centering_name(options.centering),
                             images,
                             options.proxy.samples,
                             options.proxy.batch_size,
                             (images + options.proxy.batch_size - 1) / options.proxy.batch_size,
                             options.proxy.seed,
                             dataset.describe()};
  return stats;
}

// The inputs of the function check and the logits before the conversion: the first images of the
// first proxy batch (at most 8: a sanity check, not a second proxy pass), or seeded random inputs
// when there is no proxy data.
std::pair<torch::Tensor, torch::Tensor> check_batch(models::ElasticModelImpl& model,
                                                    const importance::ProxyPassResult& pass,
                                                    const ConvertOptions& options) {
  const auto& config = model.config();
  torch::Tensor images = pass.first_images, before;
  torch::NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  if (!images.defined()) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed + 17);
    images = torch::randn({2, config.in_chans, config.img_size, config.img_size}, gen,
                          torch::TensorOptions().dtype(torch::kFloat32))
                 .to(options.proxy.device);
    before = model.forward(images);
  } else {
    const int64_t n = std::min<int64_t>(8, images.size(0));
    images = images.narrow(0, 0, n);
    before = pass.first_logits.narrow(0, 0, n);
  }
  model.train(was_training);
  return {images, before};
}

FunctionCheck check_function(models::ElasticModelImpl& model, const torch::Tensor& images,
                             const torch::Tensor& before, bool proxy_images) {
  torch::NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  auto after = model.forward(images);
  model.train(was_training);
  const double diff = (after - before).abs().max().item<double>();
  const double mag = before.abs().max().item<double>();
  if (!std::isfinite(diff))
    throw std::runtime_error("the converted model produces non-finite logits (a bug or degenerate statistics)");
  if (diff > 1e-3 * std::max(1.0, mag))
    log_warn("function check: converted logits differ from the original by up to ", diff, " (max |logit| ", mag,
             ")");
  return {images.size(0), proxy_images, diff, mag};
}

// Every rank must have computed the same transforms (they all hold the same all-reduced statistics).
void check_ranks_agree(const std::vector<BlockTransform>& transforms, distributed::Communicator& comm) {
  const int world = comm.world_size();
  const double local = transform_checksum(transforms);
  auto t = torch::tensor({local}, torch::TensorOptions().dtype(kF64));
  std::vector<torch::Tensor> v{t};
  comm.all_reduce_sum(v);
  const double total = v[0].item<double>();
  if (std::abs(total - world * local) > 1e-9 * std::max(1.0, std::abs(world * local)))
    throw std::runtime_error(cat("WPAC: rank ", comm.rank(), " computed a transform that differs from the other ",
                                 "ranks' (checksum ", local, ", mean over ranks ", total / world, ")"));
}

}  // namespace

nlohmann::json ConversionReport::options_json() const {
  nlohmann::json j{{"criterion", criterion}, {"mlp_criterion", mlp_criterion}};
  if (proxy) {
    j["cost"] = proxy->cost;
    j["centering"] = proxy->centering;
    j["proxy"] = {{"images", proxy->images},         {"requested", proxy->requested}, {"batch_size", proxy->batch_size},
                  {"batches", proxy->batches},       {"seed", proxy->seed},           {"dataset", proxy->dataset},
                  {"transform", "eval"}};
  }
  if (seed) j["seed"] = *seed;
  return j;
}

nlohmann::json ConversionReport::to_json() const {
  nlohmann::json j = options_json();
  j["model"] = model;
  j["world_size"] = world_size;
  j["function_check"] = {{"images", function_check.images},
                         {"inputs", function_check.proxy_images ? "first proxy images" : "random"},
                         {"max_abs_logit_diff", function_check.max_abs_logit_diff},
                         {"max_abs_logit", function_check.max_abs_logit}};
  j["degenerate_heads"] = heads_json(degenerate_heads);
  if (mean_captured_v && mean_captured_qk)
    j["mean_captured"] = {{"v", captured_json(*mean_captured_v)}, {"qk", captured_json(*mean_captured_qk)}};
  nlohmann::json bj = nlohmann::json::array();
  for (const auto& b : blocks) bj.push_back(block_json(b));
  j["blocks"] = bj;
  j["seconds"] = {{"statistics", seconds.statistics}, {"transform", seconds.transform}, {"total", seconds.total},
                  {"proxy_data", seconds.proxy_data},  {"proxy_model", seconds.proxy_model},
                  {"proxy_accumulate", seconds.proxy_accumulate}};
  if (!source.empty()) j["source"] = source;
  if (!artifact.empty()) j["artifact"] = artifact;
  return j;
}

ConversionReport convert(models::ElasticModelImpl& model, const data::Dataset* dataset, const ConvertOptions& options,
                         distributed::Communicator* comm, const importance::ProxyProgress& progress) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const int world = comm ? comm->world_size() : 1;
  const MlpCriterion mlp = resolve_mlp(options);
  const bool with_data = needs_data(options);
  if (with_data && !dataset)
    throw ParameterError([=](const KeyNamer& name) {
      return cat(name("data"), " is required for ", name("criterion"), " ", criterion_name(options.criterion),
                 " (with ", name("mlp_criterion"), " ", mlp_criterion_name(mlp), ")");
    });
  const auto& config = model.config();
  const auto specs = models::block_specs(config);
  const auto widths = model.widths();

  ConversionReport report;
  report.criterion = criterion_name(options.criterion);
  report.mlp_criterion = mlp_criterion_name(mlp);
  report.model = config.name;
  report.world_size = world;
  if (options.criterion == Criterion::RANDOM || mlp == MlpCriterion::RANDOM) report.seed = options.seed;

  std::optional<Statistics> stats;
  importance::ProxyPassResult pass;
  if (with_data) stats = proxy_statistics(model, *dataset, options, mlp, comm, progress, pass, report);
  const auto t1 = clock::now();

  const auto [check_images, before] = check_batch(model, pass, options);
  const auto transforms = compute_transforms(model, stats ? &*stats : nullptr, options);
  if (comm && world > 1) check_ranks_agree(transforms, *comm);
  apply_transforms(model, transforms);
  const auto t2 = clock::now();
  report.function_check = check_function(model, check_images, before, pass.first_images.defined());

  for (size_t i = 0; i < specs.size(); ++i) {
    report.blocks.push_back(block_report(config, specs[i], widths[i], transforms[i], stats ? &*stats : nullptr));
    for (auto h : transforms[i].degenerate_heads) report.degenerate_heads.push_back({specs[i].index, h});
  }
  if (!report.degenerate_heads.empty())
    log_warn("WPAC: ", report.degenerate_heads.size(), " head(s) have no importance-weighted variance (constant ",
             "features or zero importance) and were left unrotated: ", heads_json(report.degenerate_heads).dump());
  if (stats && attention_needs_data(options.criterion)) {
    report.mean_captured_v = mean_captured(report.blocks, false);
    report.mean_captured_qk = mean_captured(report.blocks, true);
  }
  const auto t3 = clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  report.seconds = {secs(t0, t1), secs(t1, t2), secs(t0, t3), pass.seconds_data, pass.seconds_model,
                    pass.seconds_visit};
  return report;
}

}  // namespace skd::wpac
