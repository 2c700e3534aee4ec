#include "skd/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace skd {

ProgressLine::ProgressLine(bool enabled) : tty_(enabled && isatty(fileno(stderr))) {}

double ProgressLine::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressLine::draw(const std::string& text) {
  if (!tty_) return;
  std::fprintf(stderr, "\r%s", text.c_str());
  shown_ = true;
}

void ProgressLine::finish() {
  if (shown_) std::fprintf(stderr, "\n");
  shown_ = false;
}

void ProgressBar::update(int64_t done, int64_t total) {
  if (!line_.drawing()) return;
  const double rate = done / std::max(line_.seconds(), 1e-9);
  const int width = 30, filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
  char buf[512];
  std::snprintf(buf, sizeof buf, "[%s%s] %lld/%lld %s  %.0f/s  ETA %.0f s ", std::string(filled, '#').c_str(),
                std::string(width - filled, '.').c_str(), static_cast<long long>(done), static_cast<long long>(total),
                unit_.c_str(), rate, (total - done) / std::max(rate, 1e-9));
  line_.draw(buf);
}

std::string format_eta(double s) {
  const int64_t t = static_cast<int64_t>(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(t / 3600), static_cast<long long>(t / 60 % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  return buf;
}

}  // namespace skd
