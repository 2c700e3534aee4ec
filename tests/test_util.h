// Helpers shared by the test executables: fixture lookup and scratch directories.
#pragma once

#include <string>

namespace skd::test {

// The shared fixtures folder: $SKD_FIXTURES if set, else ../shared/fixtures next to the checkout.
// Returns "" when it does not exist (tests then fail loudly through require_fixture).
std::string fixtures_dir();
// Full path of a fixture file; fails the current test (ADD_FAILURE) with a clear message and
// returns "" if the fixtures folder or the file is missing.
std::string fixture(const std::string& relative);
// A fresh empty directory under the build tree, removed at process exit is not guaranteed.
std::string scratch_dir(const std::string& name);

// A free TCP port on 127.0.0.1 (bound to port 0, then released: racy only against other processes).
int free_port();

}  // namespace skd::test
