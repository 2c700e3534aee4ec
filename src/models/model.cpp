#include "skd/models/model.h"

#include "skd/core/error.h"
#include "skd/models/swin.h"
#include "skd/models/vit.h"

namespace skd::models {

torch::Tensor ElasticModelImpl::forward(const torch::Tensor& x, const ForwardOptions& opt) {
  return forward_head(forward_features(x, opt), false);
}

void ElasticModelImpl::check_input(const torch::Tensor& x) const {
  const auto& c = config_;
  if (x.dim() != 4 || x.size(1) != c.in_chans || x.size(2) != c.img_size || x.size(3) != c.img_size)
    throw std::invalid_argument(cat("model '", c.name, "' expects input [B, ", c.in_chans, ", ",
                                    c.img_size, ", ", c.img_size, "], got ", x.sizes()));
  if (!x.is_floating_point())
    throw std::invalid_argument(cat("model input must be floating point, got ", x.dtype()));
}

const Widths& ElasticModelImpl::run_widths(const ForwardOptions& opt, Widths& storage) const {
  storage = widths();
  if (!opt.widths) return storage;
  validate_widths(config_, *opt.widths, "forward widths");
  for (size_t i = 0; i < storage.size(); ++i) {
    const auto& w = (*opt.widths)[i];
    if (w.attn > storage[i].attn || w.mlp > storage[i].mlp)
      throw std::invalid_argument(cat("forward widths: block ", i, " asks for (", w.attn, ", ",
                                      w.mlp, ") but the model holds (", storage[i].attn, ", ",
                                      storage[i].mlp, ")"));
  }
  return *opt.widths;
}

torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training) {
  if (rate <= 0 || !training) return x;
  const double keep = 1.0 - rate;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  auto mask = torch::empty(shape, x.options()).bernoulli_(keep);
  return x * mask.div_(keep);
}

double block_drop_path(double rate, int64_t index, int64_t blocks) {
  return blocks <= 1 ? 0.0 : rate * static_cast<double>(index) / static_cast<double>(blocks - 1);
}

ElasticModel create_model(const ModelConfig& config) {
  validate(config);
  if (config.family == Family::VIT) return std::make_shared<VisionTransformerImpl>(config);
  return std::make_shared<SwinTransformerImpl>(config);
}

torch::Tensor slice_qkv_rows(const torch::Tensor& w, int64_t heads, int64_t a) {
  const int64_t rows = w.size(0);
  SKD_CHECK(rows % (3 * heads) == 0, "qkv rows ", rows, " not divisible by 3*", heads);
  const int64_t stored = rows / (3 * heads);
  if (a == stored) return w;
  auto shape = w.sizes().vec();
  std::vector<int64_t> view{3, heads, stored};
  view.insert(view.end(), shape.begin() + 1, shape.end());
  std::vector<int64_t> out{3 * heads * a};
  out.insert(out.end(), shape.begin() + 1, shape.end());
  return w.view(view).narrow(2, 0, a).reshape(out);
}

torch::Tensor slice_proj_cols(const torch::Tensor& w, int64_t heads, int64_t a) {
  const int64_t stored = w.size(1) / heads;
  if (a == stored) return w;
  return w.view({w.size(0), heads, stored}).narrow(2, 0, a).reshape({w.size(0), heads * a});
}

}  // namespace skd::models
