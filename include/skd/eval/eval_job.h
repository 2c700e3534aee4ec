// One skd-eval run as a library entry point: the MACs/params summary of an architecture, accuracy on a
// dataset, outputs on given inputs, forward latency, or the latency table of a super-network's op codes
// (the file extract::select reads for a latency budget). skd-eval only parses its flags into an EvalJob
// and calls run_eval_job.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "skd/core/device.h"
#include "skd/data/loader.h"

namespace skd::eval {

// The options of an evaluation, by config key (skd/core/options.h).
struct EvalJob {
  std::string model;          // artifact or checkpoint
  std::string arch;           // named architecture or JSON config (foreign checkpoints, summary)
  double attn_keep = 1.0;     // run with only the leading floor(a * F) q/k/v dims of every head
  double mlp_keep = 1.0;      // ... and floor(m * F) hidden units of every MLP
  std::string data;           // dataset spec: accuracy mode
  std::string split = "test";
  int64_t limit = 0;          // first N images (0 = all)
  int64_t batch_size = 256;
  std::string inputs;         // safetensors with 'input' [B,3,H,W]: outputs mode (with save_outputs)
  std::string class_index;    // image folders: class-index file
  double crop_pct = 0.875;
  int workers = 2;
  data::BadImagePolicy on_bad_image = data::BadImagePolicy::SKIP;
  std::string device = "cpu";
  Amp amp = Amp::NONE;
  std::string latency;        // batch sizes "1,8,64": latency mode
  int latency_repeats = 20;
  bool latency_table = false;  // latency-table mode
  std::string batch_sizes = "1";  // of the latency table
  bool summary = false;        // summary mode (needs no weights)
  std::string json;            // also write the results as JSON
  std::string save_outputs;    // logits (and features for inputs) as safetensors
  std::string out;             // the latency table file ("" = extract::latency_table_path(model))

  template <typename V>
  void visit(V&& v) {
    v("model", model); v("arch", arch); v("attn_keep", attn_keep); v("mlp_keep", mlp_keep);
    v("data", data); v("split", split); v("limit", limit); v("batch_size", batch_size); v("inputs", inputs);
    v("class_index", class_index); v("crop_pct", crop_pct); v("workers", workers);
    v("on_bad_image", on_bad_image, data::kBadImagePolicyNames);
    v("device", device); v("amp", amp, kAmpNames); v("latency", latency); v("latency_repeats", latency_repeats);
    v("latency_table", latency_table); v("batch_sizes", batch_sizes);
    v("summary", summary); v("json", json); v("save_outputs", save_outputs); v("out", out);
  }
};

// Runs the mode the job selects (summary, or exactly one of data, inputs, latency, latency_table) and
// prints its report to `out`. skd::ParameterError naming the keys for an inconsistent job; errors of the
// files and the data as for evaluate, load_model, measure_latency_table.
void run_eval_job(const EvalJob& job, std::FILE* out);

}  // namespace skd::eval
