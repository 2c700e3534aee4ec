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

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <limits>
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

// The source of the values given as flags (OptionBinder's layer): its errors name the flag, not the key.
inline const std::string kCommandLine = "the command line";

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

// A value of `key` from `source` is refused: on the command line the message names the flag (the app
// renders the key), in a file it names the file and the key.
[[noreturn]] inline void bad_value(const std::string& source, const std::string& key, const std::string& rest) {
  if (source == kCommandLine) throw ParameterError(key, rest);
  throw std::invalid_argument(cat(source, ": key '", key, "'", rest));
}

// Whether the JSON integer `v` fits T (no wrap-around: 2^32+17 is not an int 17, 2^64-1 not -1).
template <typename T>
bool integer_fits(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  const int64_t i = v.get<int64_t>();
  if constexpr (std::is_unsigned_v<T>)
    return i >= 0 && static_cast<uint64_t>(i) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  else
    return i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           i <= static_cast<int64_t>(std::numeric_limits<T>::max());
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
  } else {
    ok = v.is_number_integer();  // also true for unsigned; 1.5 and 1e3 are floats: not integers
  }
  if (!ok) bad_value(source, key, cat(" has the wrong type (", excerpt(v.dump()), ")"));
  if constexpr (std::is_floating_point_v<T>) {
    // inf and nan (and 1e999, which parses as inf) would train to NaN weights or select nothing.
    if (!std::isfinite(v.get<double>())) bad_value(source, key, cat(": ", v.get<double>(), " is not a finite number"));
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!integer_fits<T>(v))
      bad_value(source, key,
                cat(": ", v.dump(), " is out of range (expected an integer in ", +std::numeric_limits<T>::min(),
                    "..", +std::numeric_limits<T>::max(), ")"));
  }
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
  bad_value(source, key, cat(" has the value ", excerpt(v.dump()), " (expected one of ", enum_names(names), ")"));
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

// The decimal number at the start of `text` and the characters it took; {0, 0} when `text` does not
// start with one. Only plain decimal: an optional sign, digits, and for floating point a fraction and
// an exponent ("2.43", "1e9"); no leading space, no hex ("0x10"), no inf/nan; a leading zero is
// decimal ("010" is 10). An integer out of T's range and a float that overflows to inf are {0, 0}
// too. Option values with units (MACs, durations, lists) parse their number so.
template <typename T>
std::pair<T, size_t> leading_number(const std::string& text) {
  auto digit = [&](size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  const size_t digits_begin = i;
  while (digit(i)) ++i;
  if (i == digits_begin) return {T{}, 0};
  if constexpr (std::is_floating_point_v<T>) {
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (digit(i)) ++i;
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
      size_t j = i + 1;
      if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
      if (digit(j)) {
        while (digit(j)) ++j;
        i = j;
      }
    }
    const double v = std::strtod(text.substr(0, i).c_str(), nullptr);
    if (!std::isfinite(v)) return {T{}, 0};
    return {static_cast<T>(v), i};
  } else {
    errno = 0;
    const std::string number = text.substr(0, i);
    if constexpr (std::is_unsigned_v<T>) {
      if (number[0] == '-') return {T{}, 0};
      const unsigned long long v = std::strtoull(number.c_str(), nullptr, 10);
      if (errno == ERANGE || v > std::numeric_limits<T>::max()) return {T{}, 0};
      return {static_cast<T>(v), i};
    } else {
      const long long v = std::strtoll(number.c_str(), nullptr, 10);
      if (errno == ERANGE || v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) return {T{}, 0};
      return {static_cast<T>(v), i};
    }
  }
}

// "1,8,64" -> {1, 8, 64}: a list-valued option; skd::ParameterError naming `key` for anything else.
inline std::vector<int64_t> parse_positive_list(const std::string& text, const std::string& key) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    const auto [v, used] = leading_number<int64_t>(item);
    if (used == 0 || used != item.size() || v <= 0)
      throw ParameterError(key, cat(" '", excerpt(text), "': expected positive integers like 1,8,64"));
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
    from_json<T>(layer.values, layer.source);  // each layer's types and ranges, named by its source
    for (const auto& [k, v] : layer.values.items()) resolved[k] = v;
  }
  return from_json<T>(resolved, "resolved config");
}

}  // namespace skd::options
