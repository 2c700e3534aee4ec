// One skd-convert run as a library entry point: load a checkpoint, optionally attach a mask table
// (format conversion) or apply WPAC / a baseline criterion with proxy data (docs/algorithm.md §2),
// join the distributed job, and save the artifact plus its conversion report. skd-convert only parses
// its flags into a ConvertJob and prints the result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "skd/data/preprocess.h"
#include "skd/distributed/communicator.h"
#include "skd/distributed/join.h"
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
  distributed::Backend dist_backend = distributed::Backend::AUTO;
  double dist_timeout = distributed::kDefaultTimeoutSeconds;
  // Over the input's preprocess entry (else the proxy data's defaults, else the architecture's): the
  // proxy images' transform and the entry the artifact records.
  data::PreprocessOverrides preprocess;

  template <typename V>
  void visit(V&& v) {
    v("model", model, "input checkpoint (.pth, .safetensors or skd artifact)");
    v("arch", arch, "named architecture or JSON config (needed for foreign checkpoints)");
    v("out", out, "output artifact (.safetensors)");
    v("report", report, "JSON report (default: <out>.report.json)");
    v("mask_table", mask_table,
      "attach an official PIAD mask_table.json: the artifact becomes a super-network for skd-extract "
      "--macs/--op-code (format conversion only)");
    v("data", data,
      "proxy data: 'fashion-mnist', an IDX folder or an image folder (without --data only the file format is "
      "converted, or a data-free --criterion applied)");
    v("split", split, "dataset split the proxy images come from");
    v("proxy_samples", proxy_samples, "proxy images (distinct, drawn with --seed)");
    v("batch_size", batch_size, "proxy images per forward/backward (per process)");
    v("seed", seed, "seed of the proxy draw and of --criterion random");
    v("criterion", criterion,
      "wpac | taylor | taylor2 | magnitude | random | none (default: wpac with --data, none without)");
    v("mlp_criterion", mlp_criterion, kMlpCriterionNames,
      "MLP unit order (auto follows --criterion; wpac -> taylor2)");
    v("centering", centering, kCenteringNames, "feature centring before the weighted scatter");
    v("cost", cost, importance::kCostNames,
      "importance cost: logit (sum of ground-truth logits) or ce (cross-entropy)");
    v("device", device, "cpu | cuda | cuda:N");
    v("dist_backend", dist_backend, distributed::kBackendNames, "under torchrun/srun: the process group");
    v("dist_timeout", dist_timeout, "seconds a collective may wait for a peer");
    preprocess.visit(v);
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
