// Distributed communication: torchrun/SLURM environment parsing, single-process identities, argument
// checks, and real two-process Gloo runs on 127.0.0.1 (this binary re-executes itself as rank 1 with
// posix_spawn), including a peer that dies after the rendezvous and one that never comes.
#include "skd/distributed/communicator.h"
#include "skd/models/checkpoint.h"
#include "skd/train/trainer.h"
#include "test_util.h"
#include "../train/tiny_training.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace skd::distributed;
using namespace skd::train;
using namespace std::chrono_literals;

namespace {

using Vars = std::map<std::string, std::string>;

DistEnv parse(const Vars& vars) {
  return dist_env_from([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

// Expects std::invalid_argument whose message contains every needle.
void expect_invalid(const Vars& vars, const std::vector<std::string>& needles) {
  try {
    parse(vars);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// ---- the rank-1 process ------------------------------------------------------------------------

constexpr const char* kRoleVar = "SKD_DIST_TEST_ROLE";
constexpr int kDeadPeerExitCode = 7;

using skd::test::free_port;

// This test binary, re-executed as rank 1 running only `DistributedWorker.Rank1` in `role`. The child is
// always reaped: the destructor kills it (by its pid) when it was not waited for.
class Rank1Process {
 public:
  Rank1Process(const std::string& role, int port) {
    char exe[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) throw std::runtime_error("readlink(/proc/self/exe) failed");
    exe[n] = '\0';
    std::vector<std::string> args{exe, "--gtest_filter=DistributedWorker.Rank1"};
    // The parent's environment minus what would change the child's role, output file or test shard.
    const std::vector<std::string> drop{"RANK=",
                                        "WORLD_SIZE=",
                                        "LOCAL_RANK=",
                                        "MASTER_ADDR=",
                                        "MASTER_PORT=",
                                        "GTEST_OUTPUT=",
                                        "GTEST_SHARD_INDEX=",
                                        "GTEST_TOTAL_SHARDS=",
                                        "GTEST_FILTER=",
                                        std::string(kRoleVar) + "="};
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      const std::string kv(*e);
      bool keep = true;
      for (const auto& d : drop) keep = keep && kv.rfind(d, 0) != 0;
      if (keep) env.push_back(kv);
    }
    for (const auto& kv : {std::string("RANK=1"), std::string("WORLD_SIZE=2"), std::string("LOCAL_RANK=1"),
                           std::string("MASTER_ADDR=127.0.0.1"), "MASTER_PORT=" + std::to_string(port),
                           std::string(kRoleVar) + "=" + role, std::string("OMP_WAIT_POLICY=PASSIVE")})
      env.push_back(kv);
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = posix_spawn(&pid_, exe, nullptr, nullptr, argv.data(), envp.data());
    if (rc != 0) throw std::runtime_error(std::string("posix_spawn failed: ") + std::strerror(rc));
  }

  ~Rank1Process() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }

  // The exit code, or -1 (after killing it) when the child did not exit normally within `limit`.
  int wait(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (true) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (r < 0 || std::chrono::steady_clock::now() > deadline) return -1;  // destructor kills and reaps
      std::this_thread::sleep_for(20ms);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
};

DistEnv rank0_env(int port) {
  DistEnv env;
  env.rank = 0;
  env.world_size = 2;
  env.local_rank = 0;
  env.master_addr = "127.0.0.1";
  env.master_port = port;
  env.source = "test";
  return env;
}

// Mixup and drop-path draw per rank, so they are off here; the per-example augmentation is
// seeded by dataset index and stays on, as do clipping and EMA.
TrainConfig distributed_train_config(int64_t batch) {
  auto c = skd::test::tiny_config("");
  c.epochs = 2;
  c.batch_size = batch;
  c.mixup = c.cutmix = 0;
  c.drop_path = 0;
  return c;
}

// Grad of parameter k on `rank` (undefined where the script says so).
torch::Tensor grad_of(const std::vector<int64_t>& shape, size_t k, int rank, torch::ScalarType dtype) {
  const int64_t n = torch::tensor(shape).prod().item<int64_t>();
  return (torch::arange(n, torch::kDouble).reshape(shape) * static_cast<double>(k + 1) + 100.0 * rank +
          0.25 * static_cast<double>(k))
      .to(dtype);
}

// The same sequence of collectives on both ranks (EXPECTs only, so both ranks always issue all of them).
void collectives_script(Communicator& c) {
  const int r = c.rank();
  EXPECT_EQ(c.world_size(), 2);
  EXPECT_EQ(c.backend(), "gloo");
  EXPECT_EQ(c.is_main(), r == 0);

  // all_reduce_sum: several dtypes, a non-contiguous tensor, dtypes Gloo lacks (staged).
  std::vector<torch::Tensor> ts{
      torch::tensor({1.0f, 2.0f}) * static_cast<float>(r + 1),
      torch::arange(6, torch::kLong).reshape({2, 3}) + 10 * r,
      (torch::arange(6, torch::kDouble).reshape({2, 3}) * (r + 1)).t(),
      torch::full({3}, r + 1, torch::kShort),
      torch::full({2}, 0.5 * (r + 1), torch::kBFloat16),
      torch::full({4}, r, torch::kInt),
  };
  const void* float_ptr = ts[0].data_ptr();
  const auto noncontig = ts[2];
  c.all_reduce_sum(ts);
  EXPECT_EQ(ts[0].data_ptr(), float_ptr);
  EXPECT_TRUE(torch::equal(ts[0], torch::tensor({3.0f, 6.0f})));
  EXPECT_TRUE(torch::equal(ts[1], torch::arange(6, torch::kLong).reshape({2, 3}) * 2 + 10));
  EXPECT_TRUE(torch::equal(noncontig, (torch::arange(6, torch::kDouble).reshape({2, 3}) * 3).t()));
  EXPECT_FALSE(noncontig.is_contiguous());
  EXPECT_TRUE(torch::equal(ts[3], torch::full({3}, 3, torch::kShort)));
  EXPECT_TRUE(torch::equal(ts[4], torch::full({2}, 1.5, torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(ts[5], torch::full({4}, 1, torch::kInt)));

  // broadcast from rank 1, then from rank 0.
  std::vector<torch::Tensor> b{
      r == 1 ? torch::arange(5, torch::kFloat) : torch::zeros({5}),
      r == 1 ? torch::full({2, 2}, 7, torch::kInt) : torch::zeros({2, 2}, torch::kInt)};
  c.broadcast(b, 1);
  EXPECT_TRUE(torch::equal(b[0], torch::arange(5, torch::kFloat)));
  EXPECT_TRUE(torch::equal(b[1], torch::full({2, 2}, 7, torch::kInt)));
  std::vector<torch::Tensor> b0{torch::full({3}, 100.0 + r, torch::kDouble)};
  c.broadcast(b0, 0);
  EXPECT_TRUE(torch::equal(b0[0], torch::full({3}, 100.0, torch::kDouble)));

  // average_gradients: mixed shapes and dtypes, a 32-byte bucket limit (several buckets, some packing
  // two small grads), a grad undefined on rank 0 only and one undefined on both ranks.
  struct P {
    std::vector<int64_t> shape;
    torch::ScalarType dtype;
    bool undefined_on_rank0, undefined_on_rank1;
  };
  const std::vector<P> specs{{{3, 4}, torch::kFloat, false, false}, {{2}, torch::kFloat, false, false},
                             {{3}, torch::kFloat, false, false},    {{2, 2, 2}, torch::kFloat, true, false},
                             {{4}, torch::kDouble, false, false},   {{1}, torch::kDouble, false, false},
                             {{5}, torch::kFloat, true, true},      {{7}, torch::kFloat, false, false}};
  std::vector<torch::Tensor> params;
  for (size_t k = 0; k < specs.size(); ++k) {
    const auto& s = specs[k];
    auto p = torch::zeros(s.shape, torch::TensorOptions().dtype(s.dtype).requires_grad(true));
    const bool undefined = r == 0 ? s.undefined_on_rank0 : s.undefined_on_rank1;
    if (!undefined) p.mutable_grad() = grad_of(s.shape, k, r, s.dtype);
    params.push_back(p);
  }
  c.average_gradients(params, 32);
  for (size_t k = 0; k < specs.size(); ++k) {
    const auto& s = specs[k];
    auto sum = torch::zeros(s.shape, s.dtype);
    if (!s.undefined_on_rank0) sum += grad_of(s.shape, k, 0, s.dtype);
    if (!s.undefined_on_rank1) sum += grad_of(s.shape, k, 1, s.dtype);
    const auto& g = params[k].grad();
    ASSERT_TRUE(g.defined()) << "param " << k;
    EXPECT_EQ(g.scalar_type(), s.dtype) << "param " << k;
    EXPECT_EQ(g.sizes(), params[k].sizes()) << "param " << k;
    EXPECT_TRUE(torch::allclose(g, sum / 2)) << "param " << k << "\n" << g << "\n" << sum / 2;
  }

  // The average overlapped with backward: hooks on three parameters (16-byte buckets, so buckets
  // start while backward runs), two backwards per step of which only the last is armed (its hooks see
  // the earlier grad plus their own), a parameter used only in the first backward and one in none.
  // Two steps, so the hooks are re-armed after a finish.
  auto a = torch::zeros({3}, torch::requires_grad()), b2 = torch::zeros({2}, torch::requires_grad()),
       unused_last = torch::zeros({2}, torch::requires_grad()), never = torch::zeros({1}, torch::requires_grad());
  std::vector<torch::Tensor> hp{a, b2, unused_last, never};
  c.attach_gradient_hooks(hp, 16);
  for (int step = 0; step < 2; ++step) {
    for (auto& t : hp) t.mutable_grad() = torch::Tensor();
    const double m = (r + 1) * (step + 1);
    ((a * torch::tensor({1.0f, 2.0f, 3.0f})).sum() * m + b2.sum() + unused_last.sum() * 5).backward();  // not armed
    c.arm_gradient_hooks();
    ((a * a.detach().add(1)).sum() * m + (b2 * 4).sum()).backward();
    c.finish_gradient_average();
    auto expect = [&](int rank) {
      const double mr = (rank + 1) * (step + 1);
      return std::vector<torch::Tensor>{torch::tensor({2.0f, 3.0f, 4.0f}) * static_cast<float>(mr),
                                        torch::full({2}, 5.0), torch::full({2}, 5.0), torch::zeros({1})};
    };
    const auto e0 = expect(0), e1 = expect(1);
    for (size_t k = 0; k < hp.size(); ++k) {
      ASSERT_TRUE(hp[k].grad().defined()) << "hooked param " << k;
      EXPECT_TRUE(torch::allclose(hp[k].grad(), (e0[k] + e1[k]) / 2)) << "hooked param " << k << " step " << step
                                                                     << "\n" << hp[k].grad();
    }
  }
  c.detach_gradient_hooks();
  (a.sum() * 2).backward();  // no hook left: the local grad is added to the last average
  EXPECT_TRUE(torch::allclose(a.grad(), torch::tensor({2.0f, 3.0f, 4.0f}) * 3.0f + 2.0f)) << a.grad();

  c.barrier();
}

}  // namespace

// ---- environment ---------------------------------------------------------------------------------

TEST(DistEnv, NothingSetIsASingleProcess) {
  const auto e = parse({});
  EXPECT_EQ(e.source, "single");
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_EQ(e.master_addr, "127.0.0.1");
  EXPECT_EQ(e.master_port, 29500);
  // Empty values count as unset; MASTER_* alone do not make a job distributed.
  EXPECT_EQ(parse({{"RANK", ""}, {"WORLD_SIZE", ""}, {"MASTER_PORT", "x"}}).source, "single");
}

TEST(DistEnv, TorchrunVariables) {
  const auto e = parse({{"RANK", "3"},
                        {"WORLD_SIZE", "8"},
                        {"LOCAL_RANK", "1"},
                        {"MASTER_ADDR", "10.0.0.5"},
                        {"MASTER_PORT", "1234"}});
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "10.0.0.5");
  EXPECT_EQ(e.master_port, 1234);
  // LOCAL_RANK defaults to RANK, MASTER_* to 127.0.0.1:29500.
  const auto m = parse({{"RANK", "1"}, {"WORLD_SIZE", "2"}});
  EXPECT_EQ(m.local_rank, 1);
  EXPECT_EQ(m.master_addr, "127.0.0.1");
  EXPECT_EQ(m.master_port, 29500);
  EXPECT_FALSE(m.agent_store);
  // torchrun's agent hosts the store: every rank is a client under the attempt's prefix.
  const auto a = parse({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                        {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_TRUE(a.agent_store);
  EXPECT_EQ(a.restart_count, 2);
}

TEST(DistEnv, SlurmVariables) {
  const auto e = parse({{"SLURM_PROCID", "5"},
                        {"SLURM_NTASKS", "6"},
                        {"SLURM_LOCALID", "2"},
                        {"MASTER_ADDR", "node01"},
                        {"MASTER_PORT", "4000"}});
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 6);
  EXPECT_EQ(e.local_rank, 2);
  EXPECT_EQ(e.master_addr, "node01");
  EXPECT_EQ(e.master_port, 4000);
  const auto d = parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}});
  EXPECT_EQ(d.local_rank, 0);
  EXPECT_EQ(d.master_addr, "127.0.0.1");
  EXPECT_EQ(d.master_port, 29500);
}

TEST(DistEnv, TorchrunTakesPrecedenceOverSlurm) {
  const auto e = parse({{"RANK", "1"},
                        {"WORLD_SIZE", "2"},
                        {"LOCAL_RANK", "0"},
                        {"SLURM_PROCID", "7"},
                        {"SLURM_NTASKS", "16"},
                        {"SLURM_LOCALID", "3"}});
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 2);
  EXPECT_EQ(e.local_rank, 0);
  // Malformed SLURM values are ignored when torchrun's are present.
  EXPECT_EQ(parse({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"SLURM_PROCID", "x"}}).source, "torchrun");
}

TEST(DistEnv, MalformedValuesNameTheVariable) {
  expect_invalid({{"RANK", "one"}, {"WORLD_SIZE", "2"}}, {"RANK", "one"});
  expect_invalid({{"RANK", "1"}, {"WORLD_SIZE", "2x"}}, {"WORLD_SIZE", "2x"});
  expect_invalid({{"RANK", " 1"}, {"WORLD_SIZE", "2"}}, {"RANK", " 1"});
  expect_invalid({{"RANK", "99999999999"}, {"WORLD_SIZE", "2"}}, {"RANK", "99999999999"});
  expect_invalid({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, {"RANK", "2", "WORLD_SIZE"});
  expect_invalid({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, {"RANK", "-1"});
  expect_invalid({{"RANK", "0"}, {"WORLD_SIZE", "0"}}, {"WORLD_SIZE", "0"});
  expect_invalid({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "5"}}, {"LOCAL_RANK", "5"});
  expect_invalid({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "a"}}, {"LOCAL_RANK", "a"});
  expect_invalid({{"RANK", "1"}}, {"WORLD_SIZE", "not set"});
  expect_invalid({{"WORLD_SIZE", "2"}}, {"RANK", "not set"});
  expect_invalid({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}, {"MASTER_PORT", "70000"});
  expect_invalid({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "0"}}, {"MASTER_PORT", "0"});
  expect_invalid({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "http"}}, {"MASTER_PORT", "http"});
  expect_invalid({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}}, {"SLURM_PROCID", "4", "SLURM_NTASKS"});
  expect_invalid({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "four"}}, {"SLURM_NTASKS", "four"});
  expect_invalid({{"SLURM_PROCID", "0"}}, {"SLURM_NTASKS", "not set"});
  expect_invalid({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "-3"}},
                 {"SLURM_LOCALID", "-3"});
  expect_invalid({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"MASTER_PORT", "-1"}},
                 {"MASTER_PORT", "-1"});
}

