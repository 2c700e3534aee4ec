// A latency table measured in a deployment runtime (onnxruntime or OpenVINO): every op code's
// standalone sub-network (models::slice_model, as skd-extract writes it) exported the way skd-export
// does (opset 17, dynamic batch), loaded into the runtime and timed there, with the same warm-up,
// repeats and percentiles as the LibTorch table (eval::measure_latency_table). The table names the
// runtime and its version; skd-extract --latency reads it like any other.
#pragma once

#include <string>
#include <vector>

#include "skd/deploy/runtime.h"
#include "skd/eval/latency_table.h"

namespace skd::exporter {

// `worker` is the runtime (its threads are the table's). Errors as for onnx_model_bytes and the worker's.
eval::LatencyTable measure_runtime_latency_table(const models::ElasticModelImpl& model,
                                                 const std::vector<models::Widths>& code_widths,
                                                 const eval::LatencyTableOptions& options,
                                                 deploy::RuntimeWorker& worker, const std::string& model_path,
                                                 const std::string& model_sha256,
                                                 const eval::LatencyProgressFn& progress = nullptr);

}  // namespace skd::exporter
