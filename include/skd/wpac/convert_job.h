// One skd-convert run as a library entry point: load a checkpoint, optionally attach a mask table
// (format conversion) or apply WPAC / a baseline criterion with proxy data (docs/algorithm.md §2),
// join the distributed job, and save the artifact plus its conversion report. skd-convert only parses
// its flags into a ConvertJob and prints the result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "skd/dist/communicator.h"
#include "skd/dist/join.h"
#include "skd/importance/taylor.h"
#include "skd/models/macs.h"
#include "skd/wpac/wpac.h"

namespace skd::wpac {

// The options of a conversion, by config key (skd/core/options.h). The enum-valued keys hold the
// library's enums (their names in JSON and on the command line). criterion stays a name: its default
// depends on data ("" = wpac with data, none without) and "none" (format conversion only) is not a
// WPAC criterion; convert_checkpoint parses it once.
struct ConvertJob {
  std::string model;       // input checkpoint (.pth, .safetensors or skd artifact)
  std::string arch;        // named architecture or JSON config (foreign checkpoints)
  std::string out;         // output artifact
  std::string report;      // JSON report; empty: <out without .safetensors>.report.json
  std::string mask_table;  // an official PIAD mask_table.json to attach (format conversion only)
  std::string data;        // proxy data spec; empty: no proxy pass
  std::string split = "train";
  int64_t proxy_samples = 1024;
  int64_t batch_size = 64;
  uint64_t seed = 0;              // of the proxy draw and of the random criterion
  std::string criterion;          // empty: wpac with data, none without
  MlpCriterion mlp_criterion = MlpCriterion::AUTO;
  Centering centering = Centering::BATCH;
  importance::Cost cost = importance::Cost::LOGIT;
  std::string device = "cpu";
  dist::Backend dist_backend = dist::Backend::AUTO;
  double dist_timeout = dist::kDefaultTimeoutSeconds;

  template <typename V>
  void visit(V&& v) {
    v("model", model);
    v("arch", arch);
    v("out", out);
    v("report", report);
    v("mask_table", mask_table);
    v("data", data);
    v("split", split);
    v("proxy_samples", proxy_samples);
    v("batch_size", batch_size);
    v("seed", seed);
    v("criterion", criterion);
    v("mlp_criterion", mlp_criterion, kMlpCriterionNames);
    v("centering", centering, kCenteringNames);
    v("cost", cost, importance::kCostNames);
    v("device", device);
    v("dist_backend", dist_backend, dist::kBackendNames);
    v("dist_timeout", dist_timeout);
  }
};

// What a conversion wrote, for the caller to print (rank 0 only writes files: main_rank).
struct ConvertResult {
  bool main_rank = true;
  std::string artifact;                     // = job.out
  std::string report_path;                  // empty without a report
  std::optional<ConversionReport> report;   // with a criterion other than none
  std::string model_name;                   // config name
  models::ModelCost cost;                   // of the written model
};

// The whole conversion. std::invalid_argument for inconsistent options (e.g. a criterion that needs
// data without data); every rank returns after the final barrier.
ConvertResult convert_checkpoint(const ConvertJob& job);

// "<out without .safetensors>.report.json": where the report goes when job.report is empty.
std::string default_report_path(const std::string& out);

}  // namespace skd::wpac