TEST(DistEnv, LocalWorldSizeFromTorchrunAndSlurm) {
  EXPECT_EQ(parse({}).local_world_size, 1);
  EXPECT_EQ(parse({{"RANK", "5"}, {"WORLD_SIZE", "16"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "8"}})
                .local_world_size, 8);
  // A manual launch without LOCAL_WORLD_SIZE is one node, as LOCAL_RANK defaults to RANK.
  EXPECT_EQ(parse({{"RANK", "1"}, {"WORLD_SIZE", "4"}}).local_world_size, 4);
  EXPECT_EQ(parse({{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"},
                   {"SLURM_STEP_TASKS_PER_NODE", "4(x4)"}}).local_world_size, 4);
  EXPECT_EQ(parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_NTASKS_PER_NODE", "2"}}).local_world_size, 2);
  EXPECT_EQ(parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "3"}}).local_world_size, 3);
  expect_invalid({{"RANK", "0"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}},
                 {"LOCAL_WORLD_SIZE", "2"});
  expect_invalid({{"RANK", "0"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "x"}}, {"LOCAL_WORLD_SIZE", "x"});
  expect_invalid({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_STEP_TASKS_PER_NODE", "(x2)"}},
                 {"SLURM_STEP_TASKS_PER_NODE", "(x2)"});
}

