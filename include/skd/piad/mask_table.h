// The PIAD mask table (reference §4.3): for every module (block i's attention and MLP) the width it
// keeps at each op code. Code 0 = the full super-network, code c = the network after the first c
// operations of the global dropout list (widths non-increasing in c for every module), code -1 = an
// alias of the last code K (the smallest sub-network). Plus the op code -> cost table that makes
// "largest sub-network within a MACs budget" a lookup.
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

namespace skd::piad {

class MaskTable {
 public:
  MaskTable() = default;
  // Only code 0: every module at `full`.
  explicit MaskTable(const models::Widths& full);

  int64_t blocks() const { return static_cast<int64_t>(codes_.empty() ? 0 : codes_.front().size()); }
  // K: the last (smallest) code; 0 for a fresh table.
  int64_t last_code() const { return static_cast<int64_t>(codes_.size()) - 1; }
  // Widths of every block at `code` (-1 = last_code()). Throws std::invalid_argument naming the
  // code and the valid range.
  const models::Widths& widths(int64_t code) const;
  // Adds code K+1. Every width must be <= its width at code K (throws std::invalid_argument).
  void append(const models::Widths& widths);

  // The official schema (keys in the official insertion order: "0", "-1", "1", ..., "K").
  nlohmann::ordered_json to_json() const;
  // Parses the official schema for a model with `blocks` blocks whose full widths are `full`:
  // every module present, the same codes 0..K (and -1 = K) in each, widths within [0, full] and
  // non-increasing in the code. Errors (std::invalid_argument) name `source` and the key.
  static MaskTable from_json(const nlohmann::json& j, const models::Widths& full, const std::string& source);

 private:
  std::vector<models::Widths> codes_;  // codes_[c][block]
};

// Cost of every code, in code order.
std::vector<models::ModelCost> code_costs(const models::ModelConfig& config, const MaskTable& table);

enum class MacsConvention { PAPER, FULL };
MacsConvention parse_macs_convention(const std::string& name);  // "paper" | "full", names --macs-convention
int64_t macs_of(const models::ModelCost& cost, MacsConvention convention);

// The code of the largest sub-network whose MACs (in `convention`) are <= `budget`: the smallest such
// code (costs are non-increasing in the code). A budget at or above the full network gives code 0; one
// below the smallest sub-network throws std::invalid_argument naming the smallest available MACs.
int64_t code_for_macs(const std::vector<models::ModelCost>& costs, int64_t budget, MacsConvention convention);

// Parses a MACs amount: "2.43G", "2.43GMac", "897M", "897.0 MMac", "1.5e9", "123456" (plain count).
// Throws std::invalid_argument naming `flag` and the value.
int64_t parse_macs(const std::string& text, const std::string& flag);

// Manifest entries of a super-network artifact: "mask_table" (official schema) and "op_codes"
// ([{code, macs_paper, macs_full, params}] for every code).
nlohmann::json supernet_manifest_entries(const models::ModelConfig& config, const MaskTable& table);
// The mask table of a super-network: read from `mask_table_path` (an official mask_table.json) when
// that is not empty, else from the artifact manifest's "mask_table". `full` = the model's stored
// widths. Throws std::invalid_argument naming the file when there is neither or it does not fit.
MaskTable load_mask_table(const nlohmann::json& manifest, const std::string& mask_table_path,
                          const models::Widths& full, const std::string& model_path);
// Writes the official mask_table.json (indent 4) atomically.
void write_mask_table(const std::string& path, const MaskTable& table);

}  // namespace skd::piad
