#include "skd/train/signals.h"

#include <csignal>

#include <atomic>

namespace skd::train {

namespace {

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int signo) {
  if (g_signal.load() == signo) {  // second time: give up waiting for the step
    std::signal(signo, SIG_DFL);
    std::raise(signo);
    return;
  }
  g_signal.store(signo);
}

}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGXFSZ, SIG_IGN);
}

int stop_signal() { return g_signal.load(); }
void clear_stop_signal() { g_signal.store(0); }
void request_stop(int signo) { g_signal.store(signo); }

}  // namespace skd::train