// Each rank of a node takes its share of the cores unless --threads says otherwise.
TEST(DistEnv, ThreadsPerRankShareTheNode) {
  const auto single = parse({});
  EXPECT_EQ(threads_per_rank(0, single, 16), 16);
  EXPECT_EQ(threads_per_rank(3, single, 16), 3);
  const auto eight = parse({{"RANK", "9"}, {"WORLD_SIZE", "16"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "8"}});
  EXPECT_EQ(threads_per_rank(0, eight, 16), 2);
  EXPECT_EQ(threads_per_rank(0, eight, 4), 1);  // never 0
  EXPECT_EQ(threads_per_rank(5, eight, 16), 5);  // explicit --threads wins
  EXPECT_EQ(threads_per_rank(0, parse({{"RANK", "1"}, {"WORLD_SIZE", "2"}}), 2), 1);
}

// "cuda" becomes cuda:LOCAL_RANK in a multi-process job; explicit devices stay; a rank without a GPU of
// its own is an error naming the local rank and the count (CUDA counts are injected: no GPU needed).
TEST(DistEnv, RankDeviceFollowsLocalRank) {
  const torch::Device cuda(torch::kCUDA), cpu(torch::kCPU), cuda3(torch::kCUDA, 3);
  const auto two = parse({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"}});
  EXPECT_EQ(rank_device(two, cuda, 2), torch::Device(torch::kCUDA, 1));
  EXPECT_EQ(rank_device(two, cpu, 2), cpu);
  EXPECT_EQ(rank_device(two, cuda3, 8), cuda3);
  EXPECT_EQ(rank_device(parse({}), cuda, 4), torch::Device(torch::kCUDA, 0));
  const auto slurm = parse({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "2"},
                            {"SLURM_STEP_TASKS_PER_NODE", "4"}});
  EXPECT_EQ(rank_device(slurm, cuda, 4), torch::Device(torch::kCUDA, 2));
  try {
    rank_device(slurm, cuda, 2);
    FAIL() << "local rank 2 with 2 GPUs accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("local rank 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("2 CUDA device(s)"), std::string::npos) << e.what();
  }
  set_current_device(cpu);  // a no-op for the CPU, whatever the build
}

