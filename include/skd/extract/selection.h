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

#include "skd/extract/select.h"
#include "skd/models/checkpoint.h"

namespace skd::extract {

// At most one of op_code, macs, macs_ratio, latency, widths and attn_keep/mlp_keep; none = the model
// at its stored widths.
struct SubnetSelection {
  std::string mask_table;  // official mask_table.json (a .pth super-network, or to override the artifact's)
  std::optional<int64_t> op_code;  // code of the mask table (0 = full, -1 = smallest)
  std::string macs;                // a MACs budget, "2.43G"
  std::string macs_ratio;  // a fraction of the full MACs: "0.333", "4/12" or "4:12" (parse_macs_ratio)
  std::string latency;     // a latency budget, "5ms" (from latency_table)
  std::string widths;      // per block "attn:mlp,attn:mlp,..."
  double attn_keep = 1.0, mlp_keep = 1.0;
  MacsConvention macs_convention = MacsConvention::PAPER;
  std::optional<int64_t> batch;  // the batch size a latency budget is for (default 1)
  std::string latency_table;     // default: latency_table_path(model)

  template <typename V>
  void visit(V&& v) {
    visit_keys(v, true);
  }
  // The fields without `batch` when `batch_key` is false: a job whose own "batch" key decides the
  // latency budget's batch size (skd-export's graph batch) sets `batch` itself.
  template <typename V>
  void visit_keys(V&& v, bool batch_key) {
    v("mask_table", mask_table);
    v("op_code", op_code); v("macs", macs); v("macs_ratio", macs_ratio); v("latency", latency); v("widths", widths);
    v("attn_keep", attn_keep); v("mlp_keep", mlp_keep); v("macs_convention", macs_convention, kMacsConventionNames);
    if (batch_key) v("batch", batch);
    v("latency_table", latency_table);
  }

  // Whether a code of the mask table is selected (op_code, macs, macs_ratio or latency).
  bool by_table() const;
};

// A fraction of the full network's MACs in (0, 1]: a decimal ("0.333", "1"), "n/d" or the paper's "n:12"
// notation (= n/12). skd::ParameterError naming `key` and the accepted forms otherwise.
double parse_macs_ratio(const std::string& text, const std::string& key = "macs_ratio");

// "a:m,a:m,..." (one pair per block) -> widths; skd::ParameterError naming key widths otherwise.
models::Widths parse_widths(const std::string& text, size_t blocks);

// The combinations and ranges a selection may not have (skd::ParameterError naming the keys): more
// than one selection (the command line and a config together), a macs_ratio that parse_macs_ratio
// refuses, a batch that is not positive, batch or latency_table without latency.
void check_selection(const SubnetSelection& selection);

// The names a job's errors give the budget inputs: its config keys, and how to measure a missing latency
// table as `measure` says.
BudgetNames selection_names(const BudgetNames& measure = {});

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
// naming `names`.
SubnetChoice resolve_selection(const models::LoadedModel& loaded, const SubnetSelection& selection,
                               const SupernetFile& file, const BudgetNames& names = selection_names());

// Prints how a code was chosen: the measured latency of a latency budget, "op code k of 0..K".
void print_selection(const Selection& selection, std::FILE* out);

}  // namespace skd::extract
