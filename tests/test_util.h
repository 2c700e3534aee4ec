// Helpers shared by the test executables: fixture lookup, scratch directories, error messages.
#pragma once

#include <exception>
#include <functional>
#include <string>

namespace skd::test {

// The test fixtures folder: $SKD_FIXTURES if set, else tests/fixtures in the checkout (its generated
// files made by tests/fixtures/make_fixtures.sh).
// Returns "" when it does not exist (tests then fail loudly through require_fixture).
std::string fixtures_dir();
// Full path of a fixture file; fails the current test (ADD_FAILURE) with a clear message and
// returns "" if the fixtures folder or the file is missing.
std::string fixture(const std::string& relative);
// A fresh empty directory under the build tree, removed at process exit is not guaranteed.
std::string scratch_dir(const std::string& name);

// A free TCP port on 127.0.0.1 (bound to port 0, then released: racy only against other processes).
int free_port();

// The message of the exception of type E that `f` throws, "(no error)" when it throws none (an exception
// of another type propagates and fails the test).
template <typename E = std::exception>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace skd::test
