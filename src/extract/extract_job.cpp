#include "skd/extract/extract_job.h"

#include <chrono>
#include <sstream>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/extract/latency_table.h"
#include "skd/extract/extract.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"
#include "skd/models/slice.h"

namespace skd::extract {

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

namespace {

// The op code -> MACs/params table of a super-network.
void print_code_table(const models::ModelConfig& config, const models::MaskTable& table, std::FILE* out) {
  const auto costs = models::code_costs(config, table);
  std::fprintf(out, "%6s %14s %14s %12s  widths (attn:mlp per block)\n", "code", "MACs paper", "MACs full", "params");
  for (int64_t k = 0; k <= table.last_code(); ++k) {
    std::string ws;
    for (const auto& b : table.widths(k)) ws += cat(ws.empty() ? "" : ",", b.attn, ":", b.mlp);
    const auto& cost = costs[static_cast<size_t>(k)];
    std::fprintf(out, "%6lld %14s %14s %11.3fM  %s\n", static_cast<long long>(k),
                 models::macs_format(cost.macs_paper).c_str(), models::macs_format(cost.macs_full).c_str(),
                 cost.params / 1e6, ws.c_str());
  }
}

// The combinations of keys a job may not have.
void check_job(const ExtractJob& o) {
  using N = const KeyNamer&;
  // The ranges of the job's values, for flags and --config alike (docs/reliability.md, issue 25);
  // attn_keep/mlp_keep are models::keep_fraction's.
  if (o.macs_ratio && !(*o.macs_ratio > 0 && *o.macs_ratio <= 1))
    throw ParameterError("macs_ratio", cat(" ", *o.macs_ratio, ": expected a fraction in (0, 1]"));
  if (o.batch && *o.batch <= 0) throw ParameterError("batch", cat(" must be positive (got ", *o.batch, ")"));
  const int selections = o.op_code.has_value() + !o.macs.empty() + o.macs_ratio.has_value() + !o.latency.empty() +
                         !o.widths.empty() + (o.attn_keep != 1.0 || o.mlp_keep != 1.0);
  if (selections > 1)
    throw ParameterError([](N n) {
      return cat("give at most one of ", n("op_code"), ", ", n("macs"), ", ", n("macs_ratio"), ", ", n("latency"), ", ",
                 n("widths"), " and ", n("attn_keep"), "/", n("mlp_keep"), " (the command line and ", n("config"),
                 " together)");
    });
  if (!o.list && o.out.empty())
    throw ParameterError([](N n) { return cat(n("out"), " is required (or ", n("list"), ")"); });
  if ((o.batch || !o.latency_table.empty()) && o.latency.empty())
    throw ParameterError(
        [](N n) { return cat(n("batch"), " and ", n("latency_table"), " go with ", n("latency")); });
}

// The budget of a job that selects from the mask table.
Budget budget_of(const ExtractJob& o, const BudgetNames& names) {
  if (!o.macs.empty()) return Budget::of_macs(parse_macs(o.macs, names.macs), o.macs_convention);
  if (o.macs_ratio) return Budget::of_macs_ratio(*o.macs_ratio, o.macs_convention);
  if (!o.latency.empty())
    return Budget::of_latency(parse_duration_ms(o.latency, names.latency.budget), o.batch.value_or(1),
                              o.latency_table);
  return Budget::of_op_code(o.op_code.value_or(0));
}

}  // namespace

void run_extract_job(const ExtractJob& o, std::FILE* out, const BudgetNames& measure) {
  check_job(o);
  // The output checked before any work (docs/reliability.md, "Hostile input").
  if (!o.list) check_output_file("out", o.out, {o.model, o.arch, o.mask_table, o.latency_table,
                                                o.latency.empty() ? "" : latency_table_path(o.model)});
  BudgetNames names = measure;  // the keys are this job's
  names.op_code = "op_code";
  names.macs = "macs";
  names.mask_table = "mask_table";
  names.latency.budget = "latency";
  names.latency.batch = "batch";
  names.latency.table = "latency_table";
  using clock = std::chrono::steady_clock;
  const auto secs = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  const auto t0 = clock::now();
  auto loaded = models::load_model(o.model, o.arch);
  const auto& c = loaded.model->config();
  const bool by_table = o.list || o.op_code || !o.macs.empty() || o.macs_ratio || !o.latency.empty();
  const ExtractSource source{o.model, models::file_sha256(o.model), o.mask_table};
  const auto t_read = clock::now();
  Extracted sub;
  models::Widths widths;
  if (by_table) {
    const auto table =
        models::load_mask_table(loaded.manifest, o.mask_table, c, loaded.model->widths(), o.model, names.mask_table);
    if (o.list) return print_code_table(c, table, out);
    const auto sel = select(c, table, budget_of(o, names), {o.model, source.model_sha256}, names);
    if (sel.latency) {
      const auto& l = *sel.latency;
      std::fprintf(out, "latency budget %.3f ms at batch %lld: measured %.3f ms [p10 %.3f, p90 %.3f] on %s, %d threads\n",
                   l.budget_ms, static_cast<long long>(l.measured.batch_size), l.measured.median_ms, l.measured.p10_ms,
                   l.measured.p90_ms, l.device.c_str(), l.threads);
    }
    std::fprintf(out, "op code %lld of 0..%lld\n", static_cast<long long>(sel.code),
                 static_cast<long long>(sel.last_code));
    widths = sel.widths;
    sub = extract(*loaded.model, sel, source, {o.fold_scale});
  } else {
    widths = !o.widths.empty() ? parse_widths(o.widths, static_cast<size_t>(c.num_blocks()))
                               : models::keep_fraction(loaded.model->widths(), o.attn_keep, o.mlp_keep);
    sub = extract(*loaded.model, widths, source, {o.fold_scale});
  }
  const auto t_slice = clock::now();
  save(o.out, sub);
  const auto t_write = clock::now();
  const auto full = models::macs_count(c, loaded.model->widths());
  const auto cost = models::macs_count(c, widths);
  std::fprintf(out, "wrote %s: %s of %s MACs (%s convention), %.3f M of %.3f M params\n", o.out.c_str(),
               models::macs_format(macs_of(cost, o.macs_convention)).c_str(),
               models::macs_format(macs_of(full, o.macs_convention)).c_str(), macs_convention_name(o.macs_convention),
               cost.params / 1e6, full.params / 1e6);
  // Extraction itself is a table lookup and a copy of weight slices: the time goes into reading
  // the super-network (and hashing it for the provenance) and writing the sub-network.
  std::fprintf(out, "time: read + sha256 %.3f s, select + slice %.3f s, write %.3f s\n", secs(t0, t_read),
               secs(t_read, t_slice), secs(t_slice, t_write));
}

}  // namespace skd::extract
