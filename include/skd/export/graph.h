// The ONNX graph of an elastic ViT/DeiT or Swin model (standard ops, opset >= 17).
//
// The graph computes the C++ forward at the model's stored widths: per block attention width a
// (q/k/v dims per head; 0 = attention branch and its LayerNorm absent) and MLP width m (0 = MLP
// absent), the block's own softmax scale (attention_scale: the original head dim's unless folded),
// LayerNormalization with the config's eps, exact GELU (0.5·x·(1 + erf(x/√2))), ViT's class token and
// position embedding, Swin's cyclic shift (Slice + Concat), window partition, relative position bias,
// shifted-window mask (-100) and patch merging. Weights are float32 initializers under timm's key
// names (Linear weights stored transposed, "<key>.T"; Swin's relative position bias stored gathered
// per block, "<prefix>attn.relative_position_bias"). Input "pixel_values" [B, C, H, W] float32
// (normalized, or in [0, 1] / uint8 with the normalization in the graph: GraphOptions::input),
// output "logits" [B, classes]; B is the symbolic dimension "batch" unless a fixed batch is asked for.
// The artifact manifest goes into the ONNX metadata_props under "skd_manifest".
//
// The ONNX writer needs Debian's libonnx-dev (CMake option SKD_WITH_ONNX); a build without it keeps
// this API, and onnx_model_bytes / check_graph_options then throw std::runtime_error saying so.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/data/preprocess.h"
#include "skd/models/model.h"

namespace skd::exporter {

inline constexpr int kDefaultOpset = 17;  // LayerNormalization appears in opset 17
inline constexpr const char* kOnnxManifestKey = "skd_manifest";

// Whether this build can write ONNX (built with libonnx-dev).
bool onnx_available();
// The newest ONNX opset the linked ONNX library knows (0 without ONNX).
int max_opset();

struct GraphOptions {
  int opset = kDefaultOpset;  // in [17, max_opset()]
  int64_t batch = 0;          // 0 = dynamic batch ("batch"); > 0 = fixed
  // What "pixel_values" holds: normalized images (float32), or images in [0, 1] (float32, UNIT) or
  // uint8 pixels (UINT8) that the graph normalizes first, as the eval transform does: (x / 255 - mean) / std
  // per channel, with `mean` and `std` (one per input channel).
  data::GraphInput input = data::GraphInput::NORMALIZED;
  std::vector<double> mean, std;
};

// "dynamic" -> 0, a positive integer -> itself (GraphOptions::batch); skd::ParameterError naming `key`
// otherwise.
int64_t parse_graph_batch(const std::string& text, const std::string& key = "batch");

// std::runtime_error without ONNX; skd::ParameterError naming opset or batch for a value out of range,
// embed_normalize for a normalization without one mean and one std > 0 per channel.
void check_graph_options(const GraphOptions& options);

// The checked (onnx::checker::check_model) serialized ModelProto of `model` at its stored widths, with
// `manifest` (JSON) in metadata_props under kOnnxManifestKey. Throws std::invalid_argument for an
// opset or batch out of range, std::runtime_error when the checker refuses the graph.
std::string onnx_model_bytes(const models::ElasticModelImpl& model, const nlohmann::json& manifest,
                             const GraphOptions& options = {});

}  // namespace skd::exporter
