// The non-template parts of the option binder (skd/cli/binder.h): flag names, the argv pre-scan, the
// --config reader.
#include "skd/cli/binder.h"

#include "skd/core/json_file.h"
#include "skd/core/logging.h"

namespace skd::cli {

std::string default_flag(const std::string& key) {
  std::string flag = "--" + key;
  for (auto& ch : flag)
    if (ch == '_') ch = '-';
  return flag;
}

std::string first_long_name(const std::string& spec) {
  const auto start = spec.find("--");
  if (start == std::string::npos) return spec;
  const auto end = spec.find(',', start);
  return spec.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

bool config_on_command_line(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dump-config" || arg == "--config" || arg.rfind("--config=", 0) == 0) return true;
  }
  return false;
}

FlagNames::FlagNames() : names_(std::make_shared<std::map<std::string, std::string>>()) {}

void FlagNames::bind(const std::string& key, const std::string& flag) {
  (*names_)[key] = flag;
}

std::string FlagNames::flag_of(const std::string& key) const {
  const auto it = names_->find(key);
  return it != names_->end() ? it->second : default_flag(key);
}

KeyNamer FlagNames::namer() const {
  return [names = names_](const std::string& key) {
    const auto it = names->find(key);
    return it != names->end() ? it->second : default_flag(key);
  };
}

void FlagNames::install() const {
  set_log_key_namer(namer());
}

std::string not_decimal(const std::string& text) {
  size_t i = 0;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) i = 1;
  const std::string digits = text.substr(i);
  const bool prefixed =
      digits.size() > 1 && digits[0] == '0' && std::string("xXoObB").find(digits[1]) != std::string::npos;
  if (prefixed)
    return cat("'", excerpt(text), "' is not a decimal integer (hex, octal and binary are not accepted)");
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
    return cat("'", excerpt(text), "' is not an integer");
  return "";
}

nlohmann::json read_config_file(const std::string& path) {
  return read_json_file_of("config", path, "");
}

}  // namespace skd::cli
