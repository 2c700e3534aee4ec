// One skd-eval run as a library entry point: the MACs/params summary of an architecture, accuracy on a
// dataset, outputs on given inputs, forward latency, or the latency table of a super-network's op codes
// (the file extract::select reads for a latency budget). skd-eval only parses its flags into an EvalJob
// and calls run_eval_job.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "skd/core/device.h"
#include "skd/core/units.h"
#include "skd/data/loader.h"
#include "skd/data/preprocess.h"

namespace skd::eval {

// The options of an evaluation, by config key (skd/core/options.h); the help of each is its flag's.
struct EvalJob {
  std::string model;
  std::string arch;
  double attn_keep = 1.0;
  double mlp_keep = 1.0;
  std::string data;  // accuracy mode
  std::string split = "test";
  int64_t limit = 0;  // 0 = all
  int64_t batch_size = 256;
  std::string inputs;  // outputs mode (with save_outputs)
  std::string class_index;
  data::PreprocessOverrides preprocess;  // crop_pct, interpolation, mean, std over the model's entry
  int workers = 2;
  data::BadImagePolicy on_bad_image = data::BadImagePolicy::SKIP;
  std::string device = "cpu";
  Amp amp = Amp::NONE;
  std::optional<BatchList> latency;  // latency mode
  int latency_repeats = 20;
  bool latency_table = false;  // latency-table mode
  BatchList batch_sizes{{1}};  // of the latency table
  bool summary = false;        // summary mode (needs no weights)
  std::string json;
  std::string save_outputs;
  bool save_inputs = false;
  std::string out;      // "" = extract::latency_table_path(model, runtime)
  std::string runtime;  // "" = libtorch (onnxruntime for an .onnx model); skd/deploy/runtime_names.h
  std::string python;   // the runtimes' interpreter

  template <typename V>
  void visit(V&& v) {
    v("model", model, "artifact, .pth or .safetensors checkpoint");
    v("arch", arch,
      "named architecture (deit_small, swin_tiny, ...) or JSON config; needed for foreign checkpoints");
    v("attn_keep", attn_keep,
      "run with only the leading floor(a * F) q/k/v dims of every head (MLP untouched unless --mlp-keep)");
    v("mlp_keep", mlp_keep, "run with only the leading floor(m * F) hidden units of every MLP");
    v("data", data, "'fashion-mnist' or a folder with its IDX files");
    v("split", split, "dataset split (test|train)");
    v("limit", limit, "evaluate only the first N images");
    v("batch_size", batch_size, "images per batch");
    v("inputs", inputs, "safetensors with a tensor 'input' [B,3,H,W] (already normalised)");
    v("class_index", class_index, "image folders: class-index file (.txt or .json)");
    preprocess.visit(v);
    v("workers", workers, "image decoding threads");
    v("on_bad_image", on_bad_image, data::kBadImagePolicyNames,
      "skip (and count) or fail on unreadable images");
    v("device", device, "cpu | cuda | cuda:N");
    v("amp", amp, kAmpNames, "autocast (CUDA only)");
    v("latency", latency, "measure forward latency at these batch sizes (e.g. 1,8,64)");
    v("latency_repeats", latency_repeats, "timed runs per batch size");
    v("latency_table", latency_table,
      "super-networks: time every op code (the sub-network skd-extract would write) and write the table "
      "skd-extract --latency reads");
    v("batch_sizes", batch_sizes, "--latency-table: batch sizes to time (e.g. 1,64)");
    v("summary", summary, "print params and MACs (both conventions); needs no weights");
    v("json", json, "also write the results as JSON");
    v("save_outputs", save_outputs, "write logits (and features for --inputs) as safetensors");
    v("save_inputs", save_inputs,
      "--data: --save-outputs also holds the images as the model got them ('inputs', after the eval "
      "transform)");
    v("out", out,
      "--latency-table: the table file (default <model>.latency.json; <model>.latency.<runtime>.json for "
      "onnxruntime/openvino)");
    v("runtime", runtime,
      "run in libtorch (this process), onnxruntime or openvino (the model exported as skd-export does, or "
      "an .onnx file as it is); default libtorch, onnxruntime for an .onnx model");
    v("python", python,
      "--runtime onnxruntime|openvino: the Python with the runtime (default: $SKD_PYTHON, else python3; "
      "bash scripts/setup_venv.sh --runtimes makes one)");
  }
};

// Runs the mode the job selects (summary, or exactly one of data, inputs, latency, latency_table) and
// prints its report to `out`. skd::ParameterError naming the keys for an inconsistent job; errors of the
// files and the data as for evaluate, load_model, measure_latency_table.
void run_eval_job(const EvalJob& job, std::FILE* out);

}  // namespace skd::eval
