// Reading a JSON file the user named (an architecture, a class index, a latency table, ...), with
// the error policy of skd/core/error.h: a file that cannot be opened is bad input
// (std::invalid_argument), content that is not JSON is a format error (skd::FormatError). Both
// messages name the file.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace skd {

// Parses the file at `path`. `what` says what it is in the messages ("--arch: architecture file",
// "latency table"); `hint`, when given, is appended to the cannot-open message in parentheses (how
// to make one).
nlohmann::json read_json_file(const std::string& path, const std::string& what, const std::string& hint = "");
// The same for a file named by the parameter `key`: the messages begin with the key, then `what`
// (key "arch", what ": architecture file"), as skd::ParameterError / skd::ParameterFormatError.
nlohmann::json read_json_file_of(const std::string& key, const std::string& path, const std::string& what);

}  // namespace skd
