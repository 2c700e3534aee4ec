#include "skd/io/json.h"

#include <unordered_set>
#include <vector>

namespace skd::io {

nlohmann::json parse_json_bounded(std::string_view text, const std::string& what, int max_depth) {
  using json = nlohmann::json;
  // One set of keys per open object, innermost last (arrays have none: they hold no keys).
  std::vector<std::unordered_set<std::string>> keys;
  // nlohmann passes the depth of the container being opened (0 for the outermost); the callback
  // throws before a deeper level is built, so nothing deeper than max_depth is ever created,
  // copied or destroyed.
  const json::parser_callback_t bound = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth)
          throw JsonError(what, cat("nests deeper than ", max_depth,
                                    " levels (the limit for JSON the toolkit reads)"));
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get_ref<const std::string&>()).second)
          throw JsonError(what, cat("has the key '", excerpt(parsed.get_ref<const std::string&>()),
                                    "' twice in one object (duplicate keys are refused)"));
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), bound);
  } catch (const json::exception& e) {
    throw JsonError(what, cat("is not valid JSON: ", excerpt(e.what(), 300)));
  }
}

}  // namespace skd::io
