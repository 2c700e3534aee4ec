// skd-extract: slice a standalone sub-network (reduced parameter shapes) out of an elastic model
// at given per-block widths.
#include <fstream>

#include "app_common.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/slice.h"

using namespace skd;

namespace {

// "a:m,a:m,..." (one pair per block) -> widths.
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
      throw std::invalid_argument(cat("--widths: '", item, "' is not 'attn:mlp' (e.g. 32:768)"));
    }
  }
  if (w.size() != blocks)
    throw std::invalid_argument(cat("--widths: ", w.size(), " pairs given, the model has ", blocks, " blocks"));
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Extract a standalone sub-network from an elastic model.", "skd-extract"};
  std::string model, arch, out, widths_text, log_level;
  double attn_keep = 1.0, mlp_keep = 1.0;
  int threads = app::default_threads();
  app.add_option("--model", model, "elastic model / super-network artifact (or checkpoint with --arch)")->required();
  app.add_option("--arch", arch, "architecture for foreign checkpoints");
  auto* w = app.add_option("--widths", widths_text, "per-block widths 'attn:mlp,attn:mlp,...'");
  app.add_option("--attn-keep", attn_keep, "keep this fraction of every head's q/k/v dims")
      ->check(CLI::Range(0.0, 1.0))->excludes(w);
  app.add_option("--mlp-keep", mlp_keep, "keep this fraction of every MLP's hidden units")
      ->check(CLI::Range(0.0, 1.0))->excludes(w);
  app.add_option("--out", out, "output artifact (.safetensors)")->required();
  app::add_common_options(app, threads, log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(threads, log_level);
    auto loaded = models::load_model(model, arch);
    const auto& c = loaded.model->config();
    models::Widths widths;
    if (!widths_text.empty()) {
      widths = parse_widths(widths_text, static_cast<size_t>(c.num_blocks()));
    } else {
      widths = models::keep_fraction(loaded.model->widths(), attn_keep, mlp_keep);
    }
    auto sub = models::slice_model(*loaded.model, widths);
    nlohmann::json prov = {{"extracted_from", model}, {"source_sha256", models::file_sha256(model)}};
    models::save_artifact(out, *sub, prov);
    const auto full = models::macs_count(c, loaded.model->widths());
    const auto cost = models::macs_count(c, widths);
    std::printf("wrote %s: %s of %s MACs (paper), %.3f M of %.3f M params\n", out.c_str(),
                models::macs_format(cost.macs_paper).c_str(), models::macs_format(full.macs_paper).c_str(),
                cost.params / 1e6, full.params / 1e6);
    return 0;
  });
}