// ---- single process and argument checks ----------------------------------------------------------

TEST(Communicator, SingleProcessCollectivesAreIdentities) {
  const auto c = Communicator::create(DistEnv{}, "auto", torch::kCPU, 1s);
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->world_size(), 1);
  EXPECT_TRUE(c->is_main());
  EXPECT_EQ(c->backend(), "none");
  std::vector<torch::Tensor> ts{torch::tensor({1.5f, -2.0f}), torch::arange(3)};
  c->all_reduce_sum(ts);
  c->broadcast(ts, 0);
  c->barrier();
  EXPECT_TRUE(torch::equal(ts[0], torch::tensor({1.5f, -2.0f})));
  EXPECT_TRUE(torch::equal(ts[1], torch::arange(3)));
  auto p = torch::ones({3}, torch::requires_grad());
  auto q = torch::ones({2}, torch::requires_grad());
  p.mutable_grad() = torch::full({3}, 4.0f);
  c->average_gradients({p, q}, 1);
  EXPECT_TRUE(torch::equal(p.grad(), torch::full({3}, 4.0f)));
  EXPECT_FALSE(q.grad().defined());
  EXPECT_THROW(c->broadcast(ts, 1), std::invalid_argument);
}

TEST(Communicator, RejectsBadArgumentsBeforeAnyRendezvous) {
  DistEnv two = rank0_env(29500);
  EXPECT_THROW(Communicator::create(two, "mpi", torch::kCPU, 1s), std::invalid_argument);
  EXPECT_THROW(Communicator::create(DistEnv{}, "mpi", torch::kCPU, 1s), std::invalid_argument);
  EXPECT_THROW(Communicator::create(two, "gloo", torch::kCPU, 0ms), std::invalid_argument);
  DistEnv bad = two;
  bad.rank = 2;
  EXPECT_THROW(Communicator::create(bad, "gloo", torch::kCPU, 1s), std::invalid_argument);
  bad = two;
  bad.master_port = 0;
  EXPECT_THROW(Communicator::create(bad, "gloo", torch::kCPU, 1s), std::invalid_argument);
  EXPECT_TRUE(Communicator::gloo_available());
  if (!Communicator::nccl_available()) {
    try {
      Communicator::create(two, "nccl", torch::Device(torch::kCUDA, 0), 1s);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("no NCCL support"), std::string::npos) << e.what();
    }
  } else {
    EXPECT_THROW(Communicator::create(two, "nccl", torch::kCPU, 1s), std::invalid_argument);
  }
}

