// Options as data. An options struct lists its fields once, by config key, in a member template
//
//   template <typename V> void visit(V&& v) { v("batch_size", batch_size); v("amp", amp, kAmpNames); ... }
//
// (nested structs list their members' fields under flat keys, so a JSON config stays one flat object;
// a std::optional field is null in JSON while unset: a value that counts only when given).
// That one list drives the strict JSON form both ways (unknown keys and wrong types are errors naming
// the source and the key; enum fields read and write their names, so an enum is parsed once, here),
// the layering of values every app uses
//
//   defaults < the checkpoint's config (resume) < a --config file < values given on the command line
//
// and, in the apps, the command-line flags (apps/app_options.h: flag = "--" + key with '-' for '_').
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"

namespace skd::options {

namespace detail {

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

template <typename T>
void read_value(const nlohmann::json& v, T& out, const std::string& source, const std::string& key);

template <typename T>
void read_value(const nlohmann::json& v, std::optional<T>& out, const std::string& source, const std::string& key) {
  if (v.is_null()) {
    out.reset();
    return;
  }
  T value{};
  read_value(v, value, source, key);
  out = value;
}

template <typename T>
void read_value(const nlohmann::json& v, T& out, const std::string& source, const std::string& key) {
  bool ok = false;
  if constexpr (std::is_same_v<T, bool>) {
    ok = v.is_boolean();
  } else if constexpr (std::is_same_v<T, std::string>) {
    ok = v.is_string();
  } else if constexpr (std::is_floating_point_v<T>) {
    ok = v.is_number();
  } else if constexpr (std::is_unsigned_v<T>) {
    ok = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  } else {
    ok = v.is_number_integer();
  }
  if (!ok) throw std::invalid_argument(cat(source, ": key '", key, "' has the wrong type (", v.dump(), ")"));
  out = v.get<T>();
}

template <typename E, size_t N>
void read_enum(const nlohmann::json& v, E& out, const std::pair<const char*, E> (&names)[N],
               const std::string& source, const std::string& key) {
  if (v.is_string())
    if (const auto e = find_enum(v.get<std::string>(), names)) {
      out = *e;
      return;
    }
  throw std::invalid_argument(
      cat(source, ": key '", key, "' has the value ", v.dump(), " (expected one of ", enum_names(names), ")"));
}

template <typename E, size_t N>
const char* name_of(E value, const std::pair<const char*, E> (&names)[N]) {
  for (const auto& [n, e] : names)
    if (e == value) return n;
  return names[0].first;
}

}  // namespace detail

// The JSON form of `options`: every key, in the order of its visit().
template <typename T>
nlohmann::json to_json(const T& options) {
  nlohmann::json j = nlohmann::json::object();
  T copy = options;
  copy.visit([&](const char* key, auto& value, auto&&... names) {
    using F = std::decay_t<decltype(value)>;
    if constexpr (detail::is_optional<F>::value)
      j[key] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
    else if constexpr (sizeof...(names) == 0)
      j[key] = value;
    else
      j[key] = detail::name_of(value, names...);
  });
  return j;
}

// Overlays the keys of `j` onto `base`. Unknown keys, wrong types and unknown enum names are
// std::invalid_argument naming `source` and the key.
template <typename T>
T from_json(const nlohmann::json& j, const std::string& source, T base = {}) {
  if (!j.is_object()) throw std::invalid_argument(cat(source, ": expected a JSON object"));
  std::vector<std::string> known;
  base.visit([&](const char* key, auto&, auto&&...) { known.emplace_back(key); });
  for (const auto& [key, value] : j.items()) {
    bool found = false;
    for (const auto& k : known) found = found || k == key;
    if (!found) throw std::invalid_argument(cat(source, ": unknown key '", key, "'"));
  }
  base.visit([&](const char* key, auto& field, auto&&... names) {
    if (!j.contains(key)) return;
    if constexpr (sizeof...(names) == 0)
      detail::read_value(j.at(key), field, source, key);
    else
      detail::read_enum(j.at(key), field, names..., source, key);
  });
  return base;
}

// The number at the start of `text` by std::stod (double) or std::stoll (integers) and the characters
// it took; {0, 0} when `text` does not start with one. Option values with units parse their number so.
template <typename T>
std::pair<T, size_t> leading_number(const std::string& text) {
  size_t used = 0;
  try {
    if constexpr (std::is_floating_point_v<T>) {
      const T v = static_cast<T>(std::stod(text, &used));
      return {v, used};
    } else {
      const T v = static_cast<T>(std::stoll(text, &used));
      return {v, used};
    }
  } catch (const std::exception&) {
    return {T{}, 0};
  }
}

// "1,8,64" -> {1, 8, 64}: a list-valued option; skd::ParameterError naming `key` for anything else.
inline std::vector<int64_t> parse_positive_list(const std::string& text, const std::string& key) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto [v, used] = leading_number<int64_t>(item);
    if (used == 0 || used != item.size() || v <= 0)
      throw ParameterError(key, cat(" '", text, "': expected positive integers like 1,8,64"));
    out.push_back(v);
  }
  if (out.empty()) throw ParameterError(key, ": empty list");
  return out;
}

// The keys of T, in visit() order.
template <typename T>
std::vector<std::string> keys() {
  std::vector<std::string> out;
  T t{};
  t.visit([&](const char* key, auto&, auto&&...) { out.emplace_back(key); });
  return out;
}

// One layer of values: a JSON object and where it came from (for error messages).
struct Layer {
  nlohmann::json values;
  std::string source;
};

// Resolves the layers over T's defaults (later layers win; each layer is checked strictly on its own,
// so an error names the file it came from) and returns the result.
template <typename T>
T resolve(const std::vector<Layer>& layers) {
  nlohmann::json resolved = to_json(T{});
  for (const auto& layer : layers) {
    from_json<T>(layer.values, layer.source);
    for (const auto& [k, v] : layer.values.items()) resolved[k] = v;
  }
  return from_json<T>(resolved, "resolved config");
}

}  // namespace skd::options
