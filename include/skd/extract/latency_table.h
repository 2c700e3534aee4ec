// Latency you can select by: the measured forward latency of every op code of a super-network on
// one device (given batch sizes, threads, autocast), kept as a sidecar JSON next to the model
// (<model>.latency.json) and used by extract::select to pick the largest sub-network whose measured
// latency fits a budget. MACs do not say how fast a sub-network runs: attention width, MLP width and
// removed branches cost differently per MAC on a given device and batch size.
//
// This header is the file format and the lookup; the measurement that fills a table (every code's
// standalone sub-network timed on a device) is eval::measure_latency_table (skd/eval/latency_table.h),
// one layer up, so that selection reads tables without depending on the evaluation code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/models/config.h"
#include "skd/models/macs.h"

namespace skd::extract {

inline constexpr const char* kLatencyTableFormat = "skd-latency-table";
inline constexpr int kLatencyTableVersion = 1;

// Forward latency of one model at one batch size (eval::measure_latency measures it).
struct LatencyResult {
  int64_t batch_size = 0;
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  double images_per_s = 0;  // batch_size / median
};

// The warm-up rule of every latency measurement (LibTorch's eval::measure_latency and the runtimes'
// worker alike): untimed runs until both the warm-up count and kWarmupSeconds are done, and before the
// first measurement of a process also kSettleSeconds (a CPU that was idle runs slower for a while:
// measured on the team machine, a fresh process timed a 0.6 ms sub-network at ~1.0 ms for its first
// ~0.5 s; docs/benchmarks.md, issue 26).
inline constexpr double kWarmupSeconds = 0.1;
inline constexpr double kSettleSeconds = 1.0;

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
  // The runtime that ran the sub-networks ("libtorch", "onnxruntime", "openvino"; tables written before
  // the key existed are LibTorch's) and its version; a table applies to that runtime only.
  std::string runtime = "libtorch", runtime_version;
  int threads = 0;  // intra-op threads during the sweep (torch's, or the runtime's)
  std::string torch_version, created;
  int warmup = 0, repeats = 0;
  double sweep_seconds = 0;  // wall time of the whole sweep (slicing + warm-up + timed runs)
  std::vector<int64_t> batch_sizes;
  std::vector<LatencyCodeRow> codes;  // op codes 0..K in order

  nlohmann::json to_json() const;
  // Strict parse (format, version, types, every row holding every batch size); errors
  // (skd::FormatError: malformed content) name `source` and the key.
  static LatencyTable from_json(const nlohmann::json& j, const std::string& source);
};

// How to measure a latency table (a command, said as it is in the errors of a missing or mismatched
// table): the toolkit's measurement is skd-eval's (eval::measure_latency_table).
inline constexpr const char* kMeasureLatencyTable = "skd-eval --model <super-network> --latency-table";

// The default sidecar of a model file: "dir/model.safetensors" -> "dir/model.latency.json" (LibTorch's
// table), "dir/model.latency.onnxruntime.json" for another runtime's ("" = libtorch).
std::string latency_table_path(const std::string& model_path, const std::string& runtime = "");
// Reads and parses a latency table (skd::read_json_file: std::invalid_argument naming `path` for a
// missing file, skd::FormatError for one that is not JSON or not a valid table;
// `measure` = how to measure one, said when the file is missing).
LatencyTable read_latency_table(const std::string& path, const std::string& measure = "");
// Writes `table.to_json()` atomically (temp file, fsync, rename).
void write_latency_table(const std::string& path, const LatencyTable& table);

// A table is bound to the sub-networks it timed: every row's widths must be those of the same op code of
// the mask table used now (`code_widths`, codes 0..K), else its latencies belong to other sub-networks
// (e.g. a mask_table that overrides the artifact's table). skd::ParameterError naming `table_path` and
// the first code that differs. A count mismatch is left to code_for_latency.
void check_latency_table_widths(const LatencyTable& table, const std::vector<models::Widths>& code_widths,
                                const std::string& table_path);

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
                                  const std::string& model_sha256, int64_t num_codes,
                                  const std::string& table_path);

}  // namespace skd::extract
