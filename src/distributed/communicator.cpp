// c10d process groups behind skd::distributed::Communicator: TCPStore rendezvous, Gloo/NCCL construction,
// staging copies for what a backend cannot take directly, bucketed gradient averaging, and the
// translation of every c10d failure into one std::runtime_error format.
//
// LibTorch 1.13 vs 2.x: ProcessGroupGloo/ProcessGroupNCCL derive from c10d::ProcessGroup in 1.13 and
// from c10d::Backend in 2.x (with the same constructor, Options::create and collective signatures), so
// the code holds them through `PgBase`; work handles are whatever `barrier()` returns
// (c10::intrusive_ptr<c10d::Work> in both). Only TCPStoreOptions fields present in both are set.
#include "skd/distributed/communicator.h"

#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"

// Which process groups this build has is decided by CMake (SKD_HAVE_GLOO: gloo headers found;
// SKD_HAVE_NCCL: SKD_WITH_NCCL with the wheel's own nccl.h), never by torch's USE_C10D_* macros: a CUDA
// wheel exports USE_C10D_NCCL (and USE_C10D_GLOO without shipping gloo's headers) to every consumer.
// torch's own headers still guard their contents with USE_C10D_*, so those follow our choice here.
#ifdef SKD_HAVE_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#else
#undef USE_C10D_GLOO
#endif
#ifdef SKD_HAVE_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#else
#undef USE_C10D_NCCL
#endif

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif
#ifdef SKD_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef SKD_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace skd::distributed {

namespace {

#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif
using WorkPtr = decltype(std::declval<PgBase&>().barrier());

// ---- helpers -------------------------------------------------------------------------------------

std::string describe(const std::exception& e) {
  std::string s;
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    s = c10->what_without_backtrace();
  } else {
    s = e.what();
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string seconds(std::chrono::milliseconds t) {
  return cat(static_cast<double>(t.count()) / 1000.0);
}

void check_layout(const DistEnv& env) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size)
    throw std::invalid_argument(
        cat("distributed: rank ", env.rank, " / world size ", env.world_size, " is not a valid layout"));
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

#ifdef SKD_HAVE_GLOO
// Where Gloo listens: GLOO_SOCKET_IFNAME like torch; loopback when the master is local (then every rank
// is on this machine); else torch's default (the address this host's name resolves to).
std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices(const std::string& master_addr) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  const char* ifnames = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifnames && *ifnames) {
    std::string list(ifnames);
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      const std::string name = list.substr(start, comma - start);
      if (!name.empty()) devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      start = comma + 1;
    }
  }
  if (devices.empty()) {
    if (is_loopback(master_addr)) {
      devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
          master_addr == "localhost" ? std::string("127.0.0.1") : master_addr));
    } else {
      devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
  }
  return devices;
}
#endif

#ifdef SKD_HAVE_NCCL
// Blocking waits make WorkNCCL::wait() throw on timeout instead of leaving it to the watchdog (which
// would abort the process or let the caller hang). Respect an explicit user setting.
void enable_nccl_blocking_wait() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  const char* var = "TORCH_NCCL_BLOCKING_WAIT";
#else
  const char* var = "NCCL_BLOCKING_WAIT";
#endif
  if (!std::getenv("TORCH_NCCL_BLOCKING_WAIT") && !std::getenv("NCCL_BLOCKING_WAIT")) setenv(var, "1", 0);
}
#endif

}  // namespace

// ---- Communicator --------------------------------------------------------------------------------

struct Communicator::Impl {
  int rank = 0, world = 1;
  std::string backend = "none";
  torch::Device device{torch::kCPU};
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;  // declared before pg: destroyed after it
  c10::intrusive_ptr<PgBase> pg;
  std::string broken;  // set by the first failed collective; later calls fail fast with it

