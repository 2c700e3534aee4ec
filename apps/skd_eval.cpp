// skd-eval: accuracy on a dataset, outputs on given inputs, forward latency, the latency table of a
// super-network, or a MACs/params summary. Parses its flags into an eval::EvalJob (flag > --config >
// defaults) and calls eval::run_eval_job, which prints the report.
#include <utility>
#include <vector>

#include "app_common.h"
#include "skd/eval/eval_job.h"

using namespace skd;

int main(int argc, char** argv) {
  CLI::App app{"Evaluate a model: accuracy on a dataset, outputs on given inputs, or MACs/params.", "skd-eval"};
  eval::EvalJob job;
  app::OptionBinder<eval::EvalJob> b(job);
  int threads = app::kAutoThreads;
  std::string log_level;
  const std::vector<std::pair<const char*, std::vector<const char*>>> groups = {
      {"Model", {"model", "arch", "attn_keep", "mlp_keep"}},
      {"Data",
       {"data", "split", "limit", "batch_size", "inputs", "class_index", "crop_pct", "interpolation", "mean",
        "std", "workers", "on_bad_image"}},
      {"Run",
       {"runtime", "python", "device", "amp", "latency", "latency_repeats", "latency_table", "batch_sizes"}},
      {"Output", {"summary", "json", "save_outputs", "save_inputs", "out"}}};
  for (const auto& [name, keys] : groups) {
    auto* group = app.add_option_group(name);
    for (const char* key : keys) b.add(group, key);
  }
  app::add_common_options(app, threads, log_level);
  b.add_config_options(&app, "evaluation");
  return app::run_job(app, argc, argv, b, threads, log_level,
                      [&](const eval::EvalJob& resolved) { eval::run_eval_job(resolved, stdout); });
}
