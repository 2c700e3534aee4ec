#include "skd/models/macs.h"

#include <cmath>
#include <cstdio>

namespace skd::models {

namespace {

// Linear layer over `tokens` positions: weights in*out, bias out per position.
int64_t linear_macs(int64_t tokens, int64_t in, int64_t out, bool bias) {
  return tokens * (in * out + (bias ? out : 0));
}

}  // namespace

ModelCost macs_count(const ModelConfig& c, const Widths& widths) {
  validate_widths(c, widths, "MACs widths");
  ModelCost r;
  const int64_t P = (c.img_size / c.patch_size) * (c.img_size / c.patch_size);
  const int64_t C = c.embed_dim;
  const int64_t kernel = c.patch_size * c.patch_size * c.in_chans;
  r.macs_paper += P * kernel * C + P * C;  // patch conv + its bias
  r.params += kernel * C + C;
  if (c.family == Family::VIT) {
    const int64_t N = P + 1;
    r.params += C + N * C;  // cls_token, pos_embed
  } else {
    r.macs_paper += 2 * P * C;  // patch_embed.norm
    r.params += 2 * C;
  }
  int64_t attn_matmuls = 0;
  const auto specs = block_specs(c);
  int64_t prev_stage = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    const int64_t T = s.tokens, D = s.dim, H = s.num_heads;
    if (c.family == Family::SWIN && s.stage != prev_stage) {
      // PatchMerging: norm over 4*(D/2) channels at T tokens, reduction 4*(D/2) -> D, no bias.
      const int64_t in = 2 * D;
      r.macs_paper += 2 * T * in + linear_macs(T, in, D, false);
      r.params += 2 * in + in * D;
      prev_stage = s.stage;
    }
    const int64_t a = widths[i].attn, m = widths[i].mlp;
    if (a > 0) {
      r.macs_paper += 2 * T * D + linear_macs(T, D, 3 * H * a, c.qkv_bias) + linear_macs(T, H * a, D, true);
      r.params += 2 * D + 3 * H * a * D + (c.qkv_bias ? 3 * H * a : 0) + H * a * D + D;
      // q·kᵀ and attn·v: every token attends to `keys` tokens in each head, over a dims.
      const int64_t keys = c.family == Family::VIT ? T : s.window * s.window;
      attn_matmuls += 2 * T * keys * H * a;
      if (c.family == Family::SWIN) r.params += (2 * s.window - 1) * (2 * s.window - 1) * H;
    }
    if (m > 0) {
      r.macs_paper += 2 * T * D + linear_macs(T, D, m, true) + linear_macs(T, m, D, true) + T * m;
      r.params += 2 * D + D * m + m + m * D + D;
    }
  }
  const int64_t last_dim = specs.back().dim, last_tokens = specs.back().tokens;
  r.macs_paper += 2 * last_tokens * last_dim;  // final norm over all tokens
  r.params += 2 * last_dim;
  r.macs_paper += linear_macs(1, last_dim, c.num_classes, true);  // head on the pooled vector
  r.params += last_dim * c.num_classes + c.num_classes;
  r.macs_full = r.macs_paper + attn_matmuls;
  return r;
}

ModelCost macs_count(const ModelConfig& c) { return macs_count(c, stored_widths(c)); }

std::string macs_format(int64_t macs) {
  char buf[64];
  const double x = static_cast<double>(macs);
  if (x >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f GMac", std::round(x / 1e9 * 100) / 100);
  else
    std::snprintf(buf, sizeof buf, "%.2f MMac", std::round(x / 1e6 * 100) / 100);
  return buf;
}

}  // namespace skd::models
