// Shared by the skd-* apps: the command-line layer (skd/cli: option binder, exit-code policy, error
// rendering) under the apps' names, and what needs LibTorch: applying the common options (thread count,
// host allocator, log level).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>

#include "skd/cli/app.h"
#include "skd/cli/binder.h"
#include "skd/core/blas.h"
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

// Tunes the host allocator (skd/core/memory.h), sets the log level and the intra-op threads, and
// OpenBLAS's pool to as many (skd/core/blas.h); an unset --threads becomes the cores of this node
// divided among its ranks (LOCAL_WORLD_SIZE / SLURM), written back into `threads`.
inline void apply_common_options(int& threads, const std::string& log_level) {
  tune_host_allocator();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = distributed::threads_per_rank(threads, distributed::dist_env_from_environment(), cores);
  torch::set_num_threads(threads);
  const std::string blas = tune_blas_threads(threads);
  if (!log_level.empty()) set_log_level(parse_log_level(log_level));
  if (!blas.empty()) log_debug(blas);
}

// The main of a job app (skd-eval, skd-extract, skd-export, skd-convert): parses argv (cli::run's exit
// codes), resolves the job (defaults < --config < flags), prints it for --dump-config, else applies the
// common options and calls `body(job)`. skd-train resolves a resumed checkpoint's config as a lower
// layer first, so it calls cli::run itself.
template <typename Job, typename Body>
int run_job(CLI::App& app, int argc, char** argv, cli::OptionBinder<Job>& binder, int& threads,
            const std::string& log_level, Body body) {
  return run(app, argc, argv, [&] {
    const Job job = binder.resolve();
    if (binder.dump_config()) {
      std::printf("%s\n", options::to_json(job).dump(2).c_str());
      return 0;
    }
    apply_common_options(threads, log_level);
    body(job);
    return 0;
  });
}

}  // namespace skd::app
