// Selecting a sub-network of a super-network by budget (once trained, any sub-network is
// a lookup in the mask table, without data or search). A budget is an op code, a MACs amount in a
// named convention, a fraction of the full network's MACs, or a latency at a batch size from a
// measured latency table (skd/extract/latency_table.h); select() turns it into the op code, its
// widths and cost, and the provenance an extracted artifact records.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/extract/latency_table.h"
#include "skd/models/config.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"

namespace skd::extract {

// MACs conventions: PAPER = ptflops rules (the paper's numbers), FULL = + the attention matmuls.
enum class MacsConvention { PAPER, FULL };
inline constexpr std::pair<const char*, MacsConvention> kMacsConventionNames[] = {{"paper", MacsConvention::PAPER},
                                                                                 {"full", MacsConvention::FULL}};
// "paper" | "full"; skd::ParameterError naming the config key `name` otherwise.
MacsConvention parse_macs_convention(const std::string& value, const std::string& name = "macs_convention");
const char* macs_convention_name(MacsConvention convention);
int64_t macs_of(const models::ModelCost& cost, MacsConvention convention);

// The code of the largest sub-network whose MACs (in `convention`) are <= `budget`: the smallest such
// code (costs are non-increasing in the code). A budget at or above the full network gives code 0; one
// below the smallest sub-network throws std::invalid_argument naming `name` and the smallest
// available MACs.
int64_t code_for_macs(const std::vector<models::ModelCost>& costs, int64_t budget, MacsConvention convention,
                      const std::string& name = "macs");

struct Budget {
  enum class Kind { OP_CODE, MACS, MACS_RATIO, LATENCY };
  Kind kind = Kind::OP_CODE;
  int64_t op_code = 0;                              // OP_CODE: 0 = full, -1 = the last (smallest) code
  int64_t macs = 0;                                 // MACS
  double ratio = 1;                                 // MACS_RATIO: of the full network's MACs
  MacsConvention convention = MacsConvention::PAPER;  // MACS, MACS_RATIO
  double latency_ms = 0;                            // LATENCY: median forward latency
  int64_t batch_size = 1;                           // LATENCY: the batch size the budget is for
  std::string latency_table;                        // LATENCY: table file (empty: latency_table_path(model))
  // LATENCY: the runtime the table must have been measured in ("" = whichever it names) and, when not
  // empty, the version of it that runs here (a table of another version is refused).
  std::string runtime, runtime_version;

  static Budget of_op_code(int64_t code);
  static Budget of_macs(int64_t macs, MacsConvention convention);
  static Budget of_macs_ratio(double ratio, MacsConvention convention);
  static Budget of_latency(double ms, int64_t batch_size, std::string table_path = "");
};

// A latency budget's outcome: the measured numbers of the chosen code and where they come from.
struct LatencyChoice {
  double budget_ms = 0;
  LatencySelection measured;
  std::string table_path, device, amp, created;
  std::string runtime, runtime_version;  // the table's
  int threads = 0;
};

struct Selection {
  int64_t code = 0;       // resolved: never -1
  int64_t last_code = 0;  // K of the mask table
  models::Widths widths;
  models::ModelCost cost;
  std::string description;  // how it was chosen, one line ("op code 3", "MACs <= 1.2 GMac (paper)", ...)
  // The budget fields an extracted artifact's provenance records: "macs_budget" + "macs_convention"
  // for MACs budgets, "latency" for latency budgets (op_code and file names are extract()'s).
  nlohmann::json provenance = nlohmann::json::object();
  std::optional<int64_t> macs_budget;   // MACS / MACS_RATIO: the budget in MACs
  std::optional<LatencyChoice> latency;  // LATENCY
};

// Where the super-network comes from: a latency budget needs its file (the default table is its
// sidecar, and a table only applies to the file with `model_sha256`).
struct SupernetFile {
  std::string path;
  std::string sha256;
  // The installed version of a runtime (budget.runtime), asked only for a latency budget that names one
  // (skd::deploy::installed_runtime_version by default when unset).
  std::function<std::string(const std::string&)> runtime_version = nullptr;
};

// The sub-network of `table` (the mask table of a super-network of architecture `config`) that
// `budget` selects: the op code itself, or the lowest code (the largest sub-network) whose MACs or
// measured median latency fit. Errors (skd::ParameterError) name the selection's config keys (op_code,
// macs or macs_ratio, latency, batch, latency_table; an app renders them as its flags): a
// code outside 0..K (or -1), a budget below the smallest sub-network, a latency table that is
// missing, for another file, or without the batch size.
Selection select(const models::ModelConfig& config, const models::MaskTable& table, const Budget& budget,
                 const SupernetFile& supernet = {});

}  // namespace skd::extract
