// Export of an elastic ViT/DeiT or Swin model to ONNX (standard ops, opset >= 17), its parity check
// in onnxruntime, and the one call behind skd-export (load, select a sub-network, fold, export,
// check, verify, write atomically).
//
// The graph computes the C++ forward at the model's stored widths: per block attention width a
// (q/k/v dims per head; 0 = attention branch and its LayerNorm absent) and MLP width m (0 = MLP
// absent), the block's own softmax scale (attention_scale: the original head dim's unless folded),
// LayerNormalization with the config's eps, exact GELU (0.5·x·(1 + erf(x/√2))), ViT's class token and
// position embedding, Swin's cyclic shift (Slice + Concat), window partition, relative position bias,
// shifted-window mask (-100) and patch merging. Weights are float32 initializers under timm's key
// names (Linear weights stored transposed, "<key>.T"; Swin's relative position bias stored gathered
// per block, "<prefix>attn.relative_position_bias"). Input "pixel_values" [B, C, H, W] float32,
// output "logits" [B, classes]; B is the symbolic dimension "batch" unless a fixed batch is asked for.
// The artifact manifest goes into the ONNX metadata_props under "skd_manifest".
//
// The ONNX writer needs Debian's libonnx-dev (CMake option SKD_WITH_ONNX); a build without it keeps
// this API, and export_onnx / onnx_model_bytes then throw std::runtime_error saying so.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skd/extract/select.h"
#include "skd/models/macs.h"
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
};

// "dynamic" -> 0, a positive integer -> itself (GraphOptions::batch); skd::ParameterError naming `key`
// otherwise.
int64_t parse_graph_batch(const std::string& text, const std::string& key = "batch");

// The checked (onnx::checker::check_model) serialized ModelProto of `model` at its stored widths, with
// `manifest` (JSON) in metadata_props under kOnnxManifestKey. Throws std::invalid_argument for an
// opset or batch out of range, std::runtime_error when the checker refuses the graph.
std::string onnx_model_bytes(const models::ElasticModelImpl& model, const nlohmann::json& manifest,
                             const GraphOptions& options = {});

struct ParityOptions {
  std::string python;                     // interpreter with onnxruntime (empty: $SKD_PYTHON, else python3)
  double tolerance = 1e-4;                // max |logit difference| allowed (fp32)
  std::vector<int64_t> batches = {2, 1};  // one deterministic random input per batch size
  uint64_t seed = 0;
  int threads = 1;  // onnxruntime intra-op threads
};

struct ParityResult {
  double max_abs_diff = 0;
  std::vector<std::vector<int64_t>> inputs;  // input shapes run
  std::string onnxruntime_version;
  std::string python;  // interpreter used
  double tolerance = 0;
  bool passed() const { return max_abs_diff <= tolerance; }
  // "parity: max |logit diff| 3.1e-07 <= 1e-04 on inputs [2,3,32,32] [1,3,32,32], onnxruntime 1.32.0
  // (python)"
  std::string line() const;
};

// The interpreter for the check: `flag` if given, else $SKD_PYTHON, else "python3".
std::string resolve_python(const std::string& flag);

// Runs the serialized ONNX model in onnxruntime (python/skd_onnx_check.py, embedded in the library, in a
// temporary folder) on deterministic random inputs of every batch size and compares the logits with
// `model`'s C++ forward (eval mode, no grad). Returns the measured difference (the caller judges it
// with passed()). Throws std::runtime_error when the interpreter cannot be run, when onnxruntime (or
// numpy) cannot be imported there (the message says how to install it), or when the check fails.
ParityResult check_parity(models::ElasticModelImpl& model, const std::string& onnx_bytes,
                          const ParityOptions& options = {});

// What skd-export does, as one call.
struct ExportOptions {
  std::string model;       // any artifact or checkpoint the toolkit reads
  std::string arch;        // for foreign checkpoints
  std::string mask_table;  // official mask_table.json (optional; else the artifact's table)
  // Sub-network of a super-network (at most one; none = the model at its stored widths).
  std::optional<int64_t> op_code;
  std::string macs;                  // a budget, "2.43G"
  std::optional<double> macs_ratio;  // in (0, 1]
  extract::MacsConvention macs_convention = extract::MacsConvention::PAPER;
  // How errors name the selection options (skd-export passes its flags; the defaults are keys).
  extract::BudgetNames budget_names;
  bool fold_scale = false;  // models::fold_attention_scale before export
  GraphOptions graph;
  bool verify = false;  // parity in onnxruntime before writing; the file is written only if it passes
  ParityOptions parity;
  std::string out;  // .onnx, written atomically
};

struct ExportResult {
  std::optional<int64_t> op_code;  // set when a code of the mask table was selected
  int64_t last_code = 0;
  models::Widths widths;
  models::ModelCost cost;
  nlohmann::json manifest;  // the one written into the ONNX metadata
  size_t bytes = 0;
  std::optional<ParityResult> parity;
};

// Loads `model`, selects the sub-network (op code / MACs budget through the mask table, as skd-extract
// does), slices it, folds the scale if asked, builds and checks the graph, verifies it if asked, and
// writes `out` atomically. A failed parity check throws std::runtime_error (with the parity line) and
// writes nothing. Bad input: std::invalid_argument naming the flag or file.
ExportResult export_onnx(const ExportOptions& options);

}  // namespace skd::exporter
