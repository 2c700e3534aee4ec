// Options as data. An options struct lists its fields once, by config key, in a member template
//
//   template <typename V> void visit(V&& v) {
//     v("batch_size", batch_size, "images per batch");
//     v("amp", amp, kAmpNames, "autocast on CUDA");  // an enum: its table of names, then its help
//     v("latency", latency, "measure forward latency at these batch sizes");  // a text value (units.h)
//   }
//
// A field is v(key, field [, enum names] [, help]): the help is the field's one description (the
// command line shows it with the enum's names appended, "autocast on CUDA (none | bf16 | fp16)");
// every visitor takes the extra arguments as a pack and reads them with has_names / names_of /
// help_of below. Nested structs list their members' fields under flat keys, so a JSON config stays one
// flat object; a std::optional field is null in JSON while unset: a value that counts only when given.
// A text value (a type with static from_text and to_text, e.g. skd/core/units.h) is a JSON string.
// That one list drives the strict JSON form both ways (unknown keys and wrong types are errors naming
// the source and the key; enum fields read and write their names, so an enum is parsed once, here),
// the layering of values every app uses
//
//   defaults < the checkpoint's config (resume) < a --config file < values given on the command line
//
// and the command-line flags (skd/cli/binder.h: flag = "--" + key with '-' for '_').
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

// The source of the values given as flags (cli::OptionBinder's layer): its errors name the flag, not the key.
inline const std::string kCommandLine = "the command line";

namespace detail {

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

// A text value: parsed from and printed as text (skd/core/units.h).
template <typename T, typename = void>
struct is_text_value : std::false_type {};
template <typename T>
struct is_text_value<T, std::void_t<decltype(T::from_text(std::declval<const std::string&>())),
                                    decltype(std::declval<const T&>().to_text())>> : std::true_type {};

// The extra arguments of a field, v(key, field, extra...): an enum's table of names and/or a help text.
template <typename A>
inline constexpr bool is_help_v = std::is_convertible_v<const std::decay_t<A>&, const char*> ||
                                  std::is_same_v<std::decay_t<A>, std::string>;

}  // namespace detail

// Whether a field's extra arguments include an enum's table of names.
template <typename... Extra>
inline constexpr bool has_names = (false || ... || !detail::is_help_v<Extra>);

// The enum's table of names among a field's extra arguments (has_names must hold).
template <typename A, typename... Rest>
const auto& names_of(const A& a, const Rest&... rest) {
  if constexpr (!detail::is_help_v<A>)
    return a;
  else
    return names_of(rest...);
}

// The help among a field's extra arguments ("" without one).
template <typename... Extra>
std::string help_of(const Extra&... extra) {
  std::string help;
  auto take = [&](const auto& x) {
    if constexpr (detail::is_help_v<decltype(x)>) help = x;
  };
  (void)take;
  (take(extra), ...);
  return help;
}

// The help the command line shows: the field's help with its enum's names appended ("(none | bf16 | fp16)").
template <typename... Extra>
std::string describe(const Extra&... extra) {
  std::string help = help_of(extra...);
  if constexpr (has_names<Extra...>) {
    std::string names;
    for (const auto& [n, e] : names_of(extra...)) names += names.empty() ? n : cat(" | ", n);
    help += cat(help.empty() ? "" : " ", "(", names, ")");
  }
  return help;
}

namespace detail {

template <typename T>
void read_value(const nlohmann::json& v, T& out, const std::string& source, const std::string& key);
template <typename T>
void read_plain(const nlohmann::json& v, T& out, const std::string& source, const std::string& key);

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
  if constexpr (is_text_value<T>::value) {
    // A string, or a number as its decimal text (a MACs count, milliseconds, one batch size).
    if (!v.is_string() && !(v.is_number() && !v.is_boolean()))
      bad_value(source, key, cat(" has the wrong type (", excerpt(v.dump()), ")"));
    try {
      out = T::from_text(v.is_string() ? v.get<std::string>() : v.dump());
    } catch (const std::invalid_argument& e) {
      bad_value(source, key, cat(": ", e.what()));
    }
  } else {
    read_plain(v, out, source, key);
  }
}

template <typename T>
void read_plain(const nlohmann::json& v, T& out, const std::string& source, const std::string& key) {
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

namespace detail {

template <typename F>
nlohmann::json json_of(const F& value) {
  if constexpr (is_optional<F>::value)
    return value ? json_of(*value) : nlohmann::json(nullptr);
  else if constexpr (is_text_value<F>::value)
    return value.to_text();
  else
    return value;
}

}  // namespace detail

// The JSON form of `options`: every key, in the order of its visit().
template <typename T>
nlohmann::json to_json(const T& options) {
  nlohmann::json j = nlohmann::json::object();
  T copy = options;
  copy.visit([&](const char* key, auto& value, const auto&... extra) {
    if constexpr (has_names<decltype(extra)...>)
      j[key] = detail::name_of(value, names_of(extra...));
    else
      j[key] = detail::json_of(value);
  });
  return j;
}

// Overlays the keys of `j` onto `base`. Unknown keys, wrong types and unknown enum names are
// std::invalid_argument naming `source` and the key.
template <typename T>
T from_json(const nlohmann::json& j, const std::string& source, T base = {}) {
  if (!j.is_object()) throw std::invalid_argument(cat(source, ": expected a JSON object"));
  std::vector<std::string> known;
  base.visit([&](const char* key, auto&, const auto&...) { known.emplace_back(key); });
  for (const auto& [key, value] : j.items()) {
    bool found = false;
    for (const auto& k : known) found = found || k == key;
    if (!found) throw std::invalid_argument(cat(source, ": unknown key '", key, "'"));
  }
  base.visit([&](const char* key, auto& field, const auto&... extra) {
    if (!j.contains(key)) return;
    if constexpr (has_names<decltype(extra)...>)
      detail::read_enum(j.at(key), field, names_of(extra...), source, key);
    else
      detail::read_value(j.at(key), field, source, key);
  });
  return base;
}

// The decimal number at the start of `text` and the characters it took; {0, 0} when `text` does not
// start with one. Only plain decimal: an optional sign, digits, and for floating point a fraction and
// an exponent ("2.43", "1e9"); no leading space, no hex ("0x10"), no inf/nan; a leading zero is
// decimal ("010" is 10). An integer out of T's range and a float that overflows to inf are {0, 0}
// too. Option values with units (skd/core/units.h: MACs, durations, lists) parse their number so.
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

// The keys of T, in visit() order.
template <typename T>
std::vector<std::string> keys() {
  std::vector<std::string> out;
  T t{};
  t.visit([&](const char* key, auto&, const auto&...) { out.emplace_back(key); });
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