// ---- two processes over Gloo on 127.0.0.1 --------------------------------------------------------

// Rank 1 of the two-process tests; skipped unless spawned by them.
TEST(DistributedWorker, Rank1) {
  const char* role = std::getenv(kRoleVar);
  if (!role) GTEST_SKIP() << "runs only as rank 1, spawned by the CommunicatorGloo tests";
  const DistEnv env = dist_env_from_environment();
  ASSERT_EQ(env.source, "torchrun");
  ASSERT_EQ(env.rank, 1);
  ASSERT_EQ(env.world_size, 2);
  const auto c = Communicator::create(env, "gloo", torch::kCPU, 10s);
  if (std::string(role) == "die") std::_Exit(kDeadPeerExitCode);  // like a crash: no clean shutdown
  if (std::string(role) == "train") {
    const char* out = std::getenv("SKD_DIST_TEST_OUT");
    ASSERT_NE(out, nullptr);
    auto model = skd::test::tiny_model();
    skd::test::TinyData data(64), eval(20);
    TrainContext ctx;
    ctx.comm = c;
    const auto r = train(*model, data, &eval, distributed_train_config(8), ctx);
    EXPECT_EQ(r.steps, 8);
    skd::models::save_artifact(out, *model, {{"eval_top1", r.eval_top1}});
    return;
  }
  collectives_script(*c);
}

