// The step-time breakdown of skd-train (issue 28).
#include "skd/train/step_timer.h"

#include <cstdio>

namespace skd::train {

double StepBreakdown::total() const {
  double t = 0;
  for (double s : seconds) t += s;
  return t;
}

double StepBreakdown::share(StepPhase phase) const {
  const double t = total();
  return t > 0 ? seconds[static_cast<size_t>(phase)] / t : 0.0;
}

StepBreakdown& StepBreakdown::operator+=(const StepBreakdown& o) {
  for (size_t i = 0; i < kStepPhases; ++i) seconds[i] += o.seconds[i];
  steps += o.steps;
  return *this;
}

nlohmann::json StepBreakdown::to_json() const {
  nlohmann::json s = nlohmann::json::object(), f = nlohmann::json::object();
  for (const auto& [name, phase] : kStepPhaseNames) {
    s[name] = seconds[static_cast<size_t>(phase)];
    f[name] = share(phase);
  }
  return {{"seconds", s},
          {"share", f},
          {"wall_s", total()},
          {"steps", steps},
          {"step_ms", steps > 0 ? 1e3 * total() / static_cast<double>(steps) : 0.0}};
}

std::string StepBreakdown::line() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "step %.1f ms:", steps > 0 ? 1e3 * total() / static_cast<double>(steps) : 0.0);
  std::string out = buf;
  for (const auto& [name, phase] : kStepPhaseNames) {
    std::snprintf(buf, sizeof buf, " %s %.0f%%", name, 100.0 * share(phase));
    out += buf;
  }
  return out;
}

void StepTimer::start() {
  last_ = Clock::now();
}

void StepTimer::mark(StepPhase phase) {
  const auto now = Clock::now();
  const double s = std::chrono::duration<double>(now - last_).count();
  current_.seconds[static_cast<size_t>(phase)] += s;
  last_ = now;
}

StepBreakdown StepTimer::take() {
  StepBreakdown out = current_;
  current_ = StepBreakdown{};
  return out;
}

}  // namespace skd::train