  // attach_gradient_hooks state. Hooks run on autograd's thread while the caller waits in backward().
  struct HookBucket {
    std::vector<size_t> members;
    std::vector<int64_t> offsets;
    torch::Tensor flat;  // on the wire's device and dtype
    size_t filled = 0;
    WorkPtr work;
  };
  std::vector<torch::Tensor> hook_params;
  std::vector<std::pair<size_t, size_t>> hook_slot;  // param -> (bucket, member index)
  std::vector<HookBucket> hook_buckets;
  std::vector<char> hook_done;
  std::vector<unsigned> hook_ids;
  bool hook_armed = false;
  std::mutex hook_mutex;

  void launch(HookBucket& b) {
    if (b.flat.is_floating_point()) b.flat.div_(world);
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    opts.timeout = timeout;
    std::vector<at::Tensor> one{b.flat};
    b.work = pg->allreduce(one, opts);
  }

  std::string where() const { return cat("distributed: rank ", rank, "/", world, ": "); }

  // A NCCL group must be shut down (or, after a failure, aborted) before it is destroyed: its
  // destructor otherwise waits on, or warns about, communicators still alive (torch >= 2.4 has
  // Backend::shutdown). The store outlives the group (member order).
  ~Impl() {
#if defined(SKD_HAVE_NCCL) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
    if (pg && backend == "nccl") {
      try {
        if (broken.empty())
          pg->shutdown();
        else
          pg->abort();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%snccl shutdown failed: %s\n", where().c_str(), describe(e).c_str());
      }
    }
#endif
    pg.reset();
  }

  void check_usable(const char* op) const {
    if (!broken.empty())
      throw std::runtime_error(cat(where(), op, " refused: the communicator failed earlier (", broken, ")"));
  }

  [[noreturn]] void fail(const char* op, const std::exception& e) {
    broken = cat(op, " failed");
    throw std::runtime_error(cat(where(), op, " failed (a peer may have died or the ", seconds(timeout),
                                 " s timeout passed): ", describe(e)));
  }

  // The dtype a collective runs in: the tensor's own when the backend takes it, else a wider one.
  torch::ScalarType wire_dtype(torch::ScalarType t, const char* op) const {
    switch (t) {
      case torch::kFloat:
      case torch::kDouble:
      case torch::kHalf:
      case torch::kChar:
      case torch::kByte:
      case torch::kInt:
      case torch::kLong:
        return t;
      case torch::kBFloat16:
        return backend == "nccl" ? t : torch::kFloat;
      case torch::kShort:
      case torch::kBool:
        return torch::kInt;
      default:
        throw std::invalid_argument(cat(where(), op, ": unsupported dtype ", t));
    }
  }

  torch::Device wire_device(const torch::Tensor& t) const {
    if (backend == "nccl") return t.is_cuda() ? t.device() : device;
    return torch::Device(torch::kCPU);
  }

  bool needs_staging(const torch::Tensor& t, const char* op) const {
    return wire_dtype(t.scalar_type(), op) != t.scalar_type() || wire_device(t) != t.device() ||
           !t.is_contiguous();
  }

  torch::Tensor staged(const torch::Tensor& t, const char* op) const {
    if (!needs_staging(t, op)) return t;
    return t.to(wire_device(t), wire_dtype(t.scalar_type(), op)).contiguous();
  }

  void check_tensors(const std::vector<torch::Tensor>& tensors, const char* op) const {
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      if (!t.defined()) throw std::invalid_argument(cat(where(), op, ": tensor ", i, " is undefined"));
      if (t.is_sparse()) throw std::invalid_argument(cat(where(), op, ": tensor ", i, " is sparse"));
      wire_dtype(t.scalar_type(), op);  // throws for unsupported dtypes
    }
  }

  void wait_all(std::vector<WorkPtr>& works) const {
    for (auto& w : works) w->wait(timeout);
  }

  // Issues `issue(tensor)` for every tensor (through a staging copy where needed), then waits on all
  // and copies staged results back.
  template <typename Issue>
  void run_each(const char* op, std::vector<torch::Tensor>& tensors, Issue issue) {
    check_usable(op);
    check_tensors(tensors, op);
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> wire(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) wire[i] = staged(tensors[i], op);
    try {
      std::vector<WorkPtr> works;
      works.reserve(wire.size());
      for (auto& w : wire) {
        std::vector<at::Tensor> one{w};
        works.push_back(issue(one));
      }
      wait_all(works);
    } catch (const std::exception& e) {
      fail(op, e);
    }
    for (size_t i = 0; i < tensors.size(); ++i)
      if (!wire[i].is_same(tensors[i])) tensors[i].copy_(wire[i]);
  }
};

