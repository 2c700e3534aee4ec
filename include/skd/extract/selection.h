// The one way skd-extract and skd-export choose a sub-network: the selection options they share
// (SubnetSelection, listed under the flat config keys op_code, macs, macs_ratio, latency, widths,
// attn_keep/mlp_keep, macs_convention, batch, latency_table, mask_table), the one function that resolves
// them against a loaded model (resolve_selection: a code of the mask table through extract::select, or
// explicit widths / keep fractions, or the stored widths), and the parsers of their text values.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "skd/core/units.h"
#include "skd/extract/select.h"
#include "skd/models/checkpoint.h"

namespace skd::extract {

// At most one of op_code, macs, macs_ratio, latency, widths and attn_keep/mlp_keep; none = the model
// at its stored widths.
struct SubnetSelection {
  std::string mask_table;
  std::optional<int64_t> op_code;
  std::optional<Macs> macs;
  std::optional<MacsRatio> macs_ratio;
  std::optional<Duration> latency;
  std::string widths;
  double attn_keep = 1.0, mlp_keep = 1.0;
  MacsConvention macs_convention = MacsConvention::PAPER;
  std::optional<int64_t> batch;  // default 1
  std::string latency_table;     // default: latency_table_path(model)
  std::string runtime;           // --latency: the runtime the table must be of ("" = the table's own)

  template <typename V>
  void visit(V&& v) {
    visit_keys(v, true);
  }
  // The fields without `batch` when `batch_key` is false: a job whose own "batch" key decides the
  // latency budget's batch size (skd-export's graph batch) sets `batch` itself.
  template <typename V>
  void visit_keys(V&& v, bool batch_key) {
    v("mask_table", mask_table,
      "official mask_table.json (for a .pth super-network, or to override the artifact's table)");
    v("op_code", op_code, "code of the mask table (0 = full, -1 = smallest)");
    v("macs", macs, "largest sub-network with at most these MACs (2.43G, 897M, ...)");
    v("macs_ratio", macs_ratio,
      "largest sub-network with at most this fraction of the full network's MACs: "
      "0.333, 4/12 or 4:12 (the paper's n:12)");
    v("latency", latency,
      "largest sub-network whose measured median latency fits (5ms, 800us, 0.5s; from "
      "--latency-table)");
    v("widths", widths, "per-block widths 'attn:mlp,attn:mlp,...'");
    v("attn_keep", attn_keep, "keep this fraction of every head's q/k/v dims");
    v("mlp_keep", mlp_keep, "keep this fraction of every MLP's hidden units");
    v("macs_convention", macs_convention, kMacsConventionNames,
      "MACs convention of --macs/--macs-ratio: paper = ptflops rules, the paper's numbers; full = + "
      "attention "
      "matmuls");
    if (batch_key) v("batch", batch, "--latency: the batch size the budget is for");
    v("latency_table", latency_table,
      "--latency: the table of skd-eval --latency-table (default "
      "<model>.latency.json)");
    v("runtime", runtime,
      "--latency: the runtime the sub-network will run in (libtorch, onnxruntime, openvino): the table "
      "must have been measured in it, at the version installed here (default: the table's runtime)");
  }

  // Whether a code of the mask table is selected (op_code, macs, macs_ratio or latency).
  bool by_table() const;
};

// "a:m,a:m,..." (one pair per block) -> widths; skd::ParameterError naming key widths otherwise.
models::Widths parse_widths(const std::string& text, size_t blocks);
// The text parse_widths reads: "attn:mlp,attn:mlp,..." (logs, listings, errors).
std::string widths_text(const models::Widths& widths);

// The combinations and ranges a selection may not have (skd::ParameterError naming the keys): more
// than one selection (the command line and a config together),
// refuses, a batch that is not positive, batch or latency_table without latency.
void check_selection(const SubnetSelection& selection);

// The files a selection reads (mask table, latency table), for skd::check_output_file.
std::vector<std::string> selection_inputs(const SubnetSelection& selection, const std::string& model_path);

// What a selection chose: a code of the mask table (with its widths, cost and provenance), or widths.
struct SubnetChoice {
  std::optional<Selection> selection;  // op_code, macs, macs_ratio, latency
  models::Widths widths;               // the widths to slice to (the selection's when there is one)
};

// Resolves `selection` for the loaded model at `file` (its path and sha256): checks it
// (check_selection), then a code of the mask table (models::load_mask_table + extract::select), explicit
// widths (parse_widths), keep fractions (models::keep_fraction) or the stored widths. A mask_table with
// nothing selected from it is refused. Errors as for check_selection, load_mask_table and select,
// naming the selection's config keys.
SubnetChoice resolve_selection(const models::LoadedModel& loaded, const SubnetSelection& selection,
                               const SupernetFile& file);

// Prints how a code was chosen: the measured latency of a latency budget, "op code k of 0..K".
void print_selection(const Selection& selection, std::FILE* out);

}  // namespace skd::extract
