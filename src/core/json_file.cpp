#include "skd/core/json_file.h"

#include <fstream>

#include "skd/core/error.h"

namespace skd {

nlohmann::json read_json_file(const std::string& path, const std::string& what, const std::string& hint) {
  std::ifstream in(path);
  if (!in)
    throw std::invalid_argument(cat(what, " '", path, "' cannot be opened", hint.empty() ? "" : " (" + hint + ")"));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(cat(what, " '", path, "' is not valid JSON: ", e.what()));
  }
}

nlohmann::json read_json_file_of(const std::string& key, const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw ParameterError(key, cat(what, " '", path, "' cannot be opened"));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ParameterFormatError(key, cat(what, " '", path, "' is not valid JSON: ", e.what()));
  }
}

}  // namespace skd