Communicator::Communicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Communicator::~Communicator() = default;

bool Communicator::gloo_available() {
#ifdef SKD_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

bool Communicator::nccl_available() {
#ifdef SKD_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

Backend parse_backend(const std::string& name) {
  if (const auto b = find_enum(name, kBackendNames)) return *b;
  throw std::invalid_argument(cat("distributed: backend '", name, "': expected gloo, nccl or auto"));
}

const char* backend_name(Backend backend) {
  return enum_name(backend, kBackendNames);
}

std::shared_ptr<Communicator> Communicator::create(const DistEnv& env, const std::string& backend,
                                                   torch::Device device, std::chrono::milliseconds timeout,
                                                   bool group_of_one) {
  check_layout(env);
  return create(env, parse_backend(backend), device, timeout, group_of_one);
}

std::shared_ptr<Communicator> Communicator::create(const DistEnv& env, Backend backend, torch::Device device,
                                                   std::chrono::milliseconds timeout, bool group_of_one) {
  check_layout(env);
  if (timeout.count() <= 0)
    throw std::invalid_argument(cat("distributed: timeout must be positive, got ", timeout.count(), " ms"));
  auto impl = std::make_unique<Impl>();
  impl->rank = env.rank;
  impl->world = env.world_size;
  impl->device = device;
  impl->timeout = timeout;
  if (env.world_size == 1 && !group_of_one)
    return std::shared_ptr<Communicator>(new Communicator(std::move(impl)));

  // auto: NCCL for CUDA when this build has it, else Gloo (which also moves CUDA tensors, slower).
  const std::string chosen = backend == Backend::AUTO
                                 ? (device.is_cuda() && nccl_available() ? "nccl" : "gloo")
                                 : backend_name(backend);
  if (chosen == "nccl" && !nccl_available())
    throw std::runtime_error(
        "distributed: backend nccl was asked for but this build has no NCCL support "
        "(a CPU-only LibTorch); use the gloo backend");
  if (chosen == "nccl" && !device.is_cuda())
    throw std::invalid_argument(cat("distributed: backend nccl needs a CUDA device, got ", device));
  if (chosen == "gloo" && !gloo_available())
    throw std::runtime_error("distributed: backend gloo was asked for but this build has no Gloo support");
  if (env.master_port < 1 || env.master_port > 65535)
    throw std::invalid_argument(cat("distributed: master port ", env.master_port, " is not in 1..65535"));
  impl->backend = chosen;

  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_store;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    if (env.agent_store)
      impl->store =
          c10::make_intrusive<c10d::PrefixStore>(cat("/worker/attempt_", env.restart_count), impl->store);
    if (chosen == "gloo") {
#ifdef SKD_HAVE_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      opts->devices = gloo_devices(env.master_addr);
      impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, opts);
#endif
    } else {
#ifdef SKD_HAVE_NCCL
      enable_nccl_blocking_wait();
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      impl->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, opts);
#endif
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(cat("distributed: rank ", env.rank, "/", env.world_size, ": rendezvous (",
                                 chosen, ") at ", env.master_addr, ":", env.master_port,
                                 " failed (a peer may be missing or may have died, or the ", seconds(timeout),
                                 " s timeout passed; check MASTER_ADDR/MASTER_PORT, and GLOO_SOCKET_IFNAME "
                                 "for multi-node gloo): ",
                                 describe(e)));
  }
  SKD_CHECK(impl->pg, "no process group was created for backend ", chosen);
  return std::shared_ptr<Communicator>(new Communicator(std::move(impl)));
}

