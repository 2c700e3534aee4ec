// The parity check of an exported graph: the serialized ONNX model run in onnxruntime (Python,
// python/skd_onnx_check.py embedded in the library) on deterministic random inputs, its logits compared
// with the C++ forward.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "skd/data/preprocess.h"
#include "skd/deploy/process.h"
#include "skd/models/model.h"

namespace skd::exporter {

struct ParityOptions {
  std::string python;                     // interpreter with onnxruntime (empty: $SKD_PYTHON, else python3)
  double tolerance = 1e-4;                // max |logit difference| allowed (fp32)
  std::vector<int64_t> batches = {2, 1};  // one deterministic random input per batch size
  uint64_t seed = 0;
  int threads = 1;  // onnxruntime intra-op threads
  // A graph that normalizes its input itself (GraphOptions::input UNIT or UINT8, with its mean and std):
  // it gets random pixels (uint8, or scaled to [0, 1]) and the C++ forward the same pixels normalized.
  data::GraphInput input = data::GraphInput::NORMALIZED;
  std::vector<double> mean, std;
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
using deploy::resolve_python;

// Runs the serialized ONNX model in onnxruntime (python/skd_onnx_check.py, embedded in the library, in a
// temporary folder) on deterministic random inputs of every batch size and compares the logits with
// `model`'s C++ forward (eval mode, no grad). Returns the measured difference (the caller judges it
// with passed()). Throws std::runtime_error when the interpreter cannot be run, when onnxruntime (or
// numpy) cannot be imported there (the message says how to install it), when the check fails, or when it
// runs longer than $SKD_ONNX_CHECK_TIMEOUT seconds (default 600).
ParityResult check_parity(models::ElasticModelImpl& model, const std::string& onnx_bytes,
                          const ParityOptions& options = {});

}  // namespace skd::exporter
