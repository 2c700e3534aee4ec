// Joining the job this process was started in: the one bootstrap every app runs before its work.
// It reads the job's layout from the environment (skd/distributed/env.h), pins this rank's device, makes
// only the main rank log at info level, and, in a multi-process job, rendezvouses with the other ranks
// (skd/distributed/communicator.h). A single process (no torchrun / SLURM variables) joins a job of one.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "skd/distributed/communicator.h"
#include "skd/distributed/env.h"

namespace skd::distributed {

// Seconds a rendezvous or a collective waits for a peer before the job counts it as dead: the
// default of every app's --dist-timeout and of the run config's dist_timeout.
inline constexpr double kDefaultTimeoutSeconds = 300;

// A timeout given in seconds (an option's unit), in whole milliseconds (truncated).
inline constexpr std::chrono::milliseconds timeout_from_seconds(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

struct JoinOptions {
  Backend backend = Backend::AUTO;
  // Bounds the rendezvous and every collective of the communicator.
  std::chrono::milliseconds timeout = timeout_from_seconds(kDefaultTimeoutSeconds);
  // The main rank appends every log message to this file (its folder is created) from before the
  // rendezvous on, so the file records the job's layout. Empty: no log file.
  std::string log_file;
  // false: no process group even in a multi-process job, for work in which no rank needs another's
  // results (each rank still gets its device and log rank).
  bool communicate = true;
};

struct Session {
  DistEnv env;
  torch::Device device = torch::kCPU;  // this rank's device (rank_device); current when CUDA
  std::shared_ptr<Communicator> comm;  // null for a single process (or JoinOptions::communicate false)
};

// Reads the environment (dist_env_from_environment), pins this rank's device for `requested`
// (rank_device: "cuda" -> cuda:LOCAL_RANK, then set_current_device), sets the log rank, opens the main
// rank's log file, and with world size > 1 creates the communicator and logs
// "process <rank>/<world> (<source>, <backend>)". Throws what those throw: std::invalid_argument for a
// malformed environment or a rank without a GPU, std::runtime_error when the rendezvous fails.
Session join(const JoinOptions& options, torch::Device requested);

}  // namespace skd::distributed
