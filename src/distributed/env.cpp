// Where this process sits in the job (torchrun / SLURM environment variables) and what follows from it
// for this process alone: its device and its share of the node's CPU threads.
#include "skd/distributed/env.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "skd/core/error.h"

namespace skd::distributed {

namespace {

using GetEnv = std::function<const char*(const char*)>;

// The value of `name`, or nullptr when unset or empty.
const char* env_value(const GetEnv& getenv_fn, const char* name) {
  const char* v = getenv_fn(name);
  return (v && *v) ? v : nullptr;
}

int parse_env_int(const char* name, const char* value) {
  const std::string s(value);
  int out = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || ptr != s.data() + s.size())
    throw std::invalid_argument(cat("environment variable ", name, "='", s, "' is not an integer"));
  return out;
}

int required_int(const GetEnv& getenv_fn, const char* name, const char* because) {
  const char* v = env_value(getenv_fn, name);
  if (!v) throw std::invalid_argument(cat("environment variable ", name, " is not set but ", because, " is"));
  return parse_env_int(name, v);
}

// Range checks shared by the torchrun and SLURM layouts; `*_name` are the variables the values came
// from, so the message points at what to fix.
void check_layout(const DistEnv& e, const char* rank_name, const char* world_name, const char* local_name) {
  if (e.world_size < 1)
    throw std::invalid_argument(
        cat("environment variable ", world_name, "='", e.world_size, "' must be >= 1"));
  if (e.rank < 0)
    throw std::invalid_argument(cat("environment variable ", rank_name, "='", e.rank, "' must be >= 0"));
  if (e.rank >= e.world_size)
    throw std::invalid_argument(cat("environment variable ", rank_name, "='", e.rank, "' must be below ",
                                    world_name, "=", e.world_size));
  if (e.local_rank < 0 || e.local_rank >= e.world_size)
    throw std::invalid_argument(cat("environment variable ", local_name, "='", e.local_rank,
                                    "' must be in [0, ", world_name, "=", e.world_size, ")"));
}

void read_master(const GetEnv& getenv_fn, DistEnv& e) {
  if (const char* a = env_value(getenv_fn, "MASTER_ADDR")) e.master_addr = a;
  if (const char* p = env_value(getenv_fn, "MASTER_PORT")) {
    e.master_port = parse_env_int("MASTER_PORT", p);
    if (e.master_port < 1 || e.master_port > 65535)
      throw std::invalid_argument(cat("environment variable MASTER_PORT='", p, "' is not a port (1..65535)"));
  }
}
}  // namespace

DistEnv dist_env_from(const GetEnv& getenv_fn) {
  DistEnv e;
  const bool torchrun = env_value(getenv_fn, "RANK") || env_value(getenv_fn, "WORLD_SIZE");
  const bool slurm = env_value(getenv_fn, "SLURM_PROCID") || env_value(getenv_fn, "SLURM_NTASKS");
  if (torchrun) {
    e.source = "torchrun";
    const char* by = env_value(getenv_fn, "RANK") ? "RANK" : "WORLD_SIZE";
    e.rank = required_int(getenv_fn, "RANK", by);
    e.world_size = required_int(getenv_fn, "WORLD_SIZE", by);
    const char* local = env_value(getenv_fn, "LOCAL_RANK");
    e.local_rank = local ? parse_env_int("LOCAL_RANK", local) : e.rank;
    check_layout(e, "RANK", "WORLD_SIZE", local ? "LOCAL_RANK" : "RANK (as LOCAL_RANK)");
    read_master(getenv_fn, e);
    const char* agent = env_value(getenv_fn, "TORCHELASTIC_USE_AGENT_STORE");
    e.agent_store = agent && std::string(agent) == "True";
    if (const char* restarts = env_value(getenv_fn, "TORCHELASTIC_RESTART_COUNT"))
      e.restart_count = parse_env_int("TORCHELASTIC_RESTART_COUNT", restarts);
    // A manual launch without LOCAL_WORLD_SIZE is taken as one node (as LOCAL_RANK defaults to RANK).
    const char* lws = env_value(getenv_fn, "LOCAL_WORLD_SIZE");
    e.local_world_size = lws ? parse_env_int("LOCAL_WORLD_SIZE", lws) : e.world_size;
  } else if (slurm) {
    e.source = "slurm";
    const char* by = env_value(getenv_fn, "SLURM_PROCID") ? "SLURM_PROCID" : "SLURM_NTASKS";
    e.rank = required_int(getenv_fn, "SLURM_PROCID", by);
    e.world_size = required_int(getenv_fn, "SLURM_NTASKS", by);
    const char* local = env_value(getenv_fn, "SLURM_LOCALID");
    e.local_rank = local ? parse_env_int("SLURM_LOCALID", local) : 0;
    check_layout(e, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID");
    read_master(getenv_fn, e);
    // srun sets SLURM_STEP_TASKS_PER_NODE ("4" or "4(x2)"; the leading count is this node's in a
    // uniform job), sbatch --ntasks-per-node SLURM_NTASKS_PER_NODE; without either, assume one node.
    e.local_world_size = e.world_size;
    for (const char* name : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE"}) {
      if (const char* tpn = env_value(getenv_fn, name)) {
        std::string v(tpn);
        v = v.substr(0, v.find_first_not_of("0123456789"));
        if (v.empty())
          throw std::invalid_argument(cat("environment variable ", name, "='", tpn, "' is not a count"));
        e.local_world_size = parse_env_int(name, v.c_str());
        break;
      }
    }
  }
  if (e.local_world_size < 1 || e.local_world_size > e.world_size || e.local_rank >= e.local_world_size) {
    const char* name = e.source == "slurm" ? "SLURM_NTASKS_PER_NODE" : "LOCAL_WORLD_SIZE";
    throw std::invalid_argument(cat("environment variable ", name, "='", e.local_world_size, "' must be in [",
                                    e.local_rank + 1, ", ", e.world_size, "] (above the local rank ",
                                    e.local_rank, ", at most the world size)"));
  }
  return e;
}

torch::Device rank_device(const DistEnv& env, const torch::Device& requested, int64_t cuda_devices) {
  if (!requested.is_cuda() || requested.has_index()) return requested;
  if (env.world_size == 1) return torch::Device(torch::kCUDA, 0);
  if (env.local_rank >= cuda_devices)
    throw ParameterError("device", cat(" cuda: local rank ", env.local_rank, " (", env.source,
                                       ") has no GPU of its own: ", cuda_devices,
                                       " CUDA device(s) are visible; start at most one process per GPU"));
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
}

void set_current_device(const torch::Device& device) {
  if (!device.is_cuda()) return;
  SKD_CHECK(device.has_index(), "set_current_device needs an explicit CUDA index, got ", device);
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);
}

int threads_per_rank(int requested, const DistEnv& env, int cores) {
  if (requested > 0) return requested;
  return std::max(1, cores / std::max(1, env.local_world_size));
}

DistEnv dist_env_from_environment() {
  return dist_env_from([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace skd::distributed
