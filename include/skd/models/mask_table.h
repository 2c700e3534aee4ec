// The PIAD mask table (docs/algorithm.md §3.2): for every module (block i's attention and MLP) the width it
// keeps at each op code. Code 0 = the full super-network, code c = the network after the first c
// operations of the global dropout list (widths non-increasing in c for every module), code -1 = an
// alias of the last code K (the smallest sub-network). Plus the op code -> cost table that makes
// "largest sub-network within a MACs budget" a lookup (skd/extract/select.h).
//
// It lives in `models`, below both its writer (piad: training grows the table) and its reader
// (extract: selection by budget), so that neither depends on the other.
//
// The official file `mask_table.json` is an object with keys "0.attn", "0.mlp", "1.attn", ...
// (block order); each value maps the op code as a string ("0", "-1", "1", ..., "K") to the width.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/models/config.h"
#include "skd/models/macs.h"

namespace skd::models {

class MaskTable {
 public:
  MaskTable() = default;
  // Only code 0: every module at `full`.
  explicit MaskTable(const Widths& full);

  int64_t blocks() const { return static_cast<int64_t>(codes_.empty() ? 0 : codes_.front().size()); }
  // K: the last (smallest) code; 0 for a fresh table.
  int64_t last_code() const { return static_cast<int64_t>(codes_.size()) - 1; }
  // Widths of every block at `code` (-1 = last_code()). Throws std::invalid_argument naming the
  // code and the valid range (a user's code is checked by extract::select, which names its option).
  const Widths& widths(int64_t code) const;
  // Adds code K+1. Every width must be <= its width at code K (throws std::invalid_argument).
  void append(const Widths& widths);

  // The official schema (keys in the official insertion order: "0", "-1", "1", ..., "K").
  nlohmann::ordered_json to_json() const;
  // Parses the official schema for a model with `blocks` blocks whose full widths are `full`:
  // every module present, the same codes 0..K (and -1 = K) in each, widths within [0, full] and
  // non-increasing in the code. Errors (skd::FormatError: the content is malformed) name `source` and the
  // key.
  static MaskTable from_json(const nlohmann::json& j, const Widths& full, const std::string& source);

 private:
  std::vector<Widths> codes_;  // codes_[c][block]
};

// Cost of every code, in code order.
std::vector<ModelCost> code_costs(const ModelConfig& config, const MaskTable& table);

// Manifest entries of a super-network artifact: "mask_table" (official schema) and "op_codes"
// ([{code, macs_paper, macs_full, params}] for every code).
nlohmann::json supernet_manifest_entries(const ModelConfig& config, const MaskTable& table);

// The mask table of a super-network: read from `mask_table_path` (an official mask_table.json) when
// that is not empty, else from the artifact manifest's "mask_table". `config` = the model's
// architecture, `full` = its stored widths; `path_name` = the config key of the mask-table path, named
// in the errors. A file that cannot be opened, or neither a file nor a manifest table, is bad usage
// (skd::ParameterError); a table that is not JSON or does not fit the model is a format error
// (skd::FormatError, skd::ParameterFormatError for the file), naming the file.
// A manifest's "op_codes" (written next to its table by supernet_manifest_entries) is read back when
// present and must equal the costs computed from `config` and the table (check_op_codes): a
// disagreement means the file was edited or written by another cost model, and selection by MACs
// would silently pick by other numbers than the ones printed. A table given by file carries no
// op_codes (the official schema has none).
MaskTable load_mask_table(const nlohmann::json& manifest, const std::string& mask_table_path,
                          const ModelConfig& config, const Widths& full, const std::string& model_path,
                          const std::string& path_name = "mask_table");
// Checks an "op_codes" entry against `costs` (one per code, code_costs): an array with one
// {code, macs_paper, macs_full, params} object per code, in code order, every number equal to the
// computed one. Throws skd::FormatError naming `source` and the first disagreeing code and field.
void check_op_codes(const nlohmann::json& op_codes, const std::vector<ModelCost>& costs, const std::string& source);
// Writes the official mask_table.json (indent 4) atomically.
void write_mask_table(const std::string& path, const MaskTable& table);

}  // namespace skd::models
