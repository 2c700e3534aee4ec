#include "skd/extract/select.h"

#include <cmath>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"

namespace skd::extract {

MacsConvention parse_macs_convention(const std::string& value, const std::string& name) {
  return parse_enum(value, kMacsConventionNames, name);
}

const char* macs_convention_name(MacsConvention convention) { return enum_name(convention, kMacsConventionNames); }

int64_t macs_of(const models::ModelCost& cost, MacsConvention convention) {
  return convention == MacsConvention::PAPER ? cost.macs_paper : cost.macs_full;
}

int64_t code_for_macs(const std::vector<models::ModelCost>& costs, int64_t budget, MacsConvention convention,
                      const std::string& name) {
  SKD_CHECK(!costs.empty());
  for (size_t c = 0; c < costs.size(); ++c)
    if (macs_of(costs[c], convention) <= budget) return static_cast<int64_t>(c);
  const int64_t smallest = macs_of(costs.back(), convention);
  throw ParameterError(name, cat(" ", models::macs_format(budget), " (", budget,
                                 ") is below the smallest sub-network in the mask table: code ",
                                 costs.size() - 1, " at ", models::macs_format(smallest), " (", smallest,
                                 " MACs, ", macs_convention_name(convention), " convention)"));
}

Budget Budget::of_op_code(int64_t code) {
  Budget b;
  b.kind = Kind::OP_CODE;
  b.op_code = code;
  return b;
}

Budget Budget::of_macs(int64_t macs, MacsConvention convention) {
  Budget b;
  b.kind = Kind::MACS;
  b.macs = macs;
  b.convention = convention;
  return b;
}

Budget Budget::of_macs_ratio(double ratio, MacsConvention convention) {
  Budget b;
  b.kind = Kind::MACS_RATIO;
  b.ratio = ratio;
  b.convention = convention;
  return b;
}

Budget Budget::of_latency(double ms, int64_t batch_size, std::string table_path) {
  Budget b;
  b.kind = Kind::LATENCY;
  b.latency_ms = ms;
  b.batch_size = batch_size;
  b.latency_table = std::move(table_path);
  return b;
}

namespace {

// The code of a latency budget, with the measured numbers it was chosen by.
LatencyChoice choose_by_latency(const Budget& b, const models::MaskTable& table,
                                const SupernetFile& supernet) {
  const int64_t num_codes = table.last_code() + 1;
  LatencyChoice c;
  c.budget_ms = b.latency_ms;
  c.table_path = b.latency_table.empty() ? latency_table_path(supernet.path, b.runtime) : b.latency_table;
  const std::string measure = b.runtime.empty() || b.runtime == "libtorch"
                                  ? kMeasureLatencyTable
                                  : cat(kMeasureLatencyTable, " --runtime ", b.runtime);
  const auto t = read_latency_table(c.table_path, measure);
  // A table times one runtime (and one version of it): a budget for another is not answered by it.
  if (!b.runtime.empty() && t.runtime != b.runtime)
    throw ParameterError([=](const KeyNamer& n) {
      return cat(n("latency_table"), " '", c.table_path, "' was measured in ", t.runtime, " ",
                 t.runtime_version, ", not in ", b.runtime, " (", n("runtime"), "): measure it with ",
                 kMeasureLatencyTable, " --runtime ", b.runtime);
    });
  if (!b.runtime.empty() && !b.runtime_version.empty() && t.runtime_version != b.runtime_version)
    throw ParameterError([=](const KeyNamer& n) {
      return cat(n("latency_table"), " '", c.table_path, "' was measured in ", t.runtime, " ",
                 t.runtime_version, ", but ", b.runtime, " ", b.runtime_version, " runs here (", n("runtime"),
                 "): measure it again with ", kMeasureLatencyTable, " --runtime ", b.runtime);
    });
  std::vector<models::Widths> widths;  // the sub-networks the codes select now (a mask_table override too)
  for (int64_t k = 0; k < num_codes; ++k) widths.push_back(table.widths(k));
  // another model file is the first thing to say (code_for_latency); then the widths of the same file's codes
  if (t.model_sha256 == supernet.sha256) check_latency_table_widths(t, widths, c.table_path);
  c.measured = code_for_latency(t, b.latency_ms, b.batch_size, supernet.sha256, num_codes, c.table_path);
  c.device = t.device;
  c.amp = t.amp;
  c.created = t.created;
  c.threads = t.threads;
  c.runtime = t.runtime;
  c.runtime_version = t.runtime_version;
  return c;
}

}  // namespace

Selection select(const models::ModelConfig& config, const models::MaskTable& table, const Budget& budget,
                 const SupernetFile& supernet) {
  const auto costs = models::code_costs(config, table);
  const int64_t k = table.last_code();
  Selection s;
  s.last_code = k;
  switch (budget.kind) {
    case Budget::Kind::OP_CODE:
      if (budget.op_code < -1 || budget.op_code > k)
        throw ParameterError("op_code", cat(" ", budget.op_code, " is not in the mask table (codes 0..", k,
                                            ", or -1 = ", k, ")"));
      s.code = budget.op_code == -1 ? k : budget.op_code;
      s.description = cat("op code ", budget.op_code);
      break;
    case Budget::Kind::MACS:
    case Budget::Kind::MACS_RATIO: {
      // A ratio is of the full network (code 0) in the same convention, rounded down: the budget
      // never exceeds the fraction asked for.
      const int64_t macs = budget.kind == Budget::Kind::MACS
                               ? budget.macs
                               : static_cast<int64_t>(std::floor(
                                     budget.ratio * static_cast<double>(macs_of(costs[0], budget.convention))));
      s.code = code_for_macs(costs, macs, budget.convention,
                             budget.kind == Budget::Kind::MACS_RATIO ? "macs_ratio" : "macs");
      s.macs_budget = macs;
      s.provenance["macs_budget"] = macs;
      s.provenance["macs_convention"] = macs_convention_name(budget.convention);
      const std::string of_full =
          budget.kind == Budget::Kind::MACS_RATIO ? cat(", ", budget.ratio, " of the full network") : "";
      s.description = cat("largest sub-network with MACs <= ", models::macs_format(macs), " (",
                          macs_convention_name(budget.convention), " convention", of_full, ")");
      break;
    }
    case Budget::Kind::LATENCY: {
      const auto c = choose_by_latency(budget, table, supernet);
      s.code = c.measured.code;
      s.provenance["latency"] = {{"budget_ms", c.budget_ms},
                                 {"batch_size", c.measured.batch_size},
                                 {"median_ms", c.measured.median_ms},
                                 {"p10_ms", c.measured.p10_ms},
                                 {"p90_ms", c.measured.p90_ms},
                                 {"device", c.device},
                                 {"threads", c.threads},
                                 {"amp", c.amp},
                                 {"table", c.table_path},
                                 {"measured", c.created},
                                 {"runtime", c.runtime},
                                 {"runtime_version", c.runtime_version}};
      s.description = cat("largest sub-network with median latency <= ", c.budget_ms, " ms at batch ",
                          c.measured.batch_size, " in ", c.runtime, " (", c.table_path, ")");
      s.latency = c;
      break;
    }
  }
  s.widths = table.widths(s.code);
  s.cost = costs[static_cast<size_t>(s.code)];
  return s;
}

}  // namespace skd::extract
