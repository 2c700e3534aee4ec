// Multi-process data-parallel communication on torch's c10d: rendezvous over a TCPStore, and the few
// collectives the training loop and the proxy-data passes need (sum all-reduce, broadcast, barrier,
// bucketed gradient averaging) over Gloo (CPU) or NCCL (CUDA). A single-process job gets a
// Communicator whose collectives are identities, so no loop branches on "distributed or not".
//
// Failure policy: every network step is bounded by the timeout given to Communicator::create; a dead,
// missing or hung peer ends with a std::runtime_error naming this rank, the operation and the timeout,
// never with a hang. After such an error the Communicator is unusable (the job has lost a member).
//
// Works on LibTorch 1.13 and 2.x. The c10d headers stay inside communicator.cpp.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "skd/distributed/env.h"

namespace skd::distributed {

// The process-group backend. AUTO: NCCL for a CUDA device when this build has it, else Gloo.
enum class Backend { AUTO, GLOO, NCCL };
// The names of the backends (config key dist_backend; skd/core/options.h).
inline constexpr std::pair<const char*, Backend> kBackendNames[] = {
    {"auto", Backend::AUTO}, {"gloo", Backend::GLOO}, {"nccl", Backend::NCCL}};
// "auto", "gloo" or "nccl"; std::invalid_argument otherwise.
Backend parse_backend(const std::string& name);
const char* backend_name(Backend backend);

// The process group of one job. Not thread-safe: call the collectives from one thread, in the same
// order on every rank (the usual c10d contract).
class Communicator {
 public:
  // world_size 1 -> no process group, every collective is a no-op (identity).
  // backend: GLOO, NCCL or AUTO (NCCL when `device` is CUDA and this build has NCCL, else Gloo).
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
  static std::shared_ptr<Communicator> create(const DistEnv& env, Backend backend, torch::Device device,
                                              std::chrono::milliseconds timeout, bool group_of_one = false);
  // The same with the backend by name (parse_backend).
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

}  // namespace skd::distributed
