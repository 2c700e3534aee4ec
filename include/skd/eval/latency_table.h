// Latency you can select by: the measured forward latency of every op code of a super-network on
// this device (given batch sizes, threads, autocast), kept as a sidecar JSON next to the model
// (<model>.latency.json) and used by skd-extract --latency to pick the largest sub-network whose
// measured latency fits a budget. MACs do not say how fast a sub-network runs: attention width,
// MLP width and removed branches cost differently per MAC on a given device and batch size.
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

#include <nlohmann/json.hpp>

#include "skd/core/device.h"
#include "skd/eval/evaluate.h"
#include "skd/models/macs.h"
#include "skd/models/model.h"

namespace skd::eval {

inline constexpr const char* kLatencyTableFormat = "skd-latency-table";
inline constexpr int kLatencyTableVersion = 1;

struct LatencyTableOptions {
  std::vector<int64_t> batch_sizes = {1};
  torch::Device device = torch::kCPU;
  Amp amp = Amp::NONE;
  int warmup = 5;
  int repeats = 20;
};

struct LatencyCodeRow {
  int64_t code = 0;
  models::Widths widths;
  models::ModelCost cost;
  std::vector<LatencyResult> latency;  // one per batch size, in the table's batch_sizes order
};

// Identity of the measured super-network and the conditions of the measurement.
struct LatencyTable {
  std::string model;         // path as given
  std::string model_sha256;  // sha256 of the model file: a table only applies to that exact file
  std::string device, amp;   // "cpu" / "cuda:0", "none" / "bf16" / "fp16"
  int threads = 0;           // torch intra-op threads during the sweep
  std::string torch_version, created;
  int warmup = 0, repeats = 0;
  double sweep_seconds = 0;  // wall time of the whole sweep (slicing + warm-up + timed runs)
  std::vector<int64_t> batch_sizes;
  std::vector<LatencyCodeRow> codes;  // op codes 0..K in order

  nlohmann::json to_json() const;
  // Strict parse (format, version, types, every row holding every batch size); errors
  // (std::invalid_argument) name `source` and the key.
  static LatencyTable from_json(const nlohmann::json& j, const std::string& source);
};

// Called after each measured (code, batch size) with (done, total).
using LatencyProgressFn = std::function<void(int64_t, int64_t)>;

// Measures every code (`code_widths[k]` = the widths of op code k, each within the model's stored
// widths) at every batch size. The model must already be on options.device. `model_path` and
// `model_sha256` identify the super-network in the table.
LatencyTable measure_latency_table(const models::ElasticModelImpl& model, const std::vector<models::Widths>& code_widths,
                                   const LatencyTableOptions& options, const std::string& model_path,
                                   const std::string& model_sha256, const LatencyProgressFn& progress = nullptr);

// The default sidecar of a model file: "dir/model.safetensors" -> "dir/model.latency.json".
std::string latency_table_path(const std::string& model_path);
// Reads and parses a latency table (std::invalid_argument naming `path` for a missing or bad file).
LatencyTable read_latency_table(const std::string& path);
// Writes `table.to_json()` atomically (temp file, fsync, rename).
void write_latency_table(const std::string& path, const LatencyTable& table);

// "5ms", "2.5 ms", "800us", "0.5s", "12" (milliseconds) -> milliseconds. std::invalid_argument
// naming `flag` for anything else or a non-positive value.
double parse_duration_ms(const std::string& text, const std::string& flag);

struct LatencySelection {
  int64_t code = 0;
  int64_t batch_size = 0;
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
};

// The lowest op code (the largest sub-network) whose measured median latency at `batch_size` is
// <= `budget_ms`. std::invalid_argument naming `table_path` when the table was measured for another
// model file (sha256 differs from `model_sha256`), has no column for `batch_size` (the message
// lists the measured ones), has a different number of codes than the model's mask table
// (`num_codes`), or when the budget is below the fastest code (the message names it and its
// latency).
LatencySelection code_for_latency(const LatencyTable& table, double budget_ms, int64_t batch_size,
                                  const std::string& model_sha256, int64_t num_codes, const std::string& table_path);

}  // namespace skd::eval
