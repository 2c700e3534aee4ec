#include "skd/core/blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace skd {

namespace {

template <typename F>
F symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

}  // namespace

std::string tune_blas_threads(int threads) {
  // OpenBLAS's exported entry points (interface/ and driver/others/ of OpenBLAS 0.3.x): the pool is
  // shut down and started again, which re-reads the spin length from its environment settings.
  const auto read_env = symbol<void (*)()>("openblas_read_env");
  const auto shutdown = symbol<int (*)()>("blas_thread_shutdown_");
  const auto init = symbol<int (*)()>("blas_thread_init");
  const auto set_threads = symbol<void (*)(int)>("openblas_set_num_threads");
  const auto get_threads = symbol<int (*)()>("openblas_get_num_threads");
  if (!read_env || !shutdown || !init || !set_threads || !get_threads) return "";
  std::string said;
  if (!env_set("OPENBLAS_THREAD_TIMEOUT") && !env_set("GOTO_THREAD_TIMEOUT")) {
    // OpenBLAS reads its settings only from the environment, once: set it, have them read again and
    // restart the pool (which takes the spin length as it starts), then take it back out so that
    // child processes see the environment as the user left it.
    const std::string value = std::to_string(kBlasThreadTimeout);
    setenv("OPENBLAS_THREAD_TIMEOUT", value.c_str(), 1);
    read_env();
    shutdown();
    init();
    unsetenv("OPENBLAS_THREAD_TIMEOUT");
    said = "worker spin 2^" + value + " cycles";
  }
  if (threads > 0 && !env_set("OPENBLAS_NUM_THREADS") && !env_set("GOTO_NUM_THREADS") &&
      get_threads() != threads) {
    set_threads(threads);
    said += std::string(said.empty() ? "" : ", ") + std::to_string(get_threads()) + " thread(s)";
  }
  return said.empty() ? "" : "OpenBLAS: " + said;
}

}  // namespace skd
