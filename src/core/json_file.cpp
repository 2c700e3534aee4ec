#include "skd/core/json_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "skd/core/error.h"
#include "skd/io/json.h"

namespace skd {

namespace {

// The file's text, or the reason it cannot be read ("is a directory", "cannot be opened").
bool read_text(const std::string& path, std::string* text, std::string* problem) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(st)) {
    *problem = "is a directory, not a JSON file";
    return false;
  }
  // A FIFO or device would block the read or feed it without end: only regular files are read.
  if (std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    *problem = "is not a regular file (a pipe, device or socket)";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *problem = "cannot be opened";
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    *problem = "cannot be read";
    return false;
  }
  *text = ss.str();
  return true;
}

}  // namespace

nlohmann::json read_json_file(const std::string& path, const std::string& what, const std::string& hint) {
  std::string text, problem;
  if (!read_text(path, &text, &problem))
    throw std::invalid_argument(cat(what, " '", path, "' ", problem, hint.empty() ? "" : " (" + hint + ")"));
  return io::parse_json_bounded(text, cat(what, " '", path, "'"));
}

nlohmann::json read_json_file_of(const std::string& key, const std::string& path, const std::string& what) {
  std::string text, problem;
  if (!read_text(path, &text, &problem)) throw ParameterError(key, cat(what, " '", path, "' ", problem));
  try {
    return io::parse_json_bounded(text, path);
  } catch (const io::JsonError& e) {
    throw ParameterFormatError(key, cat(what, " '", path, "' ", e.detail()));
  }
}

}  // namespace skd
