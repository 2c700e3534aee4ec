// Closed-form MACs and parameter counts for any elastic ViT/Swin, in two named conventions:
//  - paper: the official code's ptflops rules (docs/macs.md): Linear/Conv (bias counted per output
//    position), LayerNorm 2 per element, GELU 1 per element; attention matmuls, softmax, adds not
//    counted. DeiT-Ti/S/B = 1,082,681,704 / 4,256,878,312 / 16,879,819,240.
//  - full: paper + the two attention matmuls (q·kᵀ and attn·v).
// Swin uses the same rules (see docs/macs.md): patch-embed norm and PatchMerging norm/reduction
// are counted, the relative-position-bias add and the window mask are not; attention matmuls
// (full only) cost window² per token per head dim.
#pragma once

#include <cstdint>
#include <string>

#include "skd/models/config.h"

namespace skd::models {

struct ModelCost {
  int64_t macs_paper = 0;
  int64_t macs_full = 0;
  int64_t params = 0;
};

// Cost of `config` run at `widths` (one per block).
ModelCost macs_count(const ModelConfig& config, const Widths& widths);
// Cost at the stored widths of the config.
ModelCost macs_count(const ModelConfig& config);
// "1.08 GMac" / "897.0 MMac" style string (ptflops rounding: 2 decimals).
std::string macs_format(int64_t macs);

}  // namespace skd::models
