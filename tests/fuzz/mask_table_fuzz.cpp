// Fuzz target: an official mask_table.json as skd-extract/skd-convert --mask-table read it, for a
// DeiT-Tiny super-network (12 blocks, full widths 64 / 768): JSON, MaskTable::from_json, the cost
// of every code, and the round trip through the writer's schema.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/io/json.h"
#include "skd/models/config.h"
#include "skd/models/mask_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const skd::models::ModelConfig config = skd::models::named_config("deit_tiny");
  static const skd::models::Widths full = skd::models::full_widths(config);
  skd::fuzz::run_expecting<skd::FormatError>("mask_table", [&] {
    // as load_mask_table: the bounded parser (invalid, too deep, duplicate keys: skd::FormatError)
    const auto j = skd::io::parse_json_bounded(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    const auto table = skd::models::MaskTable::from_json(j, full, "fuzz mask_table.json");
    skd::models::code_costs(config, table);
    const auto again = skd::models::MaskTable::from_json(skd::io::parse_json_bounded(table.to_json().dump(), "fuzz"), full,
                                                       "fuzz round trip");
    if (again.last_code() != table.last_code())
      skd::fuzz::finding("mask_table", "round trip changed the number of codes");
    for (int64_t c = 0; c <= table.last_code(); ++c)
      if (again.widths(c) != table.widths(c)) skd::fuzz::finding("mask_table", "round trip changed widths");
  });
  return 0;
}
