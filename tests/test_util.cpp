#include "test_util.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
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
                  << "' does not exist; run tests/fixtures/make_fixtures.sh (or set SKD_FIXTURES)";
    return "";
  }
  const fs::path p = dir / relative;
  if (!fs::exists(p)) {
    ADD_FAILURE() << "FIXTURE MISSING: '" << p.string()
                  << "' (generated files come from tests/fixtures/make_fixtures.sh)";
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

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("could not bind a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace skd::test
