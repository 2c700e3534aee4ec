// Shared by the skd-* apps: the command-line layer (skd/cli: option binder, exit-code policy, error
// rendering) under the apps' names, and what needs LibTorch: applying the common options (thread count,
// host allocator, log level).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <thread>

#include "skd/cli/app.h"
#include "skd/cli/binder.h"
#include "skd/core/logging.h"
#include "skd/core/memory.h"
#include "skd/distributed/env.h"

namespace skd::app {

using cli::add_common_options;
using cli::decimal_integer;
using cli::kAutoThreads;
using cli::non_negative;
using cli::OptionBinder;
using cli::positive;
using cli::run;

// Tunes the host allocator (skd/core/memory.h), sets the log level and the intra-op threads; an unset
// --threads becomes the cores of this node divided among its ranks (LOCAL_WORLD_SIZE / SLURM), written
// back into `threads`.
inline void apply_common_options(int& threads, const std::string& log_level) {
  tune_host_allocator();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = distributed::threads_per_rank(threads, distributed::dist_env_from_environment(), cores);
  torch::set_num_threads(threads);
  if (!log_level.empty()) set_log_level(parse_log_level(log_level));
}

}  // namespace skd::app
