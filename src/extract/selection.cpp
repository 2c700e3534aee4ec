#include "skd/extract/selection.h"

#include <sstream>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/options.h"
#include "skd/deploy/runtime.h"
#include "skd/models/mask_table.h"
#include "skd/models/slice.h"

namespace skd::extract {

bool SubnetSelection::by_table() const {
  return op_code.has_value() || macs.has_value() || macs_ratio.has_value() || latency.has_value();
}

models::Widths parse_widths(const std::string& text, size_t blocks) {
  models::Widths w;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("no ':'");
      size_t p1 = 0, p2 = 0;
      const int64_t a = std::stoll(item.substr(0, colon), &p1);
      const int64_t m = std::stoll(item.substr(colon + 1), &p2);
      if (p1 != colon || p2 != item.size() - colon - 1) throw std::invalid_argument("trailing characters");
      w.push_back({a, m});
    } catch (const std::exception&) {
      throw ParameterError("widths", cat(": '", item, "' is not 'attn:mlp' (e.g. 32:768)"));
    }
  }
  if (w.size() != blocks)
    throw ParameterError("widths", cat(": ", w.size(), " pairs given, the model has ", blocks, " blocks"));
  return w;
}

std::string widths_text(const models::Widths& widths) {
  std::string s;
  for (const auto& b : widths) s += cat(s.empty() ? "" : ",", b.attn, ":", b.mlp);
  return s;
}

void check_selection(const SubnetSelection& s) {
  using N = const KeyNamer&;
  // The ranges, for flags and --config alike (docs/reliability.md, issue 25); attn_keep/mlp_keep are
  // models::keep_fraction's.
  if (s.batch && *s.batch <= 0) throw ParameterError("batch", cat(" must be positive (got ", *s.batch, ")"));
  const int selections = s.op_code.has_value() + s.macs.has_value() + s.macs_ratio.has_value() +
                         s.latency.has_value() + !s.widths.empty() +
                         (s.attn_keep != 1.0 || s.mlp_keep != 1.0);
  if (selections > 1)
    throw ParameterError([](N n) {
      return cat("give at most one of ", n("op_code"), ", ", n("macs"), ", ", n("macs_ratio"), ", ",
                 n("latency"), ", ", n("widths"), " and ", n("attn_keep"), "/", n("mlp_keep"),
                 " (the command line and ", n("config"), " together)");
    });
  if ((s.batch || !s.latency_table.empty() || !s.runtime.empty()) && !s.latency)
    throw ParameterError([](N n) {
      return cat(n("batch"), ", ", n("latency_table"), " and ", n("runtime"), " go with ", n("latency"));
    });
  if (!s.runtime.empty()) parse_enum(s.runtime, deploy::kRuntimeNames, "runtime");
}

std::vector<std::string> selection_inputs(const SubnetSelection& s, const std::string& model_path) {
  return {s.mask_table, s.latency_table, s.latency ? latency_table_path(model_path, s.runtime) : ""};
}

namespace {

// The budget of a selection that takes a code of the mask table.
Budget budget_of(const SubnetSelection& s) {
  if (s.macs) return Budget::of_macs(s.macs->count, s.macs_convention);
  if (s.macs_ratio) return Budget::of_macs_ratio(s.macs_ratio->value, s.macs_convention);
  if (s.latency) {
    auto b = Budget::of_latency(s.latency->ms, s.batch.value_or(1), s.latency_table);
    b.runtime = s.runtime;
    return b;
  }
  return Budget::of_op_code(s.op_code.value_or(0));
}

}  // namespace

SubnetChoice resolve_selection(const models::LoadedModel& loaded, const SubnetSelection& s,
                               const SupernetFile& file) {
  check_selection(s);
  const auto& model = *loaded.model;
  const auto& c = model.config();
  SubnetChoice choice;
  if (s.by_table()) {
    const auto table =
        models::load_mask_table(loaded.manifest, s.mask_table, c, model.widths(), file.path, "mask_table");
    auto budget = budget_of(s);
    if (!budget.runtime.empty())
      budget.runtime_version = file.runtime_version ? file.runtime_version(budget.runtime)
                                                    : deploy::installed_runtime_version(budget.runtime, "");
    choice.selection = select(c, table, budget, file);  // throws naming the valid codes
    choice.widths = choice.selection->widths;
    return choice;
  }
  if (!s.mask_table.empty())
    throw ParameterError([](const KeyNamer& n) {
      return cat(n("mask_table"), " selects nothing by itself: add ", n("op_code"), ", ", n("macs"), ", ",
                 n("macs_ratio"), " or ", n("latency"));
    });
  choice.widths = !s.widths.empty() ? parse_widths(s.widths, static_cast<size_t>(c.num_blocks()))
                                    : models::keep_fraction(model.widths(), s.attn_keep, s.mlp_keep);
  return choice;
}

void print_selection(const Selection& sel, std::FILE* out) {
  if (sel.latency) {
    const auto& l = *sel.latency;
    std::fprintf(
        out,
        "latency budget %.3f ms at batch %lld: measured %.3f ms [p10 %.3f, p90 %.3f] in %s %s on %s, %d "
        "threads\n",
        l.budget_ms, static_cast<long long>(l.measured.batch_size), l.measured.median_ms, l.measured.p10_ms,
        l.measured.p90_ms, l.runtime.c_str(), l.runtime_version.c_str(), l.device.c_str(), l.threads);
  }
  std::fprintf(out, "op code %lld of 0..%lld\n", static_cast<long long>(sel.code),
               static_cast<long long>(sel.last_code));
}

}  // namespace skd::extract
