// Progress shown on a terminal: one line on stderr rewritten in place; nothing at all when stderr is
// not a terminal (a log file or a pipe gets log lines from the caller instead, if anything).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace skd {

// The line itself, for callers that compose their own text (the trainer's epoch/step/loss line).
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled = true);
  bool drawing() const { return tty_; }  // enabled and stderr is a terminal
  double seconds() const;                // since construction
  void draw(const std::string& text);    // replaces the line by `text`
  void finish();                         // ends the line (a newline), if anything was drawn

 private:
  bool tty_ = false, shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// "[#####.........] done/total unit  rate/s  ETA s": the apps' bar for batches, images, runs.
class ProgressBar {
 public:
  explicit ProgressBar(std::string unit) : unit_(std::move(unit)) {}
  void update(int64_t done, int64_t total);
  // update() as the (done, total) progress callback the library's long loops take.
  std::function<void(int64_t, int64_t)> callback() {
    return [this](int64_t done, int64_t total) { update(done, total); };
  }
  void finish() { line_.finish(); }

 private:
  std::string unit_;
  ProgressLine line_;
};

// A remaining time as "1h02m" (an hour or more) or "3m07s".
std::string format_eta(double seconds);

}  // namespace skd
