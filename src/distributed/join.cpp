// The bootstrap of every app: environment, device pinning, log rank and file, communicator.
#include "skd/distributed/join.h"

#include <filesystem>

#include "skd/core/logging.h"

namespace skd::distributed {

Session join(const JoinOptions& options, torch::Device requested) {
  Session s;
  s.env = dist_env_from_environment();
  set_log_rank(s.env.rank);
  s.device = rank_device(s.env, requested, torch::cuda::device_count());
  set_current_device(s.device);
  if (s.env.rank == 0 && !options.log_file.empty()) {
    const auto folder = std::filesystem::path(options.log_file).parent_path();
    if (!folder.empty()) std::filesystem::create_directories(folder);
    set_log_file(options.log_file);
  }
  if (s.env.world_size > 1 && options.communicate) {
    s.comm = Communicator::create(s.env, options.backend, s.device, options.timeout);
    log_info("process ", s.env.rank, "/", s.env.world_size, " (", s.env.source, ", ", s.comm->backend(), ")");
  }
  return s;
}

}  // namespace skd::distributed
