// skd-convert: bring a checkpoint (official DeiT/Swin .pth, timm .safetensors, legacy Swin layout)
// into a self-describing skd artifact (safetensors + manifest with architecture and provenance).
#include "app_common.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"

using namespace skd;

int main(int argc, char** argv) {
  CLI::App app{"Convert a checkpoint into an skd artifact (safetensors + manifest).", "skd-convert"};
  std::string model, arch, out, log_level;
  int threads = app::default_threads();
  app.add_option("--model", model, "input checkpoint (.pth or .safetensors)")->required();
  app.add_option("--arch", arch, "named architecture or JSON config (needed for foreign checkpoints)");
  app.add_option("--out", out, "output artifact (.safetensors)")->required();
  app::add_common_options(app, threads, log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(threads, log_level);
    auto loaded = models::load_model(model, arch);
    nlohmann::json prov = loaded.manifest.value("provenance", nlohmann::json::object());
    prov["source"] = model;
    prov["source_sha256"] = models::file_sha256(model);
    prov["converted_by"] = "skd-convert";
    for (const auto& note : prov.value("key_mapping", nlohmann::json::array())) log_info(note.get<std::string>());
    models::save_artifact(out, *loaded.model, prov);
    const auto cost = models::macs_count(loaded.model->config(), loaded.model->widths());
    std::printf("wrote %s: %s, %.3f M params, %s (paper convention)\n", out.c_str(),
                loaded.model->config().name.c_str(), cost.params / 1e6, models::macs_format(cost.macs_paper).c_str());
    return 0;
  });
}
