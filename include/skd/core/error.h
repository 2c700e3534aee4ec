// Error policy of the library: std::invalid_argument for bad user input, std::runtime_error for
// I/O and format problems; SKD_CHECK for internal invariants. Messages name the file/key/flag.
#pragma once

#include <functional>
#include <sstream>
#include <string_view>
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

// A value echoed in a message: at most `limit` characters, then "... (N bytes)", so that a huge bad
// value (a 50 MB string in a config) does not become a huge message. Every message that quotes a
// value from a file or a flag goes through it.
inline std::string excerpt(std::string_view text, size_t limit = 80) {
  if (text.size() <= limit) return std::string(text);
  return cat(text.substr(0, limit), "... (", text.size(), " bytes)");
}

// A file or stream is not in the expected format (corrupt, truncated, lying header...).
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Errors that name parameters by their config keys ("batch_size"). The library writes such a message as a
// function of a namer: what() names each key as it is, and an app renders the same message with its own
// names for the keys (skd-train: "--batch-size"), in one place (skd/cli/binder.h), so the library
// never speaks one command line's vocabulary.
using KeyNamer = std::function<std::string(const std::string& key)>;

class KeyedMessage {
 public:
  virtual ~KeyedMessage() = default;
  virtual std::string render(const KeyNamer& name) const = 0;
};

template <typename Base>
class Keyed : public Base, public KeyedMessage {
 public:
  using Message = std::function<std::string(const KeyNamer&)>;
  explicit Keyed(Message message) : Base(message(plain)), message_(std::move(message)) {}
  // The common shape: the key followed by `rest` ("batch_size", " must be positive").
  Keyed(std::string key, std::string rest)
      : Keyed([key = std::move(key), rest = std::move(rest)](const KeyNamer& name) { return name(key) + rest; }) {}
  std::string render(const KeyNamer& name) const override { return message_(name); }

 private:
  static std::string plain(const std::string& key) { return key; }
  Message message_;
};

// A parameter has a bad value or conflicts with another: wrong usage (the apps exit 2).
using ParameterError = Keyed<std::invalid_argument>;
// A file named by a parameter cannot be used (I/O, a failed check): a failure (the apps exit 1).
using ParameterFailure = Keyed<std::runtime_error>;
// A file named by a parameter has malformed content (the apps exit 1).
using ParameterFormatError = Keyed<FormatError>;

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
