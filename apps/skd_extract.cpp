// skd-extract: slice a standalone sub-network (reduced parameter shapes) out of a super-network at an
// op code, MACs, MACs ratio or latency budget (mask-table lookup), or out of any elastic model at given
// per-block widths or keep fractions (extract::SubnetSelection, shared with skd-export). Parses its
// flags into an extract::ExtractJob (flag > --config > defaults) and calls extract::run_extract_job
// (resolve_selection -> extract -> save), which prints what it did.
#include "app_common.h"
#include "app_selection.h"
#include "skd/extract/extract_job.h"

using namespace skd;

int main(int argc, char** argv) {
  CLI::App app{"Extract a standalone sub-network: from a super-network by op code or MACs budget (a lookup in its "
               "mask table: no data, no search), or from any elastic model at given widths.",
               "skd-extract"};
  extract::ExtractJob job;
  app::OptionBinder<extract::ExtractJob> b(job);
  std::string log_level;
  int threads = app::kAutoThreads;
  b.add_required(&app, "model", "", argc, argv, "--model,--supernet");
  b.add(&app, "arch");
  b.add(&app, "mask_table");
  auto* g = app.add_option_group("Sub-network (at most one; none = the stored widths)");
  app::add_selection_options(b, g);
  for (const char* key : {"batch", "latency_table", "runtime", "python", "list", "out", "fold_scale"})
    b.add(&app, key);
  app::add_common_options(app, threads, log_level);
  b.add_config_options(&app, "extraction");
  return app::run_job(app, argc, argv, b, threads, log_level, [&](const extract::ExtractJob& resolved) {
    extract::run_extract_job(resolved, stdout);
  });
}
