// distributed::join in a single process (the multi-process path runs in e2e.train and e2e.convert, which look
// for its "process r/w" line), the backend names, and the one default timeout.
#include "skd/distributed/join.h"
#include "skd/core/logging.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

using namespace skd::distributed;

TEST(Join, BackendNamesParseOnceAndRoundTrip) {
  for (const auto b : {Backend::AUTO, Backend::GLOO, Backend::NCCL}) EXPECT_EQ(parse_backend(backend_name(b)), b);
  EXPECT_STREQ(backend_name(Backend::GLOO), "gloo");
  try {
    parse_backend("mpi");
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "distributed: backend 'mpi': expected gloo, nccl or auto");
  }
}

TEST(Join, OneDefaultTimeout) {
  EXPECT_EQ(kDefaultTimeoutSeconds, 300);
  EXPECT_EQ(JoinOptions{}.timeout, std::chrono::seconds(300));
  EXPECT_EQ(timeout_from_seconds(1.5), std::chrono::milliseconds(1500));
}

TEST(Join, SingleProcessKeepsTheDeviceAndHasNoCommunicator) {
  for (const char* v : {"RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS"})
    if (std::getenv(v)) GTEST_SKIP() << v << " is set: this process is part of a job";
  JoinOptions options;
  options.backend = Backend::GLOO;
  options.log_file = skd::test::scratch_dir("join") + "/run/train.log";
  std::filesystem::remove_all(std::filesystem::path(options.log_file).parent_path());
  const Session s = join(options, torch::kCPU);
  skd::set_log_file("");
  EXPECT_EQ(s.env.world_size, 1);
  EXPECT_EQ(s.env.source, "single");
  EXPECT_EQ(s.device, torch::Device(torch::kCPU));
  EXPECT_EQ(s.comm, nullptr);
  EXPECT_TRUE(std::filesystem::exists(options.log_file)) << "the main rank's log file (and its folder)";
}