int Communicator::rank() const {
  return impl_->rank;
}
int Communicator::world_size() const {
  return impl_->world;
}
const std::string& Communicator::backend() const {
  return impl_->backend;
}
std::chrono::milliseconds Communicator::timeout() const {
  return impl_->timeout;
}

void Communicator::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  if (!impl_->pg) return;
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = impl_->timeout;
  auto& pg = impl_->pg;
  impl_->run_each("all_reduce", tensors,
                  [&](std::vector<at::Tensor>& one) { return pg->allreduce(one, opts); });
}

void Communicator::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  if (root < 0 || root >= impl_->world)
    throw std::invalid_argument(cat(impl_->where(), "broadcast: root ", root, " is not a rank"));
  if (!impl_->pg) return;
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  opts.rootTensor = 0;
  opts.timeout = impl_->timeout;
  auto& pg = impl_->pg;
  impl_->run_each("broadcast", tensors,
                  [&](std::vector<at::Tensor>& one) { return pg->broadcast(one, opts); });
}

void Communicator::barrier() {
  if (!impl_->pg) return;
  if (impl_->backend == "nccl") {
    // NCCL's own barrier guesses the GPU from the rank; a one-element all-reduce on our device does not.
    std::vector<torch::Tensor> one{torch::zeros({1}, torch::TensorOptions().device(impl_->device))};
    all_reduce_sum(one);
    try {
      (void)one[0].item<float>();
    } catch (const std::exception& e) {
      impl_->fail("barrier", e);
    }
    return;
  }
  impl_->check_usable("barrier");
  try {
    c10d::BarrierOptions opts;
    opts.timeout = impl_->timeout;
    std::vector<WorkPtr> works{impl_->pg->barrier(opts)};
    impl_->wait_all(works);
  } catch (const std::exception& e) {
    impl_->fail("barrier", e);
  }
}

void Communicator::average_gradients(const std::vector<torch::Tensor>& params, int64_t bucket_bytes) {
  if (!impl_->pg) return;
  const char* op = "average_gradients";
  impl_->check_usable(op);
  if (bucket_bytes <= 0)
    throw std::invalid_argument(
        cat(impl_->where(), op, ": bucket_bytes must be positive, got ", bucket_bytes));
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    if (!p.defined())
      throw std::invalid_argument(cat(impl_->where(), op, ": parameter ", i, " is undefined"));
    const auto& g = p.grad();
    if (g.defined() && g.is_sparse())
      throw std::invalid_argument(cat(impl_->where(), op, ": parameter ", i, " has a sparse grad"));
    impl_->wire_dtype(g.defined() ? g.scalar_type() : p.scalar_type(), op);
  }
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& p : params) {
    auto& g = p.mutable_grad();
    if (!g.defined()) g = torch::zeros_like(p, torch::MemoryFormat::Contiguous);
    grads.push_back(g);
  }

  // Group by (dtype, device) in order of first appearance, then cut each group into buckets.
  struct Bucket {
    std::vector<size_t> members;
    int64_t bytes = 0;
    torch::Tensor flat;
    bool direct = false;  // flat is a view of the single member's grad: nothing to copy back
  };
  std::vector<std::pair<std::tuple<torch::ScalarType, torch::Device>, std::vector<size_t>>> groups;
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto key = std::make_tuple(grads[i].scalar_type(), grads[i].device());
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
    if (it == groups.end()) {
      groups.push_back({key, {}});
      it = std::prev(groups.end());
    }
    it->second.push_back(i);
  }
  std::vector<Bucket> buckets;
  for (const auto& group : groups) {
    Bucket current;
    for (size_t i : group.second) {
      const int64_t bytes = grads[i].numel() * static_cast<int64_t>(grads[i].element_size());
      if (!current.members.empty() && current.bytes + bytes > bucket_bytes) {
        buckets.push_back(std::move(current));
        current = Bucket();
      }
      current.members.push_back(i);
      current.bytes += bytes;
    }
    if (!current.members.empty()) buckets.push_back(std::move(current));
  }

  const auto world = impl_->world;
  for (auto& b : buckets) {
    const auto& first = grads[b.members.front()];
    if (b.members.size() == 1 && !impl_->needs_staging(first, op)) {
      b.flat = first.view({-1});
      b.direct = true;
    } else {
      std::vector<torch::Tensor> pieces;
      pieces.reserve(b.members.size());
      for (size_t i : b.members) pieces.push_back(grads[i].reshape({-1}));
      b.flat = impl_->staged(torch::cat(pieces), op);
    }
    // Divide before summing (like DDP) so half precision cannot overflow in the sum.
    if (b.flat.is_floating_point()) b.flat.div_(world);
  }
  try {
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    opts.timeout = impl_->timeout;
    std::vector<WorkPtr> works;
    works.reserve(buckets.size());
    for (auto& b : buckets) {
      std::vector<at::Tensor> one{b.flat};
      works.push_back(impl_->pg->allreduce(one, opts));
    }
    impl_->wait_all(works);
  } catch (const std::exception& e) {
    impl_->fail(op, e);
  }
  for (auto& b : buckets) {
    if (!b.flat.is_floating_point()) b.flat.div_(world, "trunc");
    if (b.direct) continue;
    int64_t offset = 0;
    for (size_t i : b.members) {
      auto& g = grads[i];
      g.copy_(b.flat.narrow(0, offset, g.numel()).view(g.sizes()));
      offset += g.numel();
    }
  }
}

