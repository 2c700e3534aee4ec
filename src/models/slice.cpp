#include "skd/models/slice.h"

#include <cmath>
#include <set>

#include "layers.h"
#include "skd/core/error.h"

namespace skd::models {

ElasticModel slice_model(const ElasticModelImpl& model, const Widths& widths) {
  ModelConfig target = model.config();
  validate_widths(target, widths, "slice widths");
  const Widths stored = model.widths();
  for (size_t i = 0; i < widths.size(); ++i)
    if (widths[i].attn > stored[i].attn || widths[i].mlp > stored[i].mlp)
      throw std::invalid_argument(cat("slice widths: block ", i, " asks for (", widths[i].attn, ", ",
                                      widths[i].mlp, ") but the model holds (", stored[i].attn, ", ",
                                      stored[i].mlp, ")"));
  target.widths = widths;
  // Every parameter of `out` is overwritten below (each one is either a slice or a checked copy), so
  // its Linear layers skip initialisation: for DeiT-B that was most of the extraction time.
  ElasticModel out = [&] {
    detail::SkipInit skip;
    return create_model(target);
  }();
  const auto src = model.named_parameters(true);
  auto dst = out->named_parameters(true);
  torch::NoGradGuard guard;
  std::set<std::string> done;
  auto copy = [&](const std::string& key, const torch::Tensor& value) {
    auto* d = dst.find(key);
    SKD_CHECK(d != nullptr, "target model lacks ", key);
    d->copy_(value);
    done.insert(key);
  };
  // Block parameters: leading `a` dims of every head in q, k, v (rows of qkv, columns of proj),
  // leading `m` MLP units (rows of fc1, columns of fc2). Norms and proj/fc2 biases are copied.
  for (const auto& s : block_specs(target)) {
    const std::string p = block_prefix(target, s);
    const int64_t a = widths[s.index].attn, m = widths[s.index].mlp;
    if (a > 0) {
      copy(p + "attn.qkv.weight", slice_qkv_rows(src[p + "attn.qkv.weight"], s.num_heads, a));
      if (src.find(p + "attn.qkv.bias"))
        copy(p + "attn.qkv.bias", slice_qkv_rows(src[p + "attn.qkv.bias"], s.num_heads, a));
      copy(p + "attn.proj.weight", slice_proj_cols(src[p + "attn.proj.weight"], s.num_heads, a));
    }
    if (m > 0) {
      copy(p + "mlp.fc1.weight", src[p + "mlp.fc1.weight"].narrow(0, 0, m));
      copy(p + "mlp.fc1.bias", src[p + "mlp.fc1.bias"].narrow(0, 0, m));
      copy(p + "mlp.fc2.weight", src[p + "mlp.fc2.weight"].narrow(1, 0, m));
    }
  }
  // A folded model's query rows carry sqrt(a) of their stored width a; the slice runs at 1/sqrt(a')
  // of its own width a', so its rows are rescaled by sqrt(a' / a) to keep the function.
  if (target.attn_scale_folded) {
    for (const auto& s : block_specs(target)) {
      const int64_t a = widths[s.index].attn, a_src = stored[s.index].attn;
      if (a == 0 || a == a_src) continue;
      const double f = std::sqrt(static_cast<double>(a) / static_cast<double>(a_src));
      const std::string p = block_prefix(target, s);
      for (const char* name : {"attn.qkv.weight", "attn.qkv.bias"})
        if (auto* d = dst.find(p + name)) d->narrow(0, 0, s.num_heads * a).mul_(f);
    }
  }
  for (auto& d : dst) {
    if (done.count(d.key())) continue;
    const auto* v = src.find(d.key());
    SKD_CHECK(v != nullptr && v->sizes() == d.value().sizes(), "cannot copy ", d.key());
    d.value().copy_(*v);
  }
  return out;
}

Widths keep_fraction(const Widths& stored, double attn_keep, double mlp_keep) {
  auto cut = [](int64_t width, double keep, const char* key, size_t block) -> int64_t {
    if (!(keep > 0.0 && keep <= 1.0)) throw ParameterError(key, cat(" must be in (0, 1] (got ", keep, ")"));
    if (width == 0) return 0;
    const auto kept = static_cast<int64_t>(std::floor(static_cast<double>(width) * keep + 1e-9));
    if (kept < 1)
      throw ParameterError(key, cat(" ", keep, " keeps nothing of block ", block, " (", width, " wide)"));
    return kept;
  };
  Widths out = stored;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].attn = cut(stored[i].attn, attn_keep, "attn_keep", i);
    out[i].mlp = cut(stored[i].mlp, mlp_keep, "mlp_keep", i);
  }
  return out;
}

}  // namespace skd::models

namespace skd::models {

void fold_attention_scale(ElasticModelImpl& model) {
  ModelConfig& c = model.config_;
  if (c.attn_scale_folded) return;
  const Widths stored = model.widths();
  auto params = model.named_parameters(true);
  torch::NoGradGuard guard;
  for (const auto& s : block_specs(c)) {
    const int64_t a = stored[s.index].attn;
    if (a == 0) continue;
    const double f = attention_scale(c, s) * std::sqrt(static_cast<double>(a));
    const std::string p = block_prefix(c, s);
    for (const char* name : {"attn.qkv.weight", "attn.qkv.bias"})
      if (auto* t = params.find(p + name)) t->narrow(0, 0, s.num_heads * a).mul_(f);
  }
  c.attn_scale = 0.0;
  c.attn_scale_folded = true;
}

}  // namespace skd::models
