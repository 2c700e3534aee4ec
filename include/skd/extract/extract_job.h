// One skd-extract run as a library entry point: load a super-network (or any elastic model), select a
// sub-network (op code, MACs, ratio of the full MACs or latency from a latency table: extract::select;
// or explicit widths / keep fractions), slice it (extract::extract) and save it, or list the op-code
// table. skd-extract only parses its flags into an ExtractJob and calls run_extract_job.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "skd/extract/select.h"

namespace skd::extract {

// The options of an extraction, by config key (skd/core/options.h). At most one selection: op_code,
// macs, macs_ratio, latency, widths, or attn_keep/mlp_keep; none = the stored widths.
struct ExtractJob {
  std::string model;       // super-network / elastic model artifact (or checkpoint with arch)
  std::string arch;        // for foreign checkpoints
  std::string mask_table;  // official mask_table.json (a .pth super-network, or to override the artifact's)
  std::optional<int64_t> op_code;    // code of the mask table (0 = full, -1 = smallest)
  std::string macs;                  // a MACs budget, "2.43G"
  std::optional<double> macs_ratio;  // a fraction of the full MACs
  std::string latency;               // a latency budget, "5ms" (from latency_table)
  std::string widths;                // per block "attn:mlp,attn:mlp,..."
  double attn_keep = 1.0, mlp_keep = 1.0;
  MacsConvention macs_convention = MacsConvention::PAPER;
  std::optional<int64_t> batch;      // the batch size a latency budget is for (default 1)
  std::string latency_table;         // default: latency_table_path(model)
  bool list = false;                 // print the op code -> MACs/params table instead of extracting
  std::string out;                   // the sub-network artifact
  bool fold_scale = false;           // ExtractOptions::fold_scale

  template <typename V>
  void visit(V&& v) {
    v("model", model); v("arch", arch); v("mask_table", mask_table);
    v("op_code", op_code); v("macs", macs); v("macs_ratio", macs_ratio); v("latency", latency); v("widths", widths);
    v("attn_keep", attn_keep); v("mlp_keep", mlp_keep); v("macs_convention", macs_convention, kMacsConventionNames);
    v("batch", batch); v("latency_table", latency_table); v("list", list); v("out", out);
    v("fold_scale", fold_scale);
  }
};

// "a:m,a:m,..." (one pair per block) -> widths; skd::ParameterError naming key widths otherwise.
models::Widths parse_widths(const std::string& text, size_t blocks);

// Runs the job and prints what it did to `out`. `measure` says how to measure a missing latency table
// (its measure fields; the keys it names are the job's). skd::ParameterError naming the keys for an
// inconsistent job; errors of the files as for load_model, load_mask_table, select.
void run_extract_job(const ExtractJob& job, std::FILE* out, const BudgetNames& measure = {});

}  // namespace skd::extract
