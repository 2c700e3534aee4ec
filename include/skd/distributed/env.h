// Where this process sits in a multi-process job (torchrun or SLURM environment variables), and what
// follows from it for this process alone: its device (one GPU per local rank) and its share of the
// node's CPU threads. No communication here: that is skd/distributed/communicator.h.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

namespace skd::distributed {

// Where this process sits in the job.
struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  // Processes of this job on this node: LOCAL_WORLD_SIZE (torchrun; a launch without it counts as
  // one node), SLURM_NTASKS_PER_NODE (srun; 1 when unset), 1 for a single process.
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single";  // "torchrun" (RANK/WORLD_SIZE/...), "slurm", or "single"
  // torchrun hosts the TCPStore itself at MASTER_ADDR:MASTER_PORT and says so with
  // TORCHELASTIC_USE_AGENT_STORE=True: every rank then joins it as a client, under the key prefix
  // "/worker/attempt_<TORCHELASTIC_RESTART_COUNT>" (as torch.distributed's env:// does).
  bool agent_store = false;
  int restart_count = 0;
};

// Reads the job layout from environment variables through `getenv_fn` (same contract as std::getenv:
// nullptr when unset; an empty value counts as unset), so tests can inject values:
// - torchrun style, taking precedence: RANK and WORLD_SIZE (both required once either is set),
//   LOCAL_RANK (defaults to RANK: right for a single-node manual launch), MASTER_ADDR, MASTER_PORT;
// - else SLURM (srun): SLURM_PROCID, SLURM_NTASKS (both required once either is set), SLURM_LOCALID
//   (defaults to 0). MASTER_ADDR / MASTER_PORT are still read when set, otherwise 127.0.0.1 / 29500:
//   a multi-node srun job must export MASTER_ADDR (e.g. the first host of
//   `scontrol show hostnames $SLURM_JOB_NODELIST`), and concurrent jobs sharing a node need distinct
//   MASTER_PORTs. Note that an sbatch script with --ntasks > 1 sets SLURM_PROCID / SLURM_NTASKS even
//   outside srun; a process started there without srun waits for peers that never come (bounded by
//   the rendezvous timeout);
// - nothing set: a single process.
// Malformed or inconsistent values (non-integer, negative rank, rank >= world size, world size < 1,
// local rank >= world size, port outside 1..65535) throw std::invalid_argument naming the variable
// and its value.
DistEnv dist_env_from(const std::function<const char*(const char*)>& getenv_fn);
DistEnv dist_env_from_environment();

// The device of this rank for a requested one: plain "cuda" in a multi-process job is
// cuda:LOCAL_RANK (one process per GPU, as torchrun/srun start them), "cuda" alone is cuda:0, and an
// explicit cuda:N or cpu is kept. Throws std::invalid_argument when the local rank has no GPU among
// `cuda_devices`.
torch::Device rank_device(const DistEnv& env, const torch::Device& requested, int64_t cuda_devices);
// Makes a CUDA `device` (with an index) this process's current device, so NCCL, the caching
// allocator and kernels launched without a device guard use it; nothing for CPU.
void set_current_device(const torch::Device& device);
// Intra-op CPU threads for one rank: `requested` when positive, else this node's cores shared among
// its ranks (at least 1), so that N ranks on a node do not each start a thread per core.
int threads_per_rank(int requested, const DistEnv& env, int cores);

}  // namespace skd::distributed
