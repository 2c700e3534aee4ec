// Command-line flags from the library's option structs (skd/core/options.h): the one place where a config
// key meets its flag. An app binds each flag to a field by key; the field's visit() entry gives its type,
// its enum names and its help, so an app says only where the flag goes:
//
//   cli::OptionBinder<eval::EvalJob> b(job);
//   b.add(group, "batch_size");                       // --batch-size, help from the field
//   b.add_named(group, "eval", "--eval,!--no-eval");  // other CLI11 names
//   b.add(group, "arch", "help of this app only");    // an app's own help, overriding the field's
//   b.add_config_options(&app, "evaluation");         // --config FILE, --dump-config
//   ... const eval::EvalJob job = b.resolve();        // defaults < lower layers < --config < flags
//
// Values are checked when the command line is read (integers decimal and in range, enum names, text values
// such as skd/core/units.h parsed by from_text), each error naming the flag; a --config file is checked
// with the same reader (skd/core/options.h), each error naming the file and the key.
//
// Naming keys. The library names parameters by config key (skd::Keyed errors, log_key in log lines). The
// binder owns the process's key -> flag naming: from its construction it is installed as the log key
// namer (skd/core/logging.h), and cli::render_error (skd/cli/app.h) renders keyed errors with the same
// namer. A key bound with other names gets its first long name ("model" -> "--supernet" if so bound);
// any other key (bound or not: "resume", "max_steps") gets "--" + key with '-' for '_'. An app that
// reports keys of another struct (extract's selection keys) needs no table of its own: it names them by
// key and lets this namer render them.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/options.h"

namespace skd::cli {

// "--" + key with '-' for '_': "batch_size" -> "--batch-size".
std::string default_flag(const std::string& key);
// The first long name of a CLI11 spec: "--eval,!--no-eval" -> "--eval".
std::string first_long_name(const std::string& spec);
// Whether argv (a synthetic one in tests) holds --config or --dump-config: required flags may then be
// absent (their value may come from the file).
bool config_on_command_line(int argc, const char* const* argv);

// The key -> flag names of one app. install() makes it the process's namer (skd/core/logging.h's
// set_log_key_namer, also used by render_error); bind() records a key's flag.
class FlagNames {
 public:
  FlagNames();
  void bind(const std::string& key, const std::string& flag);
  std::string flag_of(const std::string& key) const;
  KeyNamer namer() const;
  void install() const;

 private:
  std::shared_ptr<std::map<std::string, std::string>> names_;
};

// A CLI11 check that a value is one of the names of an enum, so a wrong name is refused while parsing:
// "--amp: unknown value 'fp8' (expected one of none, bf16, fp16)".
template <typename E, size_t N>
CLI::Validator one_of(const std::pair<const char*, E> (&names)[N]) {
  return CLI::Validator(
      [&names](std::string& text) -> std::string {
        if (find_enum(text, names)) return "";
        return cat("unknown value '", excerpt(text), "' (expected one of ", enum_names(names), ")");
      },
      "");
}

// Integers on the command line are decimal. CLI11 converts them with strtoll(base 0): "010" would be
// octal 8 and "0x10" hex 16, and a value beyond the type saturates or wraps. This transform refuses
// anything but [+-]digits within T's range (hex, octal and binary prefixes with a message saying
// so) and hands CLI11 the digits without leading zeros ("010" -> "10").
std::string not_decimal(const std::string& text);  // the message for text that is not [+-]digits, or ""

template <typename T>
CLI::Validator decimal_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (auto message = not_decimal(text); !message.empty()) return message;
        const auto [value, used] = options::leading_number<T>(text);
        if (used != text.size())
          return cat(excerpt(text), " is out of range (expected an integer in ",
                     +std::numeric_limits<T>::min(), "..", +std::numeric_limits<T>::max(), ")");
        text = std::to_string(value);
        return "";
      },
      "");
}

// A CLI11 check that T::from_text reads the value (a text value: skd/core/units.h); its message otherwise.
template <typename T>
CLI::Validator text_value() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          T::from_text(text);
          return "";
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      },
      "");
}

// The --config file as JSON: a missing file is usage (std::invalid_argument), content that is not JSON a
// format error (skd::FormatError), both naming --config and the file.
nlohmann::json read_config_file(const std::string& path);

// Binds flags to the fields of `values` (a struct with visit(), see skd/core/options.h) by key.
template <typename T>
class OptionBinder {
 public:
  explicit OptionBinder(T& values) : values_(values) { names_.install(); }