void Communicator::attach_gradient_hooks(const std::vector<torch::Tensor>& params, int64_t bucket_bytes) {
  auto& im = *impl_;
  if (!im.pg) return;
  const char* op = "attach_gradient_hooks";
  if (!im.hook_params.empty()) throw std::logic_error(cat(im.where(), op, ": hooks are already attached"));
  if (bucket_bytes <= 0)
    throw std::invalid_argument(cat(im.where(), op, ": bucket_bytes must be positive, got ", bucket_bytes));
  im.hook_params = params;
  im.hook_slot.assign(params.size(), {0, 0});
  im.hook_done.assign(params.size(), 0);
  // Buckets in reverse parameter order, one (wire dtype, device) per bucket.
  using Key = std::tuple<torch::ScalarType, torch::Device>;
  std::vector<Key> keys, open_keys;  // keys: per bucket; open_keys[j]: the key of open bucket open_idx[j]
  std::vector<size_t> open_idx;
  std::vector<int64_t> bytes;
  for (size_t r = params.size(); r-- > 0;) {
    const auto& p = params[r];
    if (!p.defined() || !p.requires_grad())
      throw std::invalid_argument(cat(im.where(), op, ": parameter ", r, " is undefined or needs no grad"));
    const Key key{im.wire_dtype(p.scalar_type(), op), im.wire_device(p)};
    const int64_t nb = p.numel() * static_cast<int64_t>(p.element_size());
    size_t j = static_cast<size_t>(std::find(open_keys.begin(), open_keys.end(), key) - open_keys.begin());
    const bool fresh = j == open_keys.size();
    if (fresh || bytes[open_idx[j]] + nb > bucket_bytes) {
      im.hook_buckets.emplace_back();
      keys.push_back(key);
      bytes.push_back(0);
      if (fresh) {
        open_keys.push_back(key);
        open_idx.push_back(im.hook_buckets.size() - 1);
      } else {
        open_idx[j] = im.hook_buckets.size() - 1;
      }
    }
    const size_t bi = open_idx[j];
    auto& bucket = im.hook_buckets[bi];
    im.hook_slot[r] = {bi, bucket.members.size()};
    bucket.offsets.push_back(
        bucket.members.empty() ? 0 : bucket.offsets.back() + params[bucket.members.back()].numel());
    bucket.members.push_back(r);
    bytes[bi] += nb;
  }
  for (size_t k = 0; k < im.hook_buckets.size(); ++k) {
    auto& b = im.hook_buckets[k];
    const int64_t n = b.offsets.back() + params[b.members.back()].numel();
    b.flat =
        torch::zeros({n}, torch::TensorOptions().dtype(std::get<0>(keys[k])).device(std::get<1>(keys[k])));
  }
  Impl* impl = impl_.get();
  for (size_t i = 0; i < params.size(); ++i) {
    auto p = params[i];
    im.hook_ids.push_back(p.register_hook([impl, i](torch::Tensor g) {
      std::lock_guard<std::mutex> lock(impl->hook_mutex);
      if (!impl->hook_armed || impl->hook_done[i]) return;
      torch::NoGradGuard no_grad;
      const auto& param = impl->hook_params[i];
      const auto [bi, mi] = impl->hook_slot[i];
      auto& b = impl->hook_buckets[bi];
      auto slot = b.flat.narrow(0, b.offsets[mi], param.numel());
      const auto& prev = param.grad();
      slot.copy_(prev.defined() ? (prev + g).reshape({-1}) : g.reshape({-1}));
      impl->hook_done[i] = 1;
      if (++b.filled == b.members.size()) impl->launch(b);
    }));
  }
}

