// Fuzz target: an official mask_table.json as skd-extract/skd-convert --mask-table read it, for a
// DeiT-Tiny super-network (12 blocks, full widths 64 / 768): JSON, MaskTable::from_json, the cost
// of every code, and the round trip through the writer's schema.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/models/config.h"
#include "skd/models/mask_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const skd::models::ModelConfig config = skd::models::named_config("deit_tiny");
  static const skd::models::Widths full = skd::models::full_widths(config);
  skd::fuzz::run_expecting<skd::FormatError>("mask_table", [&] {
    nlohmann::json j;
    try {  // as load_mask_table: invalid JSON is the same skd::FormatError for the caller
      j = nlohmann::json::parse(data, data + size);
    } catch (const nlohmann::json::exception& e) {
      throw skd::FormatError(e.what());
    }
    const auto table = skd::models::MaskTable::from_json(j, full, "fuzz mask_table.json");
    skd::models::code_costs(config, table);
    const auto again = skd::models::MaskTable::from_json(nlohmann::json::parse(table.to_json().dump()), full,
                                                       "fuzz round trip");
    if (again.last_code() != table.last_code())
      skd::fuzz::finding("mask_table", "round trip changed the number of codes");
    for (int64_t c = 0; c <= table.last_code(); ++c)
      if (again.widths(c) != table.widths(c)) skd::fuzz::finding("mask_table", "round trip changed widths");
  });
  return 0;
}
