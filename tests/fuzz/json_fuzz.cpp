// Fuzz target: the one bounded JSON parser every reader uses (skd/io/json.h), on any bytes. What it
// accepts must nest at most kMaxJsonDepth levels, hold no duplicate key, and survive a dump and a
// parse back unchanged (docs/reliability.md, "Hostile input", issue 25).
#include <algorithm>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/io/json.h"

namespace {

int depth(const nlohmann::json& j) {
  int deepest = 0;
  if (j.is_structured())
    for (const auto& child : j) deepest = std::max(deepest, depth(child));
  return deepest + (j.is_structured() ? 1 : 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skd::fuzz::run_expecting<skd::FormatError>("json", [&] {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto j = skd::io::parse_json_bounded(text, "fuzz.json");
    if (depth(j) > skd::io::kMaxJsonDepth) skd::fuzz::finding("json", "accepted JSON deeper than the limit");
    if (skd::io::parse_json_bounded(j.dump(), "fuzz round trip") != j)
      skd::fuzz::finding("json", "dump and parse changed the value");
  });
  return 0;
}
