// How an image becomes a model's input, as an artifact records it (issue 27): the manifest entry
// "preprocess" with the names of timm's pretrained config (input_size, interpolation, crop_pct,
// crop_mode, mean, std), its strict reader, the defaults of the data and of the architecture, the flags
// that override it, and the resolution every consumer shares (artifact entry, else defaults; flags on top).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/core/units.h"
#include "skd/data/eval_transform.h"
#include "skd/data/resize.h"

namespace skd::data {

inline constexpr const char* kPreprocessKey = "preprocess";
inline constexpr std::pair<const char*, Filter> kInterpolationNames[] = {
    {"bicubic", Filter::BICUBIC}, {"bilinear", Filter::BILINEAR}, {"nearest", Filter::NEAREST}};
// The range of crop_pct, for the manifest entry and the flag alike.
inline constexpr double kMinCropPct = 0.05, kMaxCropPct = 1.0;

struct Preprocess {
  int64_t channels = 3;  // input_size [channels, size, size]
  int64_t size = 224;
  Filter interpolation = Filter::BICUBIC;  // the eval resize
  double crop_pct = 0.875;                 // resize the shorter side to int(size / crop_pct), center crop
  std::vector<double> mean, std;           // one per channel, of images scaled to [0, 1]
  bool operator==(const Preprocess& o) const {
    return channels == o.channels && size == o.size && interpolation == o.interpolation &&
           crop_pct == o.crop_pct && mean == o.mean && std == o.std;
  }
};

// What an exported graph takes (the manifest key "graph_input"): images normalized by the caller (the
// default), or images scaled to [0, 1] ("unit", float32) or uint8 pixels ("uint8") that the graph
// normalizes itself with the preprocess entry's mean and std (skd-export --embed-normalize).
enum class GraphInput { NORMALIZED, UNIT, UINT8 };
inline constexpr std::pair<const char*, GraphInput> kGraphInputNames[] = {
    {"normalized", GraphInput::NORMALIZED}, {"unit", GraphInput::UNIT}, {"uint8", GraphInput::UINT8}};
// The values of skd-export --embed-normalize (none: the graph takes normalized images).
inline constexpr std::pair<const char*, GraphInput> kEmbedNormalizeNames[] = {
    {"none", GraphInput::NORMALIZED}, {"unit", GraphInput::UNIT}, {"uint8", GraphInput::UINT8}};

// The official DeiT and Swin evaluation (resize to 256, crop 224: crop_pct 0.875, bicubic) with the
// ImageNet mean and std; one channel: kGrayMean / kGrayStd of image_folder.h. nullopt for other channel
// counts (no known default).
std::optional<Preprocess> imagenet_preprocess(int64_t channels, int64_t size);
// Fashion-MNIST's normalization (mean 0.2860, std 0.3530 on every channel); its 28 x 28 images are
// not cropped (crop_pct 1) and resized bilinearly to another size.
Preprocess fashion_mnist_preprocess(int64_t channels, int64_t size);

// The manifest entry: {"input_size": [C, S, S], "interpolation", "crop_pct", "crop_mode": "center",
// "mean": [...], "std": [...]}.
nlohmann::json preprocess_to_json(const Preprocess& p);
// Reads an entry strictly: exactly those keys (crop_mode optional, only "center"), input_size three
// positive integers with H == W within the model limits, a known interpolation, crop_pct in
// [kMinCropPct, kMaxCropPct], C finite means and C finite stds > 0. skd::FormatError naming `source`
// and the key ("preprocess.crop_pct") otherwise.
Preprocess preprocess_from_json(const nlohmann::json& j, const std::string& source);
// skd::FormatError naming `source` and "preprocess.input_size" when `p` is not for a model of
// `channels` x `size` x `size` inputs.
void check_preprocess_fits(const Preprocess& p, int64_t channels, int64_t size, const std::string& source);
// "3x224x224, bicubic, crop_pct 0.875, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]"
std::string describe(const Preprocess& p);
// The eval transform of `p` (1 or 3 channels; a one-channel mean/std fills the three slots the
// transform normalizes before the first is taken). std::invalid_argument for other channel counts.
EvalTransform eval_transform_of(const Preprocess& p);

// Per-channel values (a mean or std) as float32 [C, 1, 1], to broadcast over [..., C, H, W] images: each
// value rounded to float32 as the eval transform's tables have it.
torch::Tensor channel_tensor(const std::vector<double>& values);

// The flags that override an artifact's preprocessing (or the defaults), by config key.
struct PreprocessOverrides {
  std::optional<double> crop_pct;
  std::string interpolation;  // "" = keep
  std::optional<ChannelValues> mean, std;

  bool any() const { return crop_pct || !interpolation.empty() || mean || std; }
  template <typename V>
  void visit(V&& v) {
    v("crop_pct", crop_pct,
      "eval resize: shorter side to int(size / crop-pct), then center crop (default: the model's preprocess "
      "entry)");
    v("interpolation", interpolation,
      "eval resize filter: bicubic | bilinear | nearest (default: the model's)");
    v("mean", mean, "normalization mean per channel, e.g. 0.485,0.456,0.406 (default: the model's)");
    v("std", std, "normalization std per channel, e.g. 0.229,0.224,0.225 (default: the model's)");
  }
};

// A preprocessing and where its values came from (for the log and reports).
struct ResolvedPreprocess {
  Preprocess values;
  std::string source;          // e.g. "the preprocess entry of 'm.safetensors'; crop_pct from --crop-pct"
  bool from_artifact = false;  // the base values are an artifact's entry
};

// The preprocessing a consumer applies: `artifact` (an artifact's entry, read from `artifact_path`) when
// it has one, else `fallback` (the data's defaults, data_preprocess of dataset.h), then the overrides.
// skd::ParameterError naming the key for an override out of range (crop_pct) or of the wrong length for the
// channels (mean, std), or an unknown interpolation.
ResolvedPreprocess resolve_preprocess(const std::optional<Preprocess>& artifact,
                                      const std::string& artifact_path, const ResolvedPreprocess& fallback,
                                      const PreprocessOverrides& overrides);
// Logs the values and their source (one info line, "<what>: <describe> (from <source>)").
void log_preprocess(const std::string& what, const ResolvedPreprocess& p);

}  // namespace skd::data
