// Option values that name an enum: one table of (name, value) pairs serves parsing (with an error
// naming the config key and listing the accepted names) and printing.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "skd/core/error.h"

namespace skd {

template <typename E, size_t N>
E parse_enum(const std::string& name, const std::pair<const char*, E> (&table)[N], const std::string& key) {
  std::string known;
  for (const auto& [n, e] : table) {
    if (name == n) return e;
    known += known.empty() ? n : cat(", ", n);
  }
  throw ParameterError(key, cat(": unknown value '", name, "' (expected one of ", known, ")"));
}

template <typename E, size_t N>
const char* enum_name(E value, const std::pair<const char*, E> (&table)[N]) {
  for (const auto& [n, e] : table)
    if (e == value) return n;
  return "?";
}

}  // namespace skd
