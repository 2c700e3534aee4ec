// Option values that name an enum: one table of (name, value) pairs serves parsing (with an error
// naming the config key and listing the accepted names) and printing.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "skd/core/error.h"

namespace skd {

// The value `name` names in `table`, or nullopt.
template <typename E, size_t N>
std::optional<E> find_enum(const std::string& name, const std::pair<const char*, E> (&table)[N]) {
  for (const auto& [n, e] : table)
    if (name == n) return e;
  return std::nullopt;
}

// The names of `table` as the errors list them: "a, b, c".
template <typename E, size_t N>
std::string enum_names(const std::pair<const char*, E> (&table)[N]) {
  std::string known;
  for (const auto& [n, e] : table) known += known.empty() ? n : cat(", ", n);
  return known;
}

template <typename E, size_t N>
E parse_enum(const std::string& name, const std::pair<const char*, E> (&table)[N], const std::string& key) {
  if (const auto e = find_enum(name, table)) return *e;
  throw ParameterError(key, cat(": unknown value '", name, "' (expected one of ", enum_names(table), ")"));
}

template <typename E, size_t N>
const char* enum_name(E value, const std::pair<const char*, E> (&table)[N]) {
  for (const auto& [n, e] : table)
    if (e == value) return n;
  return "?";
}

}  // namespace skd