// Two processes with 8 images each per step train exactly like one process with 16: every
// parameter equal on both ranks and (1e-5) to the single-process run; the sharded evaluation
// reduces to the same accuracy.
TEST(DistributedTrain, TwoRanksMatchOneProcessWithTheSameGlobalBatch) {
  const int port = free_port();
  const std::string out = skd::test::scratch_dir("dist_train") + "/rank1.safetensors";
  setenv("SKD_DIST_TEST_OUT", out.c_str(), 1);
  Rank1Process child("train", port);
  auto rank0 = skd::test::tiny_model();
  skd::test::TinyData data(64), eval(20);
  TrainResult r0;
  {
    TrainContext ctx;
    ctx.comm = Communicator::create(rank0_env(port), "gloo", torch::kCPU, 30s);
    r0 = train(*rank0, data, &eval, distributed_train_config(8), ctx);
  }
  ASSERT_EQ(child.wait(60s), 0) << "rank 1 failed (see its output above)";
  auto single = skd::test::tiny_model();
  const auto r1 = train(*single, data, &eval, distributed_train_config(16));
  EXPECT_EQ(r0.steps, 8);
  EXPECT_EQ(r1.steps, 8);
  const auto rank1 = skd::models::load_model(out);
  std::map<std::string, torch::Tensor> p1, ps;
  for (auto& p : rank1.model->named_parameters(true)) p1[p.key()] = p.value();
  for (auto& p : single->named_parameters(true)) ps[p.key()] = p.value();
  double max_diff = 0;
  for (auto& p : rank0->named_parameters(true)) {
    EXPECT_TRUE(torch::equal(p.value(), p1.at(p.key()))) << "ranks differ at " << p.key();
    max_diff = std::max(max_diff, (p.value() - ps.at(p.key())).abs().max().item<double>());
  }
  EXPECT_LT(max_diff, 1e-5);
  EXPECT_GT((rank0->named_parameters(true)["head.weight"] - skd::test::tiny_model()->named_parameters(true)["head.weight"])
                .abs().max().item<double>(), 1e-3) << "training did not move the weights";
  EXPECT_DOUBLE_EQ(r0.eval_top1, r1.eval_top1);
  EXPECT_DOUBLE_EQ(rank1.manifest.at("provenance").at("eval_top1").get<double>(), r0.eval_top1);
}

