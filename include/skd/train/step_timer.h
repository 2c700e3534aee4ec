// Where a training step's time goes (issue 28): the step is cut into phases at fixed points of the
// loop (StepTimer::mark), every moment of the interval belongs to exactly one phase, and each log
// interval reports the seconds and shares of: waiting for the data loader, the forward pass(es) with
// their loss, the backward pass(es), the optimizer (loss-scale check, clipping, AdamW, EMA, zeroing
// the gradients), the wait for the gradient all-reduce (its part that did not overlap the backward),
// and the rest (step setup, Mixup/CutMix, host-to-device copies, reading the losses, logging).
// On the CPU the marks read the host clock (std::chrono::steady_clock), exact there: every kernel
// runs in the calling thread. On CUDA the host only queues the kernels, so each mark records a CUDA
// event on the device's current stream instead and a phase's time is the device's time between two
// events; the events are read when they have completed (the trainer's loss read waits for the
// forward and backward anyway), so the breakdown adds no host synchronisation; what has not
// completed at a log line goes to the next interval, and take(true) at the end of an epoch waits for
// its last event.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace skd::train {

enum class StepPhase { DATA, FORWARD, BACKWARD, OPTIMIZER, ALLREDUCE, REST };
inline constexpr size_t kStepPhases = 6;
inline constexpr std::pair<const char*, StepPhase> kStepPhaseNames[] = {
    {"data", StepPhase::DATA},           {"forward", StepPhase::FORWARD},
    {"backward", StepPhase::BACKWARD},   {"optimizer", StepPhase::OPTIMIZER},
    {"allreduce", StepPhase::ALLREDUCE}, {"rest", StepPhase::REST}};

// The phases' seconds over an interval of steps.
struct StepBreakdown {
  std::array<double, kStepPhases> seconds{};  // they partition the interval: their sum is its wall time
  int64_t steps = 0;                           // optimizer steps in it
  const char* clock = "host";                  // "host" or "cuda events"

  double total() const;  // the interval's wall time
  double share(StepPhase phase) const;  // of total(), 0..1
  StepBreakdown& operator+=(const StepBreakdown& o);
  // {"seconds": {"data": s, ...}, "share": {"data": f, ...}, "wall_s": s, "steps": n, "step_ms": ms,
  //  "clock": "host"|"cuda events"}
  nlohmann::json to_json() const;
  // "step 412.3 ms: data 1% forward 30% backward 55% optimizer 9% allreduce 0% rest 5%"
  std::string line() const;
};

class StepTimer {
 public:
  using Clock = std::chrono::steady_clock;
  StepTimer();
  ~StepTimer();
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;
  // Times the phases with CUDA events on CUDA device `index` (its current stream) from the next
  // start(). False where this LibTorch cannot read the time between two events (before 2.4); the
  // host clock is kept then.
  bool use_cuda_events(int index);
  // Starts the interval's clock now (at the start of an epoch: time before it, e.g. evaluation, is
  // not counted).
  void start();
  // The time since the previous mark (or start) goes to `phase`.
  void mark(StepPhase phase);
  // One optimizer step ended (counts the interval's steps).
  void step_done() { ++current_.steps; }
  // The interval so far, and a new interval from now: its time is in the returned breakdown, so the
  // intervals of a run add up to its wall time (minus what start() skipped). With CUDA events, the
  // phases whose end event has not completed yet are left to the next take(); `settle` waits for the
  // last event first (the end of an epoch).
  StepBreakdown take(bool settle = false);

 private:
  struct DeviceEvents;
  Clock::time_point last_ = Clock::now();
  StepBreakdown current_;
  std::unique_ptr<DeviceEvents> events_;
};

}  // namespace skd::train
