#include "skd/core/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace skd {
namespace {

LogLevel initial_level() {
  if (const char* env = std::getenv("SKD_LOG_LEVEL"); env && *env) {
    try {
      return parse_log_level(env);
    } catch (const std::exception&) {
    }
  }
  return LogLevel::INFO;
}

std::atomic<LogLevel> g_level{initial_level()};
std::atomic<int> g_rank{0};
std::mutex g_mutex;

std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto lg = std::make_shared<spdlog::logger>("skd", sink);
    lg->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
    lg->set_level(spdlog::level::trace);
    return lg;
  }();
  return l;
}

spdlog::level::level_enum to_spd(LogLevel l) {
  switch (l) {
    case LogLevel::TRACE: return spdlog::level::trace;
    case LogLevel::DEBUG: return spdlog::level::debug;
    case LogLevel::INFO: return spdlog::level::info;
    case LogLevel::WARN: return spdlog::level::warn;
    case LogLevel::ERROR: return spdlog::level::err;
    case LogLevel::OFF: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

LogLevel parse_log_level(const std::string& name) {
  if (name == "trace") return LogLevel::TRACE;
  if (name == "debug") return LogLevel::DEBUG;
  if (name == "info") return LogLevel::INFO;
  if (name == "warn" || name == "warning") return LogLevel::WARN;
  if (name == "error") return LogLevel::ERROR;
  if (name == "off") return LogLevel::OFF;
  throw std::invalid_argument(cat("unknown log level '", name,
                                  "' (expected trace|debug|info|warn|error|off)"));
}

void set_log_rank(int rank) { g_rank = rank; }

void set_log_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto& lg = logger();
  auto& sinks = lg->sinks();
  if (sinks.size() > 1) sinks.resize(1);
  if (!path.empty()) {
    auto fsink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
    fsink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    sinks.push_back(fsink);
    // Every message reaches the file at once (people tail -f it; a crash loses nothing).
    lg->flush_on(spdlog::level::trace);
  }
}

void log_message(LogLevel level, const std::string& message) {
  if (level < g_level.load()) return;
  if (g_rank.load() != 0 && level < LogLevel::WARN) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  logger()->log(to_spd(level), message);
}

namespace {
std::mutex g_namer_mutex;
KeyNamer g_key_namer;  // empty: keys are named as they are
}  // namespace

void set_log_key_namer(KeyNamer namer) {
  std::lock_guard<std::mutex> lock(g_namer_mutex);
  g_key_namer = std::move(namer);
}

std::string log_key(const std::string& key) {
  std::lock_guard<std::mutex> lock(g_namer_mutex);
  return g_key_namer ? g_key_namer(key) : key;
}

}  // namespace skd
