// Logging facade. spdlog stays private to src/core/logging.cpp. The level comes from
// set_log_level() or the SKD_LOG_LEVEL environment variable (trace|debug|info|warn|error|off).
// Only rank 0 logs unless set_log_rank() says otherwise.
#pragma once

#include <string>

#include "skd/core/error.h"

namespace skd {

enum class LogLevel { TRACE, DEBUG, INFO, WARN, ERROR, OFF };

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "trace", "debug", "info", "warn", "error", "off"; throws std::invalid_argument otherwise.
LogLevel parse_log_level(const std::string& name);
// Distributed runs: ranks other than 0 log warnings and errors only.
void set_log_rank(int rank);
// Also append every message to this file (empty = none).
void set_log_file(const std::string& path);

void log_message(LogLevel level, const std::string& message);

// How log lines name a config key: the running app installs its own names (skd-train: "max_steps" ->
// "--max-steps", as its error messages do); without one a key is named as it is.
void set_log_key_namer(KeyNamer namer);
std::string log_key(const std::string& key);

template <typename... Args>
void log_info(Args&&... args) {
  if (log_level() <= LogLevel::INFO) log_message(LogLevel::INFO, cat(std::forward<Args>(args)...));
}
template <typename... Args>
void log_debug(Args&&... args) {
  if (log_level() <= LogLevel::DEBUG) log_message(LogLevel::DEBUG, cat(std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn(Args&&... args) {
  if (log_level() <= LogLevel::WARN) log_message(LogLevel::WARN, cat(std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(Args&&... args) {
  if (log_level() <= LogLevel::ERROR) log_message(LogLevel::ERROR, cat(std::forward<Args>(args)...));
}

}  // namespace skd
