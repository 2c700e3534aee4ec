// Shared by the skd-* apps: exit-code policy (0 ok, 2 usage, 1 failure), thread setup, printing.
#pragma once

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <thread>

#include "skd/core/error.h"
#include "skd/core/logging.h"

namespace skd::app {

inline int default_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

inline void add_common_options(CLI::App& app, int& threads, std::string& log_level) {
  app.add_option("--threads", threads, "intra-op CPU threads (default: number of cores)")->check(CLI::PositiveNumber);
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (env SKD_LOG_LEVEL)");
}

inline void apply_common_options(int threads, const std::string& log_level) {
  torch::set_num_threads(threads);
  if (!log_level.empty()) set_log_level(parse_log_level(log_level));
}

// Parses argv and runs `body`, mapping errors: CLI/usage problems and std::invalid_argument -> 2,
// any other exception -> 1 (the message is printed as one line on stderr).
inline int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help / the usage error
    return rc == 0 ? 0 : 2;
  }
  try {
    return body();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
    return 1;
  }
}

}  // namespace skd::app
