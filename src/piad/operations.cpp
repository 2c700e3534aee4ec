#include "skd/piad/operations.h"

#include <algorithm>
#include <cmath>

#include "skd/core/error.h"

namespace skd::piad {

std::vector<Operation> module_operations(int64_t block, bool attention, const std::vector<double>& importance,
                                         int64_t group, double dim_macs) {
  SKD_CHECK(group > 0 && dim_macs > 0, "group ", group, " dim_macs ", dim_macs);
  const int64_t w0 = static_cast<int64_t>(importance.size());
  std::vector<Operation> ops;
  if (w0 == 0) return ops;
  for (double v : importance)
    if (!std::isfinite(v))
      throw std::invalid_argument(cat("PIAD: block ", block, (attention ? " attention" : " MLP"),
                                      ": importance is not finite"));
  // Suffix sums: tail[p] = Σ_{i≥p} I_i.
  std::vector<double> tail(static_cast<size_t>(w0) + 1, 0.0);
  for (int64_t i = w0 - 1; i >= 0; --i) tail[static_cast<size_t>(i)] = tail[static_cast<size_t>(i) + 1] + importance[static_cast<size_t>(i)];
  double prev = tail[0] / dim_macs;
  for (int64_t p = 0; p < w0; p += group) {
    const double tail_macs = static_cast<double>(w0 - p) * dim_macs;
    const double c = tail[static_cast<size_t>(p)] / tail_macs;
    if (c <= prev) {
      ops.push_back({block, attention, p, c, tail_macs, 0});
      prev = c;
    }
  }
  for (size_t j = 0; j + 1 < ops.size(); ++j) ops[j].macs -= ops[j + 1].macs;  // tail -> segment MACs
  return ops;
}

UpdateResult apply_operations(models::MaskTable& table, DropoutList ops, double budget) {
  UpdateResult r;
  std::stable_sort(ops.begin(), ops.end(),
                   [](const Operation& a, const Operation& b) { return a.contribution < b.contribution; });
  double sum = 0;
  bool counting = true;
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i].rank = static_cast<int64_t>(i) + 1;
    if (counting && sum + ops[i].macs <= budget) {
      sum += ops[i].macs;
      r.added = ops[i].rank;
    } else {
      counting = false;
    }
  }
  r.macs_added = sum;
  for (int64_t t = 1; t <= r.added; ++t) {  // code K+t: the operations of rank <= t applied
    models::Widths w = table.widths(-1);
    const auto& op = ops[static_cast<size_t>(t) - 1];
    auto& width = op.attention ? w.at(static_cast<size_t>(op.block)).attn : w.at(static_cast<size_t>(op.block)).mlp;
    width = std::min(width, op.mask_point);
    table.append(w);
  }
  r.ranked = std::move(ops);
  return r;
}

}  // namespace skd::piad
