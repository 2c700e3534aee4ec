// Command-line flags from the library's option structs (skd/core/options.h). An app binds each flag to a
// config key; that one table serves parsing, the precedence of values (--config, a resumed checkpoint's
// config, --dump-config) and the rendering of library errors that name keys (skd::Keyed): the only
// place where a config key meets its flag.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/json_file.h"
#include "skd/core/options.h"

namespace skd::app {

// key -> flag of this process's app ("batch_size" -> "--batch-size"); keys never bound get the same rule.
inline std::map<std::string, std::string>& flag_names() {
  static std::map<std::string, std::string> names;
  return names;
}

inline std::string flag_of(const std::string& key) {
  const auto it = flag_names().find(key);
  if (it != flag_names().end()) return it->second;
  std::string flag = "--" + key;
  for (auto& ch : flag)
    if (ch == '_') ch = '-';
  return flag;
}

// The first long name of a CLI11 flag spec: "--eval,!--no-eval" -> "--eval".
inline std::string first_long_name(const std::string& spec) {
  const auto start = spec.find("--");
  if (start == std::string::npos) return spec;
  const auto end = spec.find(',', start);
  return spec.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// A CLI11 check that a value is one of the names of an enum (skd/core/options.h), so a wrong name is
// refused while parsing: "--amp: unknown value 'fp8' (expected one of none, bf16, fp16)".
template <typename E, size_t N>
CLI::Validator one_of(const std::pair<const char*, E> (&names)[N]) {
  return CLI::Validator(
      [&names](std::string& text) -> std::string {
        if (find_enum(text, names)) return "";
        return cat("unknown value '", text, "' (expected one of ", enum_names(names), ")");
      },
      "");
}

// Integers on the command line are decimal. CLI11 converts them with strtoll(base 0): "010" would be
// octal 8 and "0x10" hex 16, and a value beyond the type saturates or wraps. This transform refuses
// anything but [+-]digits within T's range (hex, octal and binary prefixes with a message saying
// so) and hands CLI11 the digits without leading zeros ("010" -> "10").
template <typename T>
CLI::Validator decimal_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        size_t i = 0;
        if (!text.empty() && (text[0] == '+' || text[0] == '-')) i = 1;
        const std::string digits = text.substr(i);
        const bool prefixed = digits.size() > 1 && digits[0] == '0' &&
                              std::string("xXoObB").find(digits[1]) != std::string::npos;
        if (prefixed)
          return cat("'", excerpt(text), "' is not a decimal integer (hex, octal and binary are not accepted)");
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
          return cat("'", excerpt(text), "' is not an integer");
        const auto [value, used] = options::leading_number<T>(text);
        if (used != text.size())
          return cat(excerpt(text), " is out of range (expected an integer in ", +std::numeric_limits<T>::min(), "..",
                     +std::numeric_limits<T>::max(), ")");
        text = std::to_string(value);
        return "";
      },
      "");
}

// Binds flags to the fields of `values` (a struct with visit(), see skd/core/options.h) by key.
template <typename T>
class OptionBinder {
 public:
  explicit OptionBinder(T& values) : values_(values) {}

  // The option for field `key`: "--" + key with '-' unless `spec` gives CLI11 names (e.g.
  // "--eval,!--no-eval"). Booleans become flags; enum fields take their names (one_of); an optional
  // field is set only when its flag is given.
  CLI::Option* add(CLI::App* group, const std::string& key, const std::string& help, const std::string& spec = "") {
    const std::string names = spec.empty() ? flag_of(key) : spec;
    CLI::Option* option = nullptr;
    values_.visit([&](const char* k, auto& field, auto&&... enum_names) {
      if (key != k) return;
      using F = std::decay_t<decltype(field)>;
      if constexpr (sizeof...(enum_names) > 0) {
        auto text = std::make_shared<std::string>(options::to_json(values_).at(key).template get<std::string>());
        option = group->add_option(names, *text, help)->check(one_of(enum_names...));
        given_value_[option] = [text] { return nlohmann::json(*text); };
      } else if constexpr (options::detail::is_optional<F>::value) {
        using V = typename F::value_type;
        auto value = std::make_shared<V>();
        option = group->add_option(names, *value, help);
        if constexpr (std::is_integral_v<V>) option->transform(decimal_integer<V>());
        given_value_[option] = [value] { return nlohmann::json(*value); };
      } else if constexpr (std::is_same_v<F, bool>) {
        option = group->add_flag(names, field, help);
      } else {
        option = group->add_option(names, field, help);
        if constexpr (std::is_integral_v<F>) option->transform(decimal_integer<F>());
      }
    });
    if (option == nullptr) throw InternalError(cat("no option field '", key, "'"));
    keys_[option] = key;
    flag_names()[key] = first_long_name(names);
    return option;
  }

