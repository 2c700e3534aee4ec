// One skd-export run as a library entry point: load a model (pretrained, WPAC, super-network,
// extracted sub-network), select a sub-network as skd-extract does (extract::SubnetSelection: op code,
// MACs, MACs ratio, latency, widths or keep fractions; none = the stored widths), slice and fold it with
// extract::extract (the same provenance as skd-extract's artifacts), build and check the ONNX graph
// (skd/export/graph.h), verify it in onnxruntime if asked (skd/export/parity.h) and write it
// atomically. skd-export only parses its flags into an ExportJob and calls run_export_job.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "skd/export/graph.h"
#include "skd/export/int8.h"
#include "skd/export/parity.h"
#include "skd/extract/selection.h"
#include "skd/models/macs.h"

namespace skd::exporter {

// The options of an export, by config key (skd/core/options.h); the selection's keys are flat and as
// skd-extract's, except that `batch` is the graph's: a latency budget is for that batch size (1 when
// dynamic).
struct ExportJob {
  std::string model;                   // any artifact or checkpoint the toolkit reads
  std::string arch;                    // for foreign checkpoints
  extract::SubnetSelection selection;  // at most one; none = the model at its stored widths
  std::string out;                     // .onnx, written atomically
  int opset = kDefaultOpset;           // GraphOptions::opset
  std::string batch = "dynamic";       // "dynamic" or a fixed batch size (parse_graph_batch)
  bool fold_scale = false;             // models::fold_attention_scale before export
  data::GraphInput embed_normalize = data::GraphInput::NORMALIZED;  // GraphOptions::input
  bool verify = false;  // parity in onnxruntime before writing; the file is written only if it passes
  std::string python;   // ParityOptions::python
  double tolerance = ParityOptions{}.tolerance;
  bool int8 = false;        // static int8 quantization (skd/export/int8.h) of the exported graph
  std::string calibration;  // int8: the calibration data
  std::string calibration_split = Int8Options{}.split;
  int64_t calibration_samples = Int8Options{}.samples;
  std::string calibration_method = Int8Options{}.method;

  template <typename V>
  void visit(V&& v) {
    v("model", model, "artifact, super-network, sub-network or checkpoint");
    v("arch", arch, "architecture for foreign checkpoints (named config or JSON)");
    selection.visit_keys(v, false);
    v("out", out, "output .onnx (written atomically)");
    v("opset", opset, "ONNX opset (17 .. the ONNX library's newest)");
    v("batch", batch,
      "'dynamic' (symbolic batch dimension) or a fixed batch size (also the batch size a "
      "--latency budget is for; 1 when dynamic)");
    v("embed_normalize", embed_normalize, data::kEmbedNormalizeNames,
      "put the model's normalization (its preprocess entry's mean and std) into the graph, which then takes "
      "images scaled to [0, 1] (unit, float32) or uint8 pixels (uint8); recorded as graph_input");
    v("fold_scale", fold_scale,
      "fold each block's softmax scale into its query weights, so the model is exact "
      "under the default 1/sqrt(head dim)");
    v("verify", verify,
      "run the exported graph in onnxruntime on fixed random inputs (batch 2 and 1, or --batch) "
      "against the C++ forward; write only if max |diff| <= --tolerance");
    v("python", python,
      "Python with onnxruntime (default: $SKD_PYTHON, else python3; bash scripts/setup_venv.sh "
      "makes one)");
    v("tolerance", tolerance, "max |logit difference| accepted by --verify (default 1e-4)");
    v("int8", int8,
      "write a static int8 model (onnxruntime quantization, QDQ: per-channel int8 weights, uint8 "
      "activations) calibrated on --calibration; with --verify also its top-1 agreement with fp32");
    v("calibration", calibration, "--int8: calibration data ('fashion-mnist', an IDX or image folder)");
    v("calibration_split", calibration_split, "--int8: split of the calibration data (train|test)");
    v("calibration_samples", calibration_samples,
      "--int8: images drawn (distinct, seeded) from the calibration split");
    v("calibration_method", calibration_method, "--int8: activation ranges: minmax | percentile | entropy");
  }
};

struct ExportResult {
  std::optional<int64_t> op_code;  // set when a code of the mask table was selected
  int64_t last_code = 0;
  models::Widths widths;
  models::ModelCost cost;
  nlohmann::json manifest;  // the one written into the ONNX metadata
  size_t bytes = 0;
  std::optional<ParityResult> parity;
  std::optional<Int8Result> int8;
};

// Runs the job and prints what it did to `out` (the selection as skd-extract prints it, the file
// written, the parity line); `threads` are onnxruntime's for --verify. A failed parity check throws
// std::runtime_error (with the parity line) and writes nothing. Bad input: skd::ParameterError naming
// the keys, or the file at fault.
ExportResult run_export_job(const ExportJob& job, std::FILE* out, int threads = 1);

}  // namespace skd::exporter
