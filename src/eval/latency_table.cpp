#include "skd/eval/latency_table.h"

#include <torch/version.h>

#include <chrono>

#include "skd/core/clock.h"
#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/models/slice.h"

namespace skd::eval {

LatencyTable measure_latency_table(const models::ElasticModelImpl& model, const std::vector<models::Widths>& code_widths,
                                   const LatencyTableOptions& o, const std::string& model_path,
                                   const std::string& model_sha256, const LatencyProgressFn& progress) {
  if (o.batch_sizes.empty()) throw ParameterError("batch_sizes", ": no batch sizes given");
  for (int64_t b : o.batch_sizes)
    if (b <= 0) throw ParameterError("batch_sizes", cat(": batch size ", b, " is not positive"));
  if (code_widths.empty()) throw std::invalid_argument("latency table: no op codes to measure");
  LatencyTable t;
  t.model = model_path;
  t.model_sha256 = model_sha256;
  t.device = o.device.str();
  t.amp = enum_name(o.amp, kAmpNames);
  t.threads = torch::get_num_threads();
  t.torch_version = TORCH_VERSION;
  t.runtime = "libtorch";
  t.runtime_version = TORCH_VERSION;
  t.created = utc_now();
  t.warmup = o.warmup;
  t.repeats = o.repeats;
  t.batch_sizes = o.batch_sizes;
  const auto start = std::chrono::steady_clock::now();
  const int64_t total = static_cast<int64_t>(code_widths.size() * o.batch_sizes.size());
  int64_t done = 0;
  for (size_t k = 0; k < code_widths.size(); ++k) {
    LatencyCodeRow row;
    row.code = static_cast<int64_t>(k);
    row.widths = code_widths[k];
    row.cost = models::macs_count(model.config(), row.widths);
    // The standalone sub-network skd-extract writes for this code (reduced, contiguous weights).
    auto sub = models::slice_model(model, row.widths);
    sub->to(o.device);
    for (int64_t b : o.batch_sizes) {
      row.latency.push_back(measure_latency(*sub, b, o.device, o.amp, o.warmup, o.repeats));
      if (progress) progress(++done, total);
    }
    t.codes.push_back(std::move(row));
  }
  t.sweep_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return t;
}

}  // namespace skd::eval
