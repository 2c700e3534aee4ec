// The one JSON parser for everything the toolkit reads (configs, manifests, mask tables, latency
// tables, architecture files, safetensors headers, tool output): nlohmann::json with two limits
// enforced while parsing, so that hostile input fails with a message instead of a crash
// (docs/reliability.md, "Hostile input"):
//
//   - nesting deeper than kMaxJsonDepth levels is refused (nlohmann's copy and destruction recurse
//     per level; about 100,000 levels overflow the stack);
//   - an object with the same key twice is refused (nlohmann would keep the last one silently).
//
// Torch-free (skd_io), used by core and above.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "skd/core/error.h"

namespace skd::io {

// Levels of nesting accepted (the outermost object or array is level 1). The toolkit's own files
// nest at most 6 deep.
inline constexpr int kMaxJsonDepth = 256;

// Refused JSON. what() is "<what> <detail>"; detail() is the part after `what`, for callers that
// frame the message themselves (keyed errors): "is not valid JSON: ...", "nests deeper than 256
// levels ...", "has the key 'lr' twice in one object ...".
class JsonError : public FormatError {
 public:
  JsonError(const std::string& what, std::string detail)
      : FormatError(what + " " + detail), detail_(std::move(detail)) {}
  const std::string& detail() const { return detail_; }

 private:
  std::string detail_;
};

// Parses `text`; `what` names it in the message ("--config 'run.json'", "m.safetensors: manifest").
// Throws JsonError for invalid JSON, nesting deeper than `max_depth` levels, or a duplicate key.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& what, int max_depth = kMaxJsonDepth);

}  // namespace skd::io
