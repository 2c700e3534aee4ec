// Architecture descriptions: ModelConfig (ViT/DeiT or Swin, timm constructor semantics), the
// per-block elastic widths, named configs (deit_tiny ... swin_base) and JSON (timm kwarg names).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace skd::models {

enum class Family { VIT, SWIN };

const char* family_name(Family family);

// Widths of one block: `attn` = leading dims kept in every head for q, k and v (0 = attention
// branch and its LayerNorm removed); `mlp` = leading MLP hidden units kept (0 = MLP removed).
struct BlockWidth {
  int64_t attn = 0;
  int64_t mlp = 0;
  bool operator==(const BlockWidth& o) const { return attn == o.attn && mlp == o.mlp; }
  bool operator!=(const BlockWidth& o) const { return !(*this == o); }
};
using Widths = std::vector<BlockWidth>;

struct ModelConfig {
  Family family = Family::VIT;
  std::string name = "custom";  // registry name when built from one
  int64_t img_size = 224;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t num_classes = 1000;
  int64_t embed_dim = 192;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  // ViT/DeiT
  int64_t depth = 12;
  int64_t num_heads = 3;
  // Swin
  std::vector<int64_t> depths;       // blocks per stage
  std::vector<int64_t> stage_heads;  // heads per stage
  int64_t window_size = 7;
  // LayerNorm eps: 1e-6 for ViT (timm), 1e-5 for Swin.
  double norm_eps = 1e-6;
  // Attention softmax scale; 0 means original_head_dim^-0.5 (fixed from the *original* head dim,
  // kept in every sub-network as the reference does).
  double attn_scale = 0.0;
  // The softmax scale is folded into the query weights (models::fold_attention_scale): every block
  // then runs at the standard 1/sqrt(a) of its stored attention width a (attn_scale stays 0).
  bool attn_scale_folded = false;
  // Widths of the parameters this model holds (one per block, in block order). Empty = full.
  Widths widths;

  int64_t num_blocks() const;
};

// Static description of one block (index over all blocks; Swin blocks are counted across stages).
struct BlockSpec {
  int64_t index = 0;
  int64_t total_blocks = 0;  // blocks in the model (for the drop-path rule)
  int64_t stage = 0;      // Swin stage (0 for ViT)
  int64_t dim = 0;        // channels
  int64_t num_heads = 0;
  int64_t head_dim = 0;   // original head dim
  int64_t mlp_hidden = 0; // original MLP hidden size
  int64_t tokens = 0;     // tokens the block sees per image (ViT: 1 + patches; Swin: H*W)
  // Swin only
  int64_t res_h = 0, res_w = 0;  // stage resolution
  int64_t window = 0;            // window size after clamping to the resolution
  int64_t shift = 0;             // shift after clamping (0 when window == resolution)
  BlockWidth full() const { return {head_dim, mlp_hidden}; }
};

std::vector<BlockSpec> block_specs(const ModelConfig& config);
// state_dict key prefix of a block: "blocks.3." (ViT) or "layers.2.blocks.1." (Swin).
std::string block_prefix(const ModelConfig& config, const BlockSpec& spec);
// Full widths (every block at head_dim / mlp_hidden).
Widths full_widths(const ModelConfig& config);
// config.widths, or full widths when empty.
Widths stored_widths(const ModelConfig& config);
// Softmax scale of a block: config.attn_scale if set, else the block's original head_dim^-0.5; for a
// folded config (attn_scale_folded) 1/sqrt(stored attention width) of the block.
double attention_scale(const ModelConfig& config, const BlockSpec& spec);

// Sanity limits of validate(), far above any published ViT/Swin (ViT-22B: width 6144, 48 blocks;
// Swin-L: 4 stages, width 1536). They keep MACs and parameter arithmetic inside int64 and refuse
// hostile configs (e.g. from a manifest) before anything is sized from them.
inline constexpr int64_t kMaxImgSize = 4096;
inline constexpr int64_t kMaxPatchGrid = 256;  // patches per image side, and Swin window size
inline constexpr int64_t kMaxInChans = 64;
inline constexpr int64_t kMaxNumClasses = int64_t{1} << 20;
inline constexpr int64_t kMaxWidth = 16384;  // embed_dim and every Swin stage's width
inline constexpr double kMaxMlpRatio = 16.0;
inline constexpr int64_t kMaxBlocks = 256;  // ViT depth, or the sum of Swin depths
inline constexpr size_t kMaxStages = 8;     // Swin stages
// Swin blocks precompute derived buffers (docs/reliability.md, issue 25): a relative position index
// (int64, w^4) per window size and a shifted-window mask (float32, res^2 * w^2) per stage, shared by
// the blocks that use them. A few parameters (img_size 1024, patch_size 4, window_size 64) would need
// over 1 GiB; the bound is the Python loader's (MAX_DERIVED_BUFFER_BYTES in
// python/skd_loader/config.py; swin_base at 384 px needs under 16 MiB).
inline constexpr int64_t kMaxDerivedBufferBytes = int64_t{256} << 20;

// Throws std::invalid_argument (naming the field) if the config is inconsistent, e.g. embed_dim
// not divisible by num_heads, image not divisible by patch, widths out of range, or a value above
// the limits above.
void validate(const ModelConfig& config);
// Bytes of the Swin buffers a model at `widths` precomputes (0 for ViT): blocks with attention only,
// each window size and each (resolution, window, shift) counted once. validate() bounds it at the
// stored widths by kMaxDerivedBufferBytes; derived_buffer_bytes in python/skd_loader/config.py.
int64_t swin_derived_buffer_bytes(const ModelConfig& config, const Widths& widths);
// Throws std::invalid_argument if `widths` does not fit this config (count, ranges), naming
// `what` (a flag or file) in the message.
void validate_widths(const ModelConfig& config, const Widths& widths, const std::string& what);

// Named configs: deit_tiny/small/base (alias vit_*, deit_*_patch16_224), swin_tiny/small/base
// (alias swin_*_patch4_window7_224), and the fixtures' vit_micro_32 / swin_micro_32.
std::vector<std::string> named_configs();
// Throws std::invalid_argument listing the known names if `name` is unknown.
ModelConfig named_config(const std::string& name);

// JSON with timm constructor keyword names plus "family" ("vit"|"swin"), optional "model_name"
// (a named config to start from), "attn_scale", "attn_scale_folded", "widths" ([[a, m], ...]). Unknown keys and
// unsupported values (e.g. global_pool other than token/avg) are errors naming the key.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& source = "config");
nlohmann::json config_to_json(const ModelConfig& config);
// `arch` is a named config or a path to a JSON file (a "create_kwargs" object inside is used). An unknown
// name or a file that cannot be opened is skd::ParameterError (key "arch"); a file that is not JSON or
// not an architecture is skd::FormatError naming the file.
ModelConfig resolve_arch(const std::string& arch);

}  // namespace skd::models
