// The step-time breakdown of skd-train (issue 28).
#include "skd/train/step_timer.h"

#include <c10/core/Device.h>
#include <torch/version.h>

#include <cstdio>
#include <deque>
#include <optional>

// c10::Event::elapsedTime (device-generic event timing) is there from LibTorch 2.4 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SKD_HAVE_EVENT_TIMING 1
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#else
#define SKD_HAVE_EVENT_TIMING 0
#endif

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
  clock = o.clock;
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
          {"step_ms", steps > 0 ? 1e3 * total() / static_cast<double>(steps) : 0.0},
          {"clock", clock}};
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

#if SKD_HAVE_EVENT_TIMING
// The recorded events of an interval: `last` the latest one read (where the next phase starts), then
// each mark's phase with the event recorded at its end, oldest first.
struct StepTimer::DeviceEvents {
  c10::Device device;
  std::optional<c10::Event> last;
  std::deque<std::pair<StepPhase, c10::Event>> pending;

  c10::Event record() {
    c10::Event e(c10::DeviceType::CUDA, c10::EventFlag::BACKEND_DEFAULT);  // timing enabled
    e.record(c10::impl::VirtualGuardImpl(c10::DeviceType::CUDA).getStream(device));
    return e;
  }
  // Moves the time of every phase whose end event has completed into `into` (waiting for the last
  // one first when `settle`): query() never blocks.
  void read(StepBreakdown& into, bool settle) {
    if (settle && !pending.empty()) pending.back().second.synchronize();
    while (!pending.empty() && pending.front().second.query()) {
      auto& [phase, e] = pending.front();
      into.seconds[static_cast<size_t>(phase)] += last->elapsedTime(e) / 1e3;  // milliseconds
      last.emplace(std::move(e));
      pending.pop_front();
    }
  }
};
#else
struct StepTimer::DeviceEvents {};
#endif

StepTimer::StepTimer() = default;
StepTimer::~StepTimer() = default;

bool StepTimer::use_cuda_events(int index) {
#if SKD_HAVE_EVENT_TIMING
  const c10::impl::VirtualGuardImpl cuda(c10::DeviceType::CUDA);
  const c10::Device device = index >= 0
                                 ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index))
                                 : cuda.getDevice();  // "cuda" without an index: the current one
  events_.reset(new DeviceEvents{device, {}, {}});
  return true;
#else
  (void)index;
  return false;
#endif
}

void StepTimer::start() {
  last_ = Clock::now();
#if SKD_HAVE_EVENT_TIMING
  if (events_) {
    events_->pending.clear();
    events_->last.emplace(events_->record());
  }
#endif
}

void StepTimer::mark(StepPhase phase) {
#if SKD_HAVE_EVENT_TIMING
  if (events_) {
    events_->pending.emplace_back(phase, events_->record());
    return;
  }
#endif
  const auto now = Clock::now();
  const double s = std::chrono::duration<double>(now - last_).count();
  current_.seconds[static_cast<size_t>(phase)] += s;
  last_ = now;
}

StepBreakdown StepTimer::take(bool settle) {
#if SKD_HAVE_EVENT_TIMING
  if (events_) events_->read(current_, settle);
#else
  (void)settle;
#endif
  StepBreakdown out = current_;
  out.clock = events_ ? "cuda events" : "host";
  current_ = StepBreakdown{};
  return out;
}

}  // namespace skd::train
