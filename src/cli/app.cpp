// The shared command-line policy of the skd-* apps (skd/cli/app.h).
#include "skd/cli/app.h"

#include <cstdio>
#include <stdexcept>

#include "skd/cli/binder.h"
#include "skd/core/error.h"
#include "skd/core/logging.h"

namespace skd::cli {

std::string render_error(const std::exception& e) {
  if (const auto* keyed = dynamic_cast<const KeyedMessage*>(&e)) return keyed->render(log_key);
  return e.what();
}

CLI::Validator number_at_least(double low, bool strict, const char* name) {
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

CLI::Validator positive() {
  return number_at_least(0, true, "POSITIVE");
}
CLI::Validator non_negative() {
  return number_at_least(0, false, "NONNEGATIVE");
}

void add_common_options(CLI::App& app, int& threads, std::string& log_level) {
  app.add_option(
         "--threads", threads,
         "intra-op CPU threads (default: this node's cores, shared among its ranks in a multi-process job)")
      ->transform(decimal_integer<int>())
      ->check(positive());
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (env SKD_LOG_LEVEL)");
}

int run(CLI::App& app, int argc, const char* const* argv, const std::function<int()>& body) {
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

}  // namespace skd::cli