TEST(CommunicatorGloo, TwoProcessesAgreeOnSumsBroadcastsAndAveragedGradients) {
  const int port = free_port();
  Rank1Process child("collectives", port);
  {
    const auto c = Communicator::create(rank0_env(port), "gloo", torch::kCPU, 10s);
    collectives_script(*c);
  }
  EXPECT_EQ(child.wait(15s), 0) << "rank 1 failed (see its output above)";
}

TEST(CommunicatorGloo, DeadPeerFailsFastInsteadOfHanging) {
  const int port = free_port();
  Rank1Process child("die", port);
  const auto timeout = 4s;
  const auto c = Communicator::create(rank0_env(port), "gloo", torch::kCPU, timeout);
  std::vector<torch::Tensor> ts{torch::ones({1000})};
  const auto start = std::chrono::steady_clock::now();
  try {
    c->all_reduce_sum(ts);
    ADD_FAILURE() << "all_reduce with a dead peer did not throw";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank 0/2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("all_reduce failed"), std::string::npos) << msg;
    EXPECT_NE(msg.find("a peer may have died"), std::string::npos) << msg;
    EXPECT_NE(msg.find("4 s timeout"), std::string::npos) << msg;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, timeout + 3s);
  // The communicator is unusable afterwards and says so at once.
  const auto again = std::chrono::steady_clock::now();
  try {
    c->barrier();
    ADD_FAILURE() << "barrier after a failure did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("failed earlier"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - again, 1s);
  EXPECT_EQ(child.wait(10s), kDeadPeerExitCode);
}

TEST(CommunicatorGloo, MissingPeerFailsTheRendezvousWithinTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  try {
    Communicator::create(rank0_env(free_port()), "gloo", torch::kCPU, 1500ms);
    ADD_FAILURE() << "rendezvous without a peer did not throw";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rank 0/2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rendezvous"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1.5 s timeout"), std::string::npos) << msg;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 6s);
}