  // A flag marked required (CLI11's REQUIRED), except when --config or --dump-config is on the command line
  // (`argc`, `argv`): the value may then come from the file, and resolve() checks that it is not empty.
  CLI::Option* add_required(CLI::App* group, const std::string& key, const std::string& help, int argc,
                            char** argv, const std::string& spec = "") {
    bool config_given = false;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      config_given = config_given || arg == "--dump-config" || arg == "--config" || arg.rfind("--config=", 0) == 0;
    }
    required_.push_back(key);
    return add(group, key, help, spec)->required(!config_given);
  }

  // --config FILE and --dump-config.
  void add_config_options(CLI::App* group, const std::string& what, const std::string& example_key = "") {
    group->add_option("--config", config_file_, "JSON " + what + " (keys: the long flags with '_', e.g. " +
                                                    (example_key.empty() ? options::keys<T>().front() : example_key) +
                                                    ")");
    group->add_flag("--dump-config", dump_config_, "print the resolved config as JSON and exit");
  }
  bool dump_config() const { return dump_config_; }
  const std::string& config_file() const { return config_file_; }

  // Whether `key` was given: on the command line or (after resolve()) in the --config file.
  bool set(const std::string& key) const {
    if (config_values_.is_object() && config_values_.contains(key) && !config_values_.at(key).is_null()) return true;
    for (const auto& [option, k] : keys_)
      if (k == key && option->count() > 0) return true;
    return false;
  }

  // The given values: each flag on the command line as its JSON value.
  nlohmann::json given() const {
    const auto all = options::to_json(values_);
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [option, key] : keys_) {
      if (option->count() == 0) continue;
      const auto g = given_value_.find(option);
      out[key] = g != given_value_.end() ? g->second() : all.at(key);
    }
    return out;
  }

  // defaults < `lower` layers (e.g. a checkpoint's config) < --config < the flags given.
  T resolve(std::vector<options::Layer> layers = {}) const {
    if (!config_file_.empty()) {
      config_values_ = read_config_file();
      layers.push_back({config_values_, cat("--config '", config_file_, "'")});
    }
    layers.push_back({given(), options::kCommandLine});
    T resolved = options::resolve<T>(layers);
    if (!dump_config_) {
      const auto j = options::to_json(resolved);
      for (const auto& key : required_)
        if (j.at(key).is_string() && j.at(key).template get<std::string>().empty())
          throw std::invalid_argument(cat(flag_of(key), " is required"));
    }
    return resolved;
  }

 private:
  // The same reader and messages as skd-train's --config: a missing file is usage (2), content that is
  // not JSON a format error (1).
  nlohmann::json read_config_file() const { return read_json_file_of("config", config_file_, ""); }

  T& values_;
  std::map<CLI::Option*, std::string> keys_;
  // The value given to an option not bound to its field directly (an enum's name, an optional's value).
  std::map<CLI::Option*, std::function<nlohmann::json()>> given_value_;
  std::vector<std::string> required_;
  mutable nlohmann::json config_values_;  // the --config file, once resolve() has read it
  std::string config_file_;
  bool dump_config_ = false;
};

// A library error rendered for this app: keys named by their flags.
inline std::string render_error(const std::exception& e) {
  if (const auto* keyed = dynamic_cast<const KeyedMessage*>(&e)) return keyed->render(flag_of);
  return e.what();
}

}  // namespace skd::app
