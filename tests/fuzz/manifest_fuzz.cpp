// Fuzz target: the manifest of an artifact (the "skd_manifest" text in its safetensors metadata)
// along the path skd::models::load_model takes it: parse_manifest, the architecture it describes
// (manifest_config), its preprocess entry, the per-block widths and costs, the parameter check against the
// weights held in the file, and a super-network's "mask_table" (with its "op_codes", verified against the
// computed costs) as load_mask_table reads it. The file's weights are stood in for by one tensor
// of 2^20 elements (a ~4 MB artifact): a manifest that needs far more (check_params_fit) is
// refused before any model is built. Small enough configs are built for real.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"

namespace {

const skd::io::TensorMap& weights() {
  static const auto* t = [] {
    auto* m = new skd::io::TensorMap;
    skd::io::TensorRecord r;
    r.dtype = skd::io::DType::U8;  // only the element count matters here
    r.shape = {int64_t{1} << 20};
    r.data.resize(size_t{1} << 20);
    m->emplace("weights", std::move(r));
    return m;
  }();
  return *t;
}

// Models up to this many parameters are also built (create_model), to catch configs that pass
// validation but break the model code.
constexpr int64_t kBuildParams = 20000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string path = "fuzz.safetensors";
  skd::fuzz::run_expecting<skd::FormatError, std::invalid_argument>("manifest", [&] {
    const auto manifest = skd::models::parse_manifest(text, path);
    skd::models::ModelConfig config = skd::models::manifest_config(manifest, path);
    skd::models::manifest_preprocess(manifest, config, path);  // the "preprocess" entry (issue 27)
    skd::models::check_params_fit(config, weights(), path);
    const auto full = skd::models::stored_widths(config);
    const auto cost = skd::models::macs_count(config);
    if (cost.params <= 0 || cost.macs_paper <= 0 || cost.macs_full < cost.macs_paper)
      skd::fuzz::finding("manifest", "non-positive or inconsistent cost of a validated config");
    if (manifest.contains("mask_table")) {
      const auto table = skd::models::load_mask_table(manifest, "", config, full, path);
      skd::models::code_costs(config, table);
    }
    if (cost.params <= kBuildParams) {
      torch::NoGradGuard guard;
      const auto model = skd::models::create_model(config);
      int64_t n = 0;
      for (const auto& p : model->parameters()) n += p.numel();
      if (n != cost.params) skd::fuzz::finding("manifest", "built model's parameter count differs from macs_count");
    }
  });
  return 0;
}
