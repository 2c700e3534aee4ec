// One skd-extract run as a library entry point: load a super-network (or any elastic model), select a
// sub-network (extract::resolve_selection: op code, MACs, ratio of the full MACs or latency from a
// latency table; or explicit widths / keep fractions), slice it (extract::extract) and save it, or list
// the op-code table. skd-extract only parses its flags into an ExtractJob and calls run_extract_job.
#pragma once

#include <cstdio>
#include <string>

#include "skd/extract/selection.h"

namespace skd::extract {

// The options of an extraction, by config key (skd/core/options.h); the selection's keys are flat
// (op_code, macs, ...: SubnetSelection).
struct ExtractJob {
  std::string model;          // super-network / elastic model artifact (or checkpoint with arch)
  std::string arch;           // for foreign checkpoints
  SubnetSelection selection;  // at most one; none = the stored widths
  bool list = false;          // print the op code -> MACs/params table instead of extracting
  std::string out;            // the sub-network artifact
  bool fold_scale = false;    // ExtractOptions::fold_scale
  std::string python;         // --runtime onnxruntime|openvino: the interpreter that reports its version

  template <typename V>
  void visit(V&& v) {
    v("model", model, "super-network / elastic model artifact (or checkpoint with --arch)");
    v("arch", arch, "architecture for foreign checkpoints");
    selection.visit(v);
    v("list", list,
      "print the op code -> MACs/params table of the super-network and exit (--macs-convention: its MACs)");
    v("out", out, "output artifact (.safetensors)");
    v("fold_scale", fold_scale,
      "fold each block's softmax scale into its query weights (the sub-network is then "
      "exact under the default 1/sqrt(head dim); manifest: attn_scale_folded)");
    v("python", python,
      "--runtime onnxruntime|openvino: the Python whose runtime version the table must match "
      "(default: $SKD_PYTHON, else python3; bash scripts/setup_venv.sh --runtimes makes one)");
  }
};

// Runs the job and prints what it did to `out`. skd::ParameterError naming the keys for an
// inconsistent job; errors of the files as for load_model, load_mask_table, select.
void run_extract_job(const ExtractJob& job, std::FILE* out);

}  // namespace skd::extract
