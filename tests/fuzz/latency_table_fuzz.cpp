// Fuzz target: a latency table (<model>.latency.json) as skd-extract --latency reads it: the bounded
// JSON parser, LatencyTable::from_json, and a round trip through to_json.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/extract/latency_table.h"
#include "skd/io/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skd::fuzz::run_expecting<skd::FormatError>("latency_table", [&] {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto j = skd::io::parse_json_bounded(text, "latency table 'fuzz.json'");
    const auto table = skd::extract::LatencyTable::from_json(j, "fuzz.json");
    const auto again = skd::extract::LatencyTable::from_json(table.to_json(), "fuzz round trip");
    if (again.codes.size() != table.codes.size() || again.batch_sizes != table.batch_sizes)
      skd::fuzz::finding("latency_table", "round trip changed the table");
  });
  return 0;
}