void Communicator::detach_gradient_hooks() {
  auto& im = *impl_;
  for (size_t i = 0; i < im.hook_ids.size(); ++i) im.hook_params[i].remove_hook(im.hook_ids[i]);
  im.hook_ids.clear();
  im.hook_params.clear();
  im.hook_slot.clear();
  im.hook_buckets.clear();
  im.hook_done.clear();
  im.hook_armed = false;
}

void Communicator::arm_gradient_hooks() {
  auto& im = *impl_;
  if (im.hook_params.empty()) return;
  im.check_usable("arm_gradient_hooks");
  std::lock_guard<std::mutex> lock(im.hook_mutex);
  im.hook_armed = true;
}

void Communicator::finish_gradient_average() {
  auto& im = *impl_;
  if (im.hook_params.empty()) return;
  const char* op = "average_gradients";
  std::lock_guard<std::mutex> lock(im.hook_mutex);
  if (!im.hook_armed) throw std::logic_error(cat(im.where(), op, ": finish without arm_gradient_hooks()"));
  torch::NoGradGuard no_grad;
  try {
    for (auto& b : im.hook_buckets) {
      if (b.work) continue;
      for (size_t k = 0; k < b.members.size(); ++k) {
        const size_t i = b.members[k];
        if (im.hook_done[i]) continue;
        auto slot = b.flat.narrow(0, b.offsets[k], im.hook_params[i].numel());
        const auto& g = im.hook_params[i].grad();
        if (g.defined())
          slot.copy_(g.reshape({-1}));
        else
          slot.zero_();
      }
      im.launch(b);
    }
    for (auto& b : im.hook_buckets) b.work->wait(im.timeout);
  } catch (const std::exception& e) {
    im.hook_armed = false;
    im.fail(op, e);
  }
  for (auto& b : im.hook_buckets) {
    if (!b.flat.is_floating_point()) b.flat.div_(im.world, "trunc");
    for (size_t k = 0; k < b.members.size(); ++k) {
      auto& p = im.hook_params[b.members[k]];
      auto& g = p.mutable_grad();
      const auto avg = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      if (!g.defined()) g = torch::empty_like(p, torch::MemoryFormat::Contiguous);
      g.copy_(avg);
    }
    b.work = WorkPtr();
    b.filled = 0;
  }
  std::fill(im.hook_done.begin(), im.hook_done.end(), 0);
  im.hook_armed = false;
}

}  // namespace skd::distributed
