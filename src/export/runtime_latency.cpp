#include "skd/export/runtime_latency.h"

#include <chrono>

#include "skd/core/clock.h"
#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/deploy/process.h"
#include "skd/export/graph.h"
#include "skd/models/checkpoint.h"
#include "skd/models/slice.h"

namespace skd::exporter {

eval::LatencyTable measure_runtime_latency_table(const models::ElasticModelImpl& model,
                                                 const std::vector<models::Widths>& code_widths,
                                                 const eval::LatencyTableOptions& o,
                                                 deploy::RuntimeWorker& worker, const std::string& model_path,
                                                 const std::string& model_sha256,
                                                 const eval::LatencyProgressFn& progress) {
  if (o.batch_sizes.empty()) throw ParameterError("batch_sizes", ": no batch sizes given");
  for (int64_t b : o.batch_sizes)
    if (b <= 0) throw ParameterError("batch_sizes", cat(": batch size ", b, " is not positive"));
  if (code_widths.empty()) throw std::invalid_argument("latency table: no op codes to measure");
  if (!o.device.is_cpu() || o.amp != Amp::NONE)
    throw ParameterError("device", cat(": ", enum_name(worker.runtime(), deploy::kRuntimeNames),
                                       " latency tables are measured on the CPU without autocast"));
  eval::LatencyTable t;
  t.model = model_path;
  t.model_sha256 = model_sha256;
  t.device = "cpu";
  t.amp = "none";
  t.runtime = enum_name(worker.runtime(), deploy::kRuntimeNames);
  t.runtime_version = worker.version();
  t.threads = worker.threads();
  t.torch_version = deploy::libtorch_version();
  t.created = utc_now();
  t.warmup = o.warmup;
  t.repeats = o.repeats;
  t.batch_sizes = o.batch_sizes;
  deploy::TempDir dir;
  const std::string path = dir.file("code.onnx");
  const auto start = std::chrono::steady_clock::now();
  const int64_t total = static_cast<int64_t>(code_widths.size() * o.batch_sizes.size());
  int64_t done = 0;
  for (size_t k = 0; k < code_widths.size(); ++k) {
    eval::LatencyCodeRow row;
    row.code = static_cast<int64_t>(k);
    row.widths = code_widths[k];
    row.cost = models::macs_count(model.config(), row.widths);
    // The standalone sub-network skd-extract writes for this code, as skd-export writes its graph.
    auto sub = models::slice_model(model, row.widths);
    sub->eval();
    const auto bytes = onnx_model_bytes(*sub, nlohmann::json::object());
    write_file_atomic(path, bytes.data(), bytes.size());
    worker.load(path);
    for (int64_t b : o.batch_sizes) {
      row.latency.push_back(worker.time(b, o.warmup, o.repeats));
      if (progress) progress(++done, total);
    }
    t.codes.push_back(std::move(row));
  }
  t.sweep_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return t;
}

}  // namespace skd::exporter
