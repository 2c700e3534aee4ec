// Graceful stop for long runs: SIGINT/SIGTERM set a flag that the training loop checks after
// every step (it then writes a checkpoint and the app exits with 128 + signal). A second signal
// of the same kind ends the process at once (default action).
#pragma once

namespace skd::train {

// Installs the handlers (idempotent). Also ignores SIGXFSZ, so exceeding a file-size limit makes
// write() fail with EFBIG (a clean error, like a full disk) instead of killing the process.
void install_stop_signals();
// The signal that asked to stop, or 0.
int stop_signal();
// Forgets a received signal (tests).
void clear_stop_signal();
// Marks a stop as if `signo` had arrived (tests, and callers with their own stop conditions).
void request_stop(int signo);

}  // namespace skd::train
