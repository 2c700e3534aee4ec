// Error policy of the library: std::invalid_argument for bad user input, std::runtime_error for
// I/O and format problems; SKD_CHECK for internal invariants. Messages name the file/key/flag.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace skd {

// Concatenates any streamable values into one string (used to build error and log messages).
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

// A file or stream is not in the expected format (corrupt, truncated, lying header...).
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An internal invariant was violated: a bug in this library, not bad input.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace skd

#define SKD_CHECK(cond, ...)                                                              \
  do {                                                                                    \
    if (!(cond))                                                                          \
      throw ::skd::InternalError(::skd::cat("internal check failed: " #cond " at ",       \
                                            __FILE__, ":", __LINE__, ": ", ##__VA_ARGS__)); \
  } while (0)
