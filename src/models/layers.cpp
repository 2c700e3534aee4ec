#include "layers.h"

#include <torch/version.h>

#include "skd/core/error.h"
#include "skd/models/batched_matmul.h"

// scaled_dot_product_attention takes an explicit scale from LibTorch 2.1 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define SKD_HAVE_SDPA 1
#else
#define SKD_HAVE_SDPA 0
#endif

namespace skd::models {

bool fused_attention_available() { return SKD_HAVE_SDPA != 0; }

}  // namespace skd::models

namespace skd::models::detail {

namespace {
thread_local bool skip_init = false;
}

SkipInit::SkipInit() : previous_(skip_init) { skip_init = true; }
SkipInit::~SkipInit() { skip_init = previous_; }

torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias) {
  if (!skip_init) return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
  // A 1x1 Linear initialises one weight; its parameters then get their real (uninitialised)
  // storage. (0x0 would not do: kaiming_uniform refuses a zero fan-in.)
  torch::nn::Linear l(torch::nn::LinearOptions(1, 1).bias(bias));
  torch::NoGradGuard g;
  l->weight.set_data(torch::empty({out, in}));
  if (bias) l->bias.set_data(torch::empty({out}));
  l->options.in_features(in).out_features(out);
  return l;
}

void init_linear(torch::nn::Linear& l) {
  if (skip_init) return;
  torch::NoGradGuard g;
  l->weight.normal_(0.0, 0.02);
  if (l->bias.defined()) l->bias.zero_();
}

torch::Tensor zero_touch(torch::nn::Module& module) {
  torch::Tensor acc;
  for (auto& p : module.parameters()) {
    auto s = p.sum();
    acc = acc.defined() ? acc + s : s;
  }
  return acc.defined() ? acc * 0.0 : acc;
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads_, int64_t stored_, bool qkv_bias,
                             int64_t rel_window)
    : heads(heads_), stored(stored_) {
  qkv = register_module("qkv", make_linear(dim, 3 * heads * stored, qkv_bias));
  proj = register_module("proj", make_linear(heads * stored, dim));
  init_linear(qkv);
  init_linear(proj);
  if (rel_window > 0) {
    relative_position_bias_table = register_parameter(
        "relative_position_bias_table",
        torch::empty({(2 * rel_window - 1) * (2 * rel_window - 1), heads}).normal_(0.0, 0.02));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, int64_t a, double scale, const ForwardOptions& opt,
                                     const torch::Tensor& rel_index, const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1);
  const auto w = slice_qkv_rows(qkv->weight, heads, a);
  const auto b = qkv->bias.defined() ? slice_qkv_rows(qkv->bias, heads, a) : torch::Tensor();
  auto f = linear(x, w, b);
  Probes* probes = opt.probes;
  if (probes && probes->capture_qkv) {
    if (probes->retain_grad && f.requires_grad()) f.retain_grad();
    probes->qkv.push_back(f);
  }
  // unbind, not three selects: its gradient is one stack of the three, where each select's would be
  // a zero-filled [3, B, H, T, a] tensor and the engine would add the three.
  const auto parts = f.reshape({B, T, 3, heads, a}).permute({2, 0, 3, 1, 4}).unbind(0);
  // The additive terms of the logits: Swin's relative-position bias [1, H, T, T] and, in shifted
  // blocks, the window mask [nW, T, T] (windows of one image are consecutive in B*).
  torch::Tensor bias;
  if (relative_position_bias_table.defined())
    bias = relative_position_bias_table.index_select(0, rel_index).view({T, T, heads}).permute({2, 0, 1}).unsqueeze(0);
  torch::Tensor out;
#if SKD_HAVE_SDPA
  if (opt.attention == AttentionKernel::FUSED) {
    torch::Tensor add;
    if (mask.defined()) {
      const int64_t nw = mask.size(0);
      add = mask.unsqueeze(1).unsqueeze(0);  // [1, nW, 1, T, T]
      if (bias.defined()) add = add + bias.unsqueeze(0);
      add = add.expand({B / nw, nw, heads, T, T}).reshape({B, heads, T, T});
    } else {
      add = bias;
    }
    if (add.defined()) add = add.to(parts[0].scalar_type());
    const c10::optional<at::Tensor> mask_arg = add.defined() ? c10::optional<at::Tensor>(add) : c10::nullopt;
    out = at::scaled_dot_product_attention(parts[0], parts[1], parts[2], mask_arg, 0.0, false, scale);
  }
#endif
  if (!out.defined()) {
    auto q = parts[0] * scale, k = parts[1], v = parts[2];
    auto attn = batched_matmul(q, k.transpose(-2, -1));
    if (bias.defined()) attn = attn + bias;
    if (mask.defined()) {
      const int64_t nw = mask.size(0);
      attn = (attn.view({-1, nw, heads, T, T}) + mask.unsqueeze(1).unsqueeze(0)).view({-1, heads, T, T});
    }
    out = batched_matmul(attn.softmax(-1), v);
  }
  out = out.transpose(1, 2).reshape({B, T, heads * a});
  return linear(out, slice_proj_cols(proj->weight, heads, a), proj->bias);
}

MlpImpl::MlpImpl(int64_t dim, int64_t stored_) : stored(stored_) {
  fc1 = register_module("fc1", make_linear(dim, stored));
  fc2 = register_module("fc2", make_linear(stored, dim));
  init_linear(fc1);
  init_linear(fc2);
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x, int64_t m, Probes* probes) {
  const bool full = m == stored;
  auto h = linear(x, full ? fc1->weight : fc1->weight.narrow(0, 0, m),
                  full ? fc1->bias : fc1->bias.narrow(0, 0, m));
  h = torch::gelu(h);  // exact erf form, as timm's nn.GELU()
  if (probes && probes->capture_mlp_act) {
    if (probes->retain_grad && h.requires_grad()) h.retain_grad();
    probes->mlp_act.push_back(h);
  }
  return linear(h, full ? fc2->weight : fc2->weight.narrow(1, 0, m), fc2->bias);
}

}  // namespace skd::models::detail
