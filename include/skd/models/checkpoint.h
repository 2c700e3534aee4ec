// Checkpoints and artifacts: reading any supported weight file (safetensors, torch.save .pth with
// {'model': ...} / {'state_dict': ...} / raw layouts), key normalisation (DDP 'module.' prefix,
// Microsoft/timm<0.9 Swin layout), strict validated loading into a model, and writing
// self-describing artifacts (safetensors + versioned JSON manifest in __metadata__).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/data/preprocess.h"
#include "skd/io/tensor_record.h"
#include "skd/models/model.h"

namespace skd::models {

inline constexpr int kArtifactFormatVersion = 1;
inline constexpr const char* kManifestKey = "skd_manifest";

torch::Tensor tensor_from_record(const io::TensorRecord& record);
io::TensorRecord record_from_tensor(const torch::Tensor& tensor);

struct Checkpoint {
  io::TensorMap tensors;
  std::string source;   // path
  std::string format;   // "safetensors" | "pth"
  std::string wrapper;  // pth: "model" / "state_dict" / ""
  std::optional<nlohmann::json> manifest;  // skd artifacts only
};

// The "skd_manifest" metadata of an artifact, checked (skd-artifact, supported format_version).
// Throws skd::FormatError naming `path`.
nlohmann::json parse_manifest(const std::string& text, const std::string& path);

// The architecture an artifact's manifest describes: its "config" object through config_from_json
// (std::invalid_argument naming `path` and the key for a bad value; skd::FormatError when "config"
// is missing or not JSON of the expected types).
ModelConfig manifest_config(const nlohmann::json& manifest, const std::string& path);

// The manifest's "preprocess" entry (data/preprocess.h), checked against the model's input (channels,
// size); nullopt when the manifest has none (older artifacts). skd::FormatError naming `path` and the key.
std::optional<data::Preprocess> manifest_preprocess(const nlohmann::json& manifest, const ModelConfig& config,
                                                    const std::string& path);
// {"preprocess": entry} for make_manifest's `extra`, or {} for nullopt.
nlohmann::json preprocess_entry(const std::optional<data::Preprocess>& p);

// Refuses (skd::FormatError naming `path`) a config with far more parameters (over twice, plus 2^20)
// than `tensors` hold in all: a strict load needs every parameter in the file, so the model is only
// allocated when the file's own size justifies it, whatever a manifest or --arch claims.
void check_params_fit(const ModelConfig& config, const io::TensorMap& tensors, const std::string& path);

// Reads a weight file, choosing the parser by content (zip magic -> .pth, else safetensors).
Checkpoint read_checkpoint(const std::string& path);

// Brings foreign key layouts to this project's (timm >= 0.9) names: strips a common 'module.'
// prefix, maps legacy Swin keys (layers.N.downsample -> layers.N+1.downsample, head -> head.fc)
// and drops derived buffers (relative_position_index, attn_mask). Returns notes on what changed.
// A legacy key whose N is not 0..kMaxStages-1 in plain digits is a FormatError naming `source`.
std::vector<std::string> normalize_keys(const ModelConfig& config, io::TensorMap& tensors,
                                        const std::string& source = "checkpoint");

// Per-block widths implied by the tensor shapes (reduced qkv/fc1 shapes, missing branches).
Widths infer_widths(const ModelConfig& config, const io::TensorMap& tensors, const std::string& source);

// Strict load: every model parameter present with the right shape, no unexpected keys, floating
// dtypes converted to float32, no NaN/Inf. Errors (std::runtime_error) name source and key.
void load_state_dict(ElasticModelImpl& model, const io::TensorMap& tensors, const std::string& source);
// The model's parameters as float32 records under timm key names.
io::TensorMap state_dict(const ElasticModelImpl& model);

struct LoadedModel {
  ElasticModel model{nullptr};
  nlohmann::json manifest;  // the artifact's manifest, or one describing the foreign file
  std::optional<data::Preprocess> preprocess;  // the manifest's entry (nullopt: none, or a foreign file)
  std::string source;
};

// Loads a model from an artifact (architecture from its manifest) or a foreign checkpoint (then
// `arch`, a named config or JSON file, is required). A non-empty `arch` given for an artifact
// must agree with its manifest.
LoadedModel load_model(const std::string& path, const std::string& arch = "");

// The manifest describing `model` (family, config, widths, scales, MACs, provenance). Entries of
// `extra` (e.g. a super-network's "mask_table" and "op_codes") are added at the top level; they may
// not replace the keys above.
nlohmann::json make_manifest(const ElasticModelImpl& model, const nlohmann::json& provenance,
                             const nlohmann::json& extra = nlohmann::json::object());
// Writes weights + manifest atomically to `path` (safetensors).
void save_artifact(const std::string& path, const ElasticModelImpl& model,
                   const nlohmann::json& provenance = nlohmann::json::object(),
                   const nlohmann::json& extra = nlohmann::json::object());

// sha256 of a file, hex (for provenance).
std::string file_sha256(const std::string& path);

}  // namespace skd::models
