// An exported model (.onnx) as a runtime sees it, and its evaluation there: the graph's input and
// output, the toolkit's manifest when the file carries one (skd-export writes it into metadata_props),
// and accuracy on a dataset read through the toolkit's own eval transform (the same images and pixels
// as skd-eval on the source artifact).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "skd/data/dataset.h"
#include "skd/data/preprocess.h"
#include "skd/deploy/runtime.h"
#include "skd/eval/evaluate.h"
#include "skd/models/config.h"

namespace skd::deploy {

struct OnnxGraph {
  std::string path;
  OnnxModelInfo info;
  std::optional<nlohmann::json> manifest;               // the toolkit's manifest (metadata "skd_manifest")
  std::optional<models::ModelConfig> config;            // the manifest's architecture
  int64_t channels = 0, img_size = 0, num_classes = 0;  // from the graph's input [B, C, S, S] / output [B, K]
  bool dynamic_batch = false;
  int64_t batch = 0;  // the fixed batch size when not dynamic
  std::optional<data::Preprocess> preprocess;             // the manifest's entry
  data::GraphInput input = data::GraphInput::NORMALIZED;  // the manifest's graph_input
};

// Loads `path` into the worker and reads its shape and manifest. skd::FormatError naming the file (and
// `key`) for a graph whose input is not one float (or, as its graph_input says, uint8) [B, C, S, S] with
// static C and S, whose output is not
// [B, K], whose manifest does not parse, or whose manifest's architecture (in_chans, img_size,
// num_classes) disagrees with the graph.
OnnxGraph load_onnx(RuntimeWorker& worker, const std::string& path, const std::string& key = "model");

// The preprocessing values a graph's images are read with: `p` for a graph that takes normalized images;
// mean 0 and std 1 (images in [0, 1]) for one that normalizes them itself (graph_input unit or uint8).
data::Preprocess graph_feed(data::Preprocess p, data::GraphInput input);
// A batch read with graph_feed's values as the graph takes it: for a uint8 graph its pixels 0..255 (as
// exact floats; the runtime worker casts them), else `x` itself.
torch::Tensor graph_pixels(const torch::Tensor& x, data::GraphInput input);

// The data a graph reads: `spec` with the graph's channels and input size and its preprocessing (the
// manifest's entry, else the data's defaults; `overrides` on top; logged with its source; the values
// go to `values` when given), fed as graph_feed says. skd::ParameterError naming `key` and the file when
// the data cannot fit the graph (a channel count other than 1 or 3), naming mean/std when they are given
// for a graph that normalizes itself.
data::DataSpec data_spec_for(const OnnxGraph& graph, data::DataSpec spec, const data::PreprocessOverrides& overrides,
                             data::Preprocess* values = nullptr, const std::string& key = "model");

// The loaded graph's output on `x`; a graph of fixed batch `fixed_batch` (> 0) gets `x` padded with
// zero images to that size and its padding rows dropped (x.size(0) <= fixed_batch).
torch::Tensor run_padded(RuntimeWorker& worker, const torch::Tensor& x, int64_t fixed_batch);

// Accuracy of the loaded graph on `dataset` (eval::evaluate through the worker; options.device must be
// the CPU). A fixed-batch graph is run at its batch size: options.batch_size is replaced by it and the
// last partial batch is padded (the padding's logits dropped).
eval::EvalResult evaluate_onnx(RuntimeWorker& worker, const OnnxGraph& graph, const data::Dataset& dataset,
                               eval::EvalOptions options, const eval::ProgressFn& progress = nullptr);

}  // namespace skd::deploy
