#include "skd/extract/extract_job.h"

#include <chrono>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/deploy/runtime.h"
#include "skd/extract/extract.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"

namespace skd::extract {

namespace {

// The op code -> MACs/params table of a super-network.
void print_code_table(const models::ModelConfig& config, const models::MaskTable& table, std::FILE* out) {
  const auto costs = models::code_costs(config, table);
  std::fprintf(out, "%6s %14s %14s %12s  widths (attn:mlp per block)\n", "code", "MACs paper", "MACs full", "params");
  for (int64_t k = 0; k <= table.last_code(); ++k) {
    const std::string ws = widths_text(table.widths(k));
    const auto& cost = costs[static_cast<size_t>(k)];
    std::fprintf(out, "%6lld %14s %14s %11.3fM  %s\n", static_cast<long long>(k),
                 models::macs_format(cost.macs_paper).c_str(), models::macs_format(cost.macs_full).c_str(),
                 cost.params / 1e6, ws.c_str());
  }
}

// The combinations of keys a job may not have (the selection's: check_selection).
void check_job(const ExtractJob& o) {
  check_selection(o.selection);
  if (!o.list && o.out.empty())
    throw ParameterError(
        [](const KeyNamer& n) { return cat(n("out"), " is required (or ", n("list"), ")"); });
}

}  // namespace

void run_extract_job(const ExtractJob& o, std::FILE* out) {
  check_job(o);
  const auto& s = o.selection;
  // The output checked before any work (docs/reliability.md, "Hostile input").
  if (!o.list) {
    auto inputs = selection_inputs(s, o.model);
    inputs.insert(inputs.end(), {o.model, o.arch});
    check_output_file("out", o.out, inputs);
  }
  using clock = std::chrono::steady_clock;
  const auto secs = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  const auto t0 = clock::now();
  const auto loaded = models::load_model(o.model, o.arch);
  const auto& c = loaded.model->config();
  if (o.list)
    return print_code_table(c,
                            models::load_mask_table(loaded.manifest, s.mask_table, c, loaded.model->widths(),
                                                    o.model, "mask_table"),
                            out);
  const ExtractSource source{
      o.model, models::file_sha256(o.model), s.mask_table,
      loaded.manifest.contains("provenance") ? loaded.manifest["provenance"] : nlohmann::json(),
      loaded.preprocess};
  const auto t_read = clock::now();
  const auto choice = resolve_selection(loaded, s, {o.model, source.model_sha256, [&](const std::string& rt) {
                                                      return deploy::installed_runtime_version(rt, o.python);
                                                    }});
  if (choice.selection) print_selection(*choice.selection, out);
  const auto sub = extract(*loaded.model, choice, source, {o.fold_scale});
  const auto t_slice = clock::now();
  save(o.out, sub);
  const auto t_write = clock::now();
  const auto full = models::macs_count(c, loaded.model->widths());
  const auto cost = models::macs_count(c, choice.widths);
  std::fprintf(out, "wrote %s: %s of %s MACs (%s convention), %.3f M of %.3f M params\n", o.out.c_str(),
               models::macs_format(macs_of(cost, s.macs_convention)).c_str(),
               models::macs_format(macs_of(full, s.macs_convention)).c_str(),
               macs_convention_name(s.macs_convention), cost.params / 1e6, full.params / 1e6);
  // Extraction itself is a table lookup and a copy of weight slices: the time goes into reading
  // the super-network (and hashing it for the provenance) and writing the sub-network.
  std::fprintf(out, "time: read + sha256 %.3f s, select + slice %.3f s, write %.3f s\n", secs(t0, t_read),
               secs(t_read, t_slice), secs(t_slice, t_write));
}

}  // namespace skd::extract
