// Measuring a latency table (the file format and the lookup by budget are skd/extract/latency_table.h):
// the forward latency of every op code of a super-network on this device, at given batch sizes,
// threads and autocast.
//
// Each code is measured on the standalone sub-network skd-extract would write (slice_model at the
// code's widths: reduced, contiguous weights), so the table times what is deployed, not the
// super-network's sliced forward. Per code and batch size: `warmup` untimed runs, then `repeats`
// timed runs (synchronised on CUDA); median and 10th/90th percentiles.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "skd/core/device.h"
#include "skd/eval/evaluate.h"
#include "skd/extract/latency_table.h"
#include "skd/models/macs.h"
#include "skd/models/model.h"

namespace skd::eval {

// The file format lives in extract; these names keep the measurement's callers short.
using extract::LatencyCodeRow;
using extract::LatencyTable;

struct LatencyTableOptions {
  std::vector<int64_t> batch_sizes = {1};
  torch::Device device = torch::kCPU;
  Amp amp = Amp::NONE;
  int warmup = 5;
  int repeats = 20;
};

// Called after each measured (code, batch size) with (done, total).
using LatencyProgressFn = std::function<void(int64_t, int64_t)>;

// Measures every code (`code_widths[k]` = the widths of op code k, each within the model's stored
// widths) at every batch size. The model must already be on options.device. `model_path` and
// `model_sha256` identify the super-network in the table.
LatencyTable measure_latency_table(const models::ElasticModelImpl& model, const std::vector<models::Widths>& code_widths,
                                   const LatencyTableOptions& options, const std::string& model_path,
                                   const std::string& model_sha256, const LatencyProgressFn& progress = nullptr);

}  // namespace skd::eval
