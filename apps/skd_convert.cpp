// skd-convert: bring a checkpoint (official DeiT/Swin .pth, timm .safetensors, legacy Swin layout)
// into a self-describing skd artifact and, with proxy data, apply WPAC (or a baseline criterion):
// a function-preserving reorder/rotation so the leading dims of every head and the leading MLP units
// are the most important ones. Writes the artifact plus a JSON report. Parses its flags into a
// wpac::ConvertJob (flag > --config > defaults), calls wpac::convert_checkpoint and prints the result.
#include "app_common.h"
#include "skd/models/macs.h"
#include "skd/wpac/convert_job.h"

using namespace skd;

namespace {

void print_result(const wpac::ConvertResult& r) {
  std::printf("wrote %s: %s, %.3f M params, %s (paper convention)\n", r.artifact.c_str(), r.model_name.c_str(),
              r.cost.params / 1e6, models::macs_format(r.cost.macs_paper).c_str());
  if (!r.report) return;
  std::printf("%s: %lld proxy images, %.2f s; report %s\n", r.report->criterion.c_str(),
              static_cast<long long>(r.report->proxy ? r.report->proxy->images : 0), r.report->seconds.total,
              r.report_path.c_str());
  if (r.report->mean_captured_v && r.report->mean_captured_qk) {
    const auto &v = *r.report->mean_captured_v, &qk = *r.report->mean_captured_qk;
    std::printf("weighted variance in the leading 25/50/75%% dims (mean over heads): V %.3f/%.3f/%.3f  "
                "QK %.3f/%.3f/%.3f\n",
                v[0], v[1], v[2], qk[0], qk[1], qk[2]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Convert a checkpoint into an skd artifact; with --data apply WPAC (importance-weighted PCA per "
               "attention head + MLP importance sort, function preserving) or a baseline criterion.",
               "skd-convert"};
  wpac::ConvertJob job;
  app::OptionBinder<wpac::ConvertJob> b(job);
  std::string log_level;
  int threads = app::kAutoThreads;
  b.add_required(&app, "model", argc, argv);
  b.add(&app, "arch");
  b.add_required(&app, "out", argc, argv);
  b.add(&app, "mask_table");
  auto* gp = app.add_option_group(
      "Preprocessing (recorded in the artifact; default: the input's entry, else the "
      "data's or the architecture's defaults)");
  for (const char* key : {"crop_pct", "interpolation", "mean", "std"}) b.add(gp, key);
  auto* g = app.add_option_group("WPAC");
  for (const char* key :
       {"data", "split", "proxy_samples", "batch_size", "seed", "criterion", "mlp_criterion", "centering",
        "cost", "report", "device", "dist_backend", "dist_timeout"})
    b.add(g, key);
  app::add_common_options(app, threads, log_level);
  b.add_config_options(&app, "conversion job");
  return app::run_job(app, argc, argv, b, threads, log_level, [&](const wpac::ConvertJob& resolved) {
    const auto result = wpac::convert_checkpoint(resolved);
    if (result.main_rank) print_result(result);
  });
}
