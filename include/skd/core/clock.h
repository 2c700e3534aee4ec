// Wall-clock stamps written into artifacts and tables.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace skd {

// The current UTC time as ISO 8601, e.g. "2026-12-02T08:44:00Z".
inline std::string utc_now() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace skd
