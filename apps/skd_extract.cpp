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
  b.add_required(&app, "model", "super-network / elastic model artifact (or checkpoint with --arch)", argc, argv,
                 "--model,--supernet");
  b.add(&app, "arch", "architecture for foreign checkpoints");
  b.add(&app, "mask_table", "official mask_table.json (for a .pth super-network, or to "
                            "override the artifact's table)");
  auto* g = app.add_option_group("Sub-network (at most one; none = the stored widths)");
  app::add_selection_options(b, g, "at --batch or 1");
  b.add(&app, "batch", "--latency: the batch size the budget is for");
  b.add(&app, "latency_table", "--latency: the table of skd-eval --latency-table (default <model>.latency.json)");
  b.add(&app, "list",
        "print the op code -> MACs/params table of the super-network and exit (--macs-convention: "
        "its MACs)");
  b.add(&app, "out", "output artifact (.safetensors)");
  b.add(&app, "fold_scale", "fold each block's softmax scale into its query weights (the sub-network "
                            "is then exact under the default 1/sqrt(head dim); manifest: attn_scale_folded)");
  app::add_common_options(app, threads, log_level);
  b.add_config_options(&app, "extraction");
  return app::run(app, argc, argv, [&] {
    const extract::ExtractJob resolved = b.resolve();
    if (b.dump_config()) {
      std::printf("%s\n", options::to_json(resolved).dump(2).c_str());
      return 0;
    }
    app::apply_common_options(threads, log_level);
    extract::BudgetNames measure;  // how to measure a missing latency table, said in the errors
    measure.latency.measure = "skd-eval --latency-table";
    measure.latency.measure_batch = "skd-eval --latency-table --batch-sizes";
    measure.measure_file = "skd-eval --model <super-network> --latency-table";
    extract::run_extract_job(resolved, stdout, measure);
    return 0;
  });
}
