// int8 sub-networks: static post-training quantization of an exported graph with onnxruntime's
// quantization tools (QDQ format: int8 weights, per output channel by default, uint8 activations, the
// activation ranges calibrated on the user's images read through the toolkit's eval transform).
// Why onnxruntime's tools and not OpenVINO's NNCF: docs/decisions.md, "Deployment runtimes". The
// quantized graph is a standard ONNX file that onnxruntime and OpenVINO both run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "skd/data/loader.h"
#include "skd/data/preprocess.h"
#include "skd/deploy/runtime.h"
#include "skd/models/config.h"

namespace skd::exporter {

struct Int8Options {
  std::string calibration;      // data: "fashion-mnist", an IDX folder or an image folder
  std::string split = "train";  // of the calibration data
  int64_t samples = 512;        // images drawn (distinct, seeded) from that split
  uint64_t seed = 0;
  std::string method = "minmax";  // activation-range calibration: minmax | percentile | entropy
  bool per_channel = true;        // weight scales per output channel (else per tensor)
  bool reduce_range = false;      // 7-bit weights (for CPUs without VNNI that saturate u8*s8 sums)
  // The model's preprocess entry (nullopt: the calibration data's defaults) and what the graph takes:
  // the calibration images are given to the graph as it reads them (normalized, in [0, 1] or 0..255).
  std::optional<data::Preprocess> preprocess;
  data::GraphInput input = data::GraphInput::NORMALIZED;
  data::BadImagePolicy on_bad_image = data::BadImagePolicy::SKIP;
  int workers = 2;
  bool verify = false;  // top-1 agreement of int8 and fp32 on the calibration images
  int64_t graph_batch = 0;  // the graph's fixed batch size (0 = dynamic): calibration runs at it
};

struct Int8Result {
  std::string bytes;            // the quantized ONNX model (with the manifest in its metadata)
  nlohmann::json quantization;  // what the manifest records under "quantization"
  int64_t images = 0;           // calibration images used
  int64_t bad_images = 0;
  std::optional<double> agreement;  // verify: percent of calibration images whose top-1 class is the same
  double max_abs_diff = 0;          // verify: max |int8 - fp32| logit
  std::string line() const;         // "int8: ... calibrated on N images ...; top-1 agreement ..."
};

// Quantizes `fp32_bytes` (an exported graph of an architecture `config`) in onnxruntime (the worker
// options' Python; its threads run the verification). `manifest` goes into the int8 graph's metadata
// with "quantization" added (scheme, library and version, calibration data, split, images, seed).
// Errors: skd::ParameterError naming calibration / calibration_samples for data that cannot be opened,
// is empty or has no readable image, or does not fit the model (channels); the worker's errors
// (onnxruntime or onnx missing: how to install them).
Int8Result quantize_int8(const std::string& fp32_bytes, const models::ModelConfig& config,
                         nlohmann::json manifest, const Int8Options& options,
                         const deploy::WorkerOptions& worker_options);

}  // namespace skd::exporter
