// What every skd-* command line shares, without LibTorch: the exit-code policy (0 ok, 2 usage,
// 1 failure), error rendering with the app's flags (skd/cli/binder.h names keys), number checks and
// the common --threads / --log-level flags. Applying those (threads, allocator) needs LibTorch and
// lives with the apps (apps/app_common.h).
#pragma once

#include <CLI/CLI.hpp>

#include <exception>
#include <functional>
#include <string>

namespace skd::cli {

// A library error rendered for this app: the keys of a skd::Keyed error named by the installed key
// namer (the app's OptionBinder: its flags), any other error as its what().
std::string render_error(const std::exception& e);

// CLI11's PositiveNumber / NonNegativeNumber print their range as up to 1.8e308; these say it plainly
// ("--threads: 0 is not positive") and keep the same names in --help.
CLI::Validator number_at_least(double low, bool strict, const char* name);
CLI::Validator positive();
CLI::Validator non_negative();

// --threads unset: 0, resolved by the app (distributed::threads_per_rank).
inline constexpr int kAutoThreads = 0;

// --threads (decimal, positive) and --log-level.
void add_common_options(CLI::App& app, int& threads, std::string& log_level);

// Parses argv and runs `body`, mapping errors to exit codes: a CLI11 parse error prints help or the usage
// error (2; 0 for --help), std::invalid_argument 2, any other exception 1; the message, rendered by
// render_error, is one line "<app>: error: ..." on stderr.
int run(CLI::App& app, int argc, const char* const* argv, const std::function<int()>& body);

}  // namespace skd::cli