  // The option for field `key`, named "--" + key with '-' (add_named: the CLI11 names in `spec`, e.g.
  // "--eval,!--no-eval"), described by the field's help with its enum's names ("" keeps it; another
  // text replaces the field's help for this app). Booleans become flags; enum fields take their names
  // (one_of); text values are checked by from_text; an optional field is set only when its flag is given.
  CLI::Option* add(CLI::App* group, const std::string& key, const std::string& help = "",
                   const std::string& spec = "") {
    const std::string names = spec.empty() ? default_flag(key) : spec;
    CLI::Option* option = nullptr;
    values_.visit([&](const char* k, auto& field, const auto&... extra) {
      if (key != k) return;
      using F = std::decay_t<decltype(field)>;
      const std::string text_help = help.empty() ? options::describe(extra...) : help;
      if constexpr (options::has_names<decltype(extra)...>) {
        option = add_text(group, names, text_help, key)->check(one_of(options::names_of(extra...)));
      } else if constexpr (options::detail::is_optional<F>::value) {
        using V = typename F::value_type;
        if constexpr (options::detail::is_text_value<V>::value) {
          option = add_text(group, names, text_help, key)->check(text_value<V>());
        } else {
          auto value = std::make_shared<V>();
          option = group->add_option(names, *value, text_help);
          if constexpr (std::is_integral_v<V>) option->transform(decimal_integer<V>());
          given_value_[option] = [value] { return nlohmann::json(*value); };
        }
      } else if constexpr (options::detail::is_text_value<F>::value) {
        option = add_text(group, names, text_help, key)->check(text_value<F>());
      } else if constexpr (std::is_same_v<F, bool>) {
        option = group->add_flag(names, field, text_help);
      } else {
        option = group->add_option(names, field, text_help);
        if constexpr (std::is_integral_v<F>) option->transform(decimal_integer<F>());
      }
    });
    if (option == nullptr) throw InternalError(cat("no option field '", key, "'"));
    keys_[option] = key;
    names_.bind(key, first_long_name(names));
    return option;
  }
  CLI::Option* add_named(CLI::App* group, const std::string& key, const std::string& spec) {
    return add(group, key, "", spec);
  }

  // A flag marked required (CLI11's REQUIRED), except when --config or --dump-config is on the command line
  // (`argc`, `argv`): the value may then come from the file, and resolve() checks that it is not empty.
  CLI::Option* add_required(CLI::App* group, const std::string& key, const std::string& help, int argc,
                            const char* const* argv, const std::string& spec = "") {
    required_.push_back(key);
    return add(group, key, help, spec)->required(!config_on_command_line(argc, argv));
  }
  CLI::Option* add_required(CLI::App* group, const std::string& key, int argc, const char* const* argv) {
    return add_required(group, key, "", argc, argv);
  }

  // --config FILE and --dump-config.
  void add_config_options(CLI::App* group, const std::string& what, const std::string& example_key = "") {
    group->add_option("--config", config_file_,
                      "JSON " + what + " (keys: the long flags with '_', e.g. " +
                          (example_key.empty() ? options::keys<T>().front() : example_key) + ")");
    group->add_flag("--dump-config", dump_config_, "print the resolved config as JSON and exit");
  }
  bool dump_config() const { return dump_config_; }
  const std::string& config_file() const { return config_file_; }
  // How this app names a key (its flag).
  std::string flag_of(const std::string& key) const { return names_.flag_of(key); }

  // Whether `key` was given: on the command line or (after resolve()) in the --config file.
  bool set(const std::string& key) const {
    if (config_values_.is_object() && config_values_.contains(key) && !config_values_.at(key).is_null())
      return true;
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

  // defaults < `lower` layers (e.g. a checkpoint's config) < --config < the flags given. A required
  // string left empty is std::invalid_argument naming its flag (not with --dump-config).
  T resolve(std::vector<options::Layer> layers = {}) const {
    if (!config_file_.empty()) {
      config_values_ = read_config_file(config_file_);
      layers.push_back({config_values_, cat("--config '", config_file_, "'")});
    }
    layers.push_back({given(), options::kCommandLine});
    T resolved = options::resolve<T>(layers);
    if (!dump_config_) {
      const auto j = options::to_json(resolved);
      for (const auto& key : required_)
        if (j.at(key).is_string() && j.at(key).template get<std::string>().empty())
          throw ParameterError(key, " is required");
    }
    return resolved;
  }

 private:
  // An option read as text (an enum's name, a text value): its JSON value is the text given.
  CLI::Option* add_text(CLI::App* group, const std::string& names, const std::string& help,
                        const std::string& key) {
    auto text = std::make_shared<std::string>();
    const auto current = options::to_json(values_).at(key);
    if (current.is_string()) *text = current.template get<std::string>();
    CLI::Option* option = group->add_option(names, *text, help);
    given_value_[option] = [text] { return nlohmann::json(*text); };
    return option;
  }

  T& values_;
  FlagNames names_;
  std::map<CLI::Option*, std::string> keys_;
  // The value given to an option not bound to its field directly (an enum's name, a text value, an optional).
  std::map<CLI::Option*, std::function<nlohmann::json()>> given_value_;
  std::vector<std::string> required_;
  mutable nlohmann::json config_values_;  // the --config file, once resolve() has read it
  std::string config_file_;
  bool dump_config_ = false;
};

}  // namespace skd::cli
