#include "test_util.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace skd::test {

std::string fixtures_dir() {
  if (const char* env = std::getenv("SKD_FIXTURES"); env && *env) return env;
  return SKD_FIXTURES_DEFAULT;
}

std::string fixture(const std::string& relative) {
  const fs::path dir = fixtures_dir();
  if (!fs::is_directory(dir)) {
    ADD_FAILURE() << "FIXTURES MISSING: folder '" << dir.string()
                  << "' does not exist; set SKD_FIXTURES to the shared/fixtures folder";
    return "";
  }
  const fs::path p = dir / relative;
  if (!fs::exists(p)) {
    ADD_FAILURE() << "FIXTURE MISSING: '" << p.string() << "'";
    return "";
  }
  return p.string();
}

std::string scratch_dir(const std::string& name) {
  const fs::path p = fs::path(SKD_BINARY_DIR) / "test_scratch" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace skd::test
