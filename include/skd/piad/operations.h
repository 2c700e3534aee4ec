// PIAD's mask-table update (docs/algorithm.md §3.6): per-module dropout operations from normalised
// importances, the global ranking against a cumulative MACs budget, and the extension of the mask
// table by the selected operations.
//
// Per module with current width w0 > 0, importance I over its dims [0, w0) (I = γ · Θ / ΣΘ, eq. 14),
// cut points p = 0, g, 2g, ... < w0 and per-dim cost `dim_macs`:
//   c(p) = Σ_{i≥p} I_i / ((w0 − p) · dim_macs)        importance per MAC of everything from p on
// walking p upward from prev = ΣI / dim_macs, p becomes an operation when c(p) ≤ prev (then prev =
// c(p)); otherwise its group merges into the preceding operation (the official "merge" rule, kept as
// is, including its quirk that a module with negative γ usually gets no operation: docs/algorithm.md §6).
// An operation removes [p_j, p_{j+1}) (the last one [p_L, w0)), costs that segment's MACs and is
// ranked by its tail average c(p_j).
//
// Global update: all modules' operations sorted ascending by contribution (stable: block order,
// attention before MLP, lower cut point first), ranks 1, 2, ...; A = the largest k whose cumulative
// segment MACs fit the budget. The table grows by codes K+1 ... K+A where the width of a module at
// code K+t is the smallest cut point among its operations of rank ≤ t (its old width if none) — the
// net effect of the official fix_mask_table, stated so that ties cannot apply a module's operations
// out of order (docs/algorithm.md §6 D5).
#pragma once

#include <cstdint>
#include <vector>

#include "skd/models/mask_table.h"

namespace skd::piad {

// A droppable unit of the paper (one group of a module's dims, or several groups merged by the rule
// above): dropping it cuts the module to `mask_point`. The official code calls it an operation.
struct Operation {
  int64_t block = 0;
  bool attention = true;   // attention module (else MLP)
  int64_t mask_point = 0;  // new width once applied
  double contribution = 0; // tail-average importance per MAC (rank score, ascending = removed first)
  double macs = 0;         // segment MACs removed
  int64_t rank = 0;        // global rank (1-based), 0 = not ranked
};

// The paper's dropout list: droppable units in rank order, the least important first. Op code K+t of
// the mask table drops the first t units appended by an update (the table is the list made widths).
using DropoutList = std::vector<Operation>;

// Operations of one module (see above), in cut-point order. `importance` (I) has w0 entries; `group` > 0; `dim_macs` > 0.
// Throws std::invalid_argument when an importance is not finite.
std::vector<Operation> module_operations(int64_t block, bool attention, const std::vector<double>& importance,
                                         int64_t group, double dim_macs);

struct UpdateResult {
  DropoutList ranked;             // every candidate operation, with its rank, in rank order
  int64_t added = 0;              // A: operations applied (= codes added)
  double macs_added = 0;          // MACs they remove
};

// Ranks `ops` (all modules' operations), selects A within `budget` MACs and appends A codes to
// `table` (no change when A = 0).
UpdateResult apply_operations(models::MaskTable& table, DropoutList ops, double budget);

}  // namespace skd::piad
