// Multi-process data-parallel communication on torch's c10d: where this process sits in the job
// (torchrun or SLURM environment variables), rendezvous over a TCPStore, and the few collectives the
// training loop needs (sum all-reduce, broadcast, barrier, bucketed gradient averaging) over Gloo (CPU)
// or NCCL (CUDA). A single-process job gets a Communicator whose collectives are identities, so the
// training loop never branches on "distributed or not".
//
// Failure policy: every network step is bounded by the timeout given to Communicator::create; a dead,
// missing or hung peer ends with a std::runtime_error naming this rank, the operation and the timeout,
// never with a hang. After such an error the Communicator is unusable (the job has lost a member).
//
// Works on LibTorch 1.13 and 2.x. The c10d headers stay inside distributed.cpp.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace skd::train {

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

// The process group of one job. Not thread-safe: call the collectives from one thread, in the same
// order on every rank (the usual c10d contract).
class Communicator {
 public:
  // world_size 1 -> no process group, every collective is a no-op (identity).
  // backend: "gloo", "nccl" or "auto" (nccl when `device` is CUDA, else gloo).
  // Rendezvous over a c10d::TCPStore at master_addr:master_port (rank 0 is the server), then the
  // process group. `timeout` bounds the rendezvous and every collective.
  // Gloo binds to 127.0.0.1 when master_addr is a loopback address (all ranks on this machine), to
  // the interface(s) named by GLOO_SOCKET_IFNAME (comma-separated) when set, else to the address this
  // host's name resolves to (torch's default; falls back to loopback).
  // NCCL (CUDA builds of LibTorch only) is switched to blocking waits ((TORCH_)NCCL_BLOCKING_WAIT=1
  // unless the variable is already set) so that a timeout surfaces as an exception here.
  // Throws std::invalid_argument for a bad env/backend/timeout, std::runtime_error when the rendezvous
  // fails or the backend is not compiled into this LibTorch.
  // `group_of_one`: build the process group even for world size 1 (tests of a backend on one GPU).
  static std::shared_ptr<Communicator> create(const DistEnv& env, const std::string& backend,
                                              torch::Device device, std::chrono::milliseconds timeout,
                                              bool group_of_one = false);
  // Whether this LibTorch build has the Gloo / NCCL process groups.
  static bool gloo_available();
  static bool nccl_available();

  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int world_size() const;
  bool is_main() const { return rank() == 0; }
  // "gloo", "nccl", or "none" for a single process.
  const std::string& backend() const;
  std::chrono::milliseconds timeout() const;

  // In place, element-wise sum over ranks; any floating or integer dtype (dtypes the backend lacks,
  // non-contiguous tensors and tensors on the wrong device for the backend go through a staging
  // copy). All reductions are issued before waiting on any.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);
  // In place: every rank ends with root's values. Shapes and dtypes must match across ranks.
  void broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  void barrier();
  // Averages the .grad of `params` across ranks (sum / world_size), packing them into flat buffers
  // ("buckets") of at most ~bucket_bytes (a larger grad gets a bucket of its own), grouped by dtype
  // and device, issuing all bucket all-reduces before waiting on any. Params with undefined grad are
  // treated as zero grads (a zero grad tensor is created) so every rank sends the same layout; the
  // parameter list (distinct tensors) must be the same, in the same order, on every rank. Sparse grads are
  // rejected (std::invalid_argument). world_size 1: no-op.
  void average_gradients(const std::vector<torch::Tensor>& params, int64_t bucket_bytes = 25 << 20);

  // The same average, overlapped with backward. attach_gradient_hooks registers a hook on every
  // parameter (once; buckets of ~bucket_bytes in reverse parameter order, the order in which backward
  // produces grads). After arm_gradient_hooks(), the next backward's hooks copy each parameter's
  // final grad (what .grad will hold: the earlier backwards' sum plus this one) into its bucket and
  // start the bucket's all-reduce as soon as the bucket is complete, while backward goes on.
  // finish_gradient_average() (after that backward) starts the buckets still open (parameters that got
  // no grad count their current .grad, or zero), waits, and writes the averages into .grad. The
  // result is average_gradients' (same buckets' sums, division before the sum); world size 1 and no
  // hooks attached: no-ops.
  void attach_gradient_hooks(const std::vector<torch::Tensor>& params, int64_t bucket_bytes = 25 << 20);
  void arm_gradient_hooks();
  void finish_gradient_average();
  // Removes the hooks (before the parameters outlive this use, or to attach to others).
  void detach_gradient_hooks();

 private:
  struct Impl;
  explicit Communicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skd::train
