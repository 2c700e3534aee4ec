// Shared by the skd-* apps: exit-code policy (0 ok, 2 usage, 1 failure), thread setup, printing.
#pragma once

#include <CLI/CLI.hpp>

#include "app_options.h"
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>
#include <functional>
#include <iostream>
#include <thread>

#include "skd/core/error.h"
#include "skd/core/logging.h"
#include "skd/core/memory.h"
#include "skd/core/progress.h"
#include "skd/dist/env.h"

namespace skd::app {

// CLI11's PositiveNumber / NonNegativeNumber print their range as up to 1.8e308; these say it plainly
// ("--threads: 0 is not positive") and keep the same names in --help.
inline CLI::Validator number_at_least(double low, bool strict, const char* name) {
  return CLI::Validator(
      [low, strict](std::string& text) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(text, &used);
          if (used != text.size()) return excerpt(text) + " is not a number";
        } catch (const std::exception&) {
          return excerpt(text) + " is not a number";
        }
        if (strict ? v > low : v >= low) return "";
        return excerpt(text) + (strict ? " is not positive" : " is negative");
      },
      name);
}
inline CLI::Validator positive() { return number_at_least(0, true, "POSITIVE"); }
inline CLI::Validator non_negative() { return number_at_least(0, false, "NONNEGATIVE"); }

// --threads unset: 0, resolved by apply_common_options (dist::threads_per_rank).
inline constexpr int kAutoThreads = 0;

inline void add_common_options(CLI::App& app, int& threads, std::string& log_level) {
  app.add_option("--threads", threads,
                 "intra-op CPU threads (default: this node's cores, shared among its ranks in a multi-process job)")
      ->transform(decimal_integer<int>())
      ->check(positive());
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (env SKD_LOG_LEVEL)");
}

// Tunes the host allocator (skd/core/memory.h), sets the log level and the intra-op threads; an unset --threads becomes the cores of this node
// divided among its ranks (LOCAL_WORLD_SIZE / SLURM), written back into `threads`.
inline void apply_common_options(int& threads, const std::string& log_level) {
  tune_host_allocator();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = dist::threads_per_rank(threads, dist::dist_env_from_environment(), cores);
  torch::set_num_threads(threads);
  if (!log_level.empty()) set_log_level(parse_log_level(log_level));
}

// Parses argv and runs `body`, mapping errors (library errors that name config keys are printed with
// this app's flags, app_options.h): CLI/usage problems and std::invalid_argument -> 2,
// any other exception -> 1 (the message is printed as one line on stderr).
inline int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  set_log_key_namer(flag_of);  // log lines name keys by this app's flags, as its errors do
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help / the usage error
    return rc == 0 ? 0 : 2;
  }
  try {
    return body();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), render_error(e).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), render_error(e).c_str());
    return 1;
  }
}

}  // namespace skd::app
