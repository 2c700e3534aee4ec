// Hostile files and outputs (docs/reliability.md, "Hostile input"): identity of outputs and inputs,
// special files, output checks before the work, stale temporary files of killed writes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "test_util.h"

using namespace skd;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The pid of a process that has exited (and been reaped): no process runs under it right after.
pid_t dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

}  // namespace

TEST(Fs, SameFileByIdentityThroughLinksAndSpellings) {
  const std::string d = test::scratch_dir("fs_same_file");
  write_file_atomic(d + "/a.bin", std::string("a"));
  write_file_atomic(d + "/b.bin", std::string("a"));
  ASSERT_EQ(::link((d + "/a.bin").c_str(), (d + "/hard.bin").c_str()), 0);
  fs::create_symlink(d + "/a.bin", d + "/soft.bin");
  EXPECT_TRUE(same_file(d + "/a.bin", d + "/hard.bin"));
  EXPECT_TRUE(same_file(d + "/a.bin", d + "/soft.bin"));
  fs::create_directories(d + "/sub");
  EXPECT_TRUE(same_file(d + "/a.bin", d + "/./sub/../a.bin"));
  EXPECT_TRUE(same_file(d + "/a.bin", d + "//a.bin"));
  EXPECT_FALSE(same_file(d + "/a.bin", d + "/b.bin"));  // equal content, another file
  EXPECT_FALSE(same_file(d + "/a.bin", d + "/missing.bin"));
  EXPECT_TRUE(same_path(d + "/new.bin", d + "/./new.bin"));  // not written yet: by spelling
}

TEST(Fs, OutputThatIsAnInputIsRefused) {
  const std::string d = test::scratch_dir("fs_output_is_input");
  const std::string model = d + "/model.safetensors";
  write_file_atomic(model, std::string("weights"));
  ASSERT_EQ(::link(model.c_str(), (d + "/hard.safetensors").c_str()), 0);
  fs::create_symlink(model, d + "/soft.onnx");
  for (const std::string& out : std::vector<std::string>{model, d + "/hard.safetensors", d + "/soft.onnx", d + "/../" +
                                    fs::path(d).filename().string() + "/model.safetensors"}) {
    const auto msg = test::error_of<std::invalid_argument>([&] { check_output_file("out", out, {"", model}); });
    EXPECT_NE(msg.find("out '" + out + "' is the same file as the input '" + model + "'"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(check_output_file("out", d + "/other.onnx", {model}));
  EXPECT_EQ(slurp(model), "weights");
  const auto both = test::error_of<std::invalid_argument>(
      [&] { check_distinct_outputs({{"out", d + "/x.safetensors"}, {"report", d + "/./x.safetensors"}}); });
  EXPECT_NE(both.find("are the same file"), std::string::npos) << both;
}

TEST(Fs, SpecialFilesAreRefusedAsOutputsAndInputs) {
  const std::string d = test::scratch_dir("fs_special");
  const std::string fifo = d + "/pipe.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  fs::create_symlink("/dev/null", d + "/null.onnx");
  // outputs: checked before the work, and write_file_atomic never renames over them
  for (const std::string& out : std::vector<std::string>{fifo, d + "/null.onnx", std::string("/dev/null"), d}) {
    const auto msg = test::error_of<std::invalid_argument>([&] { check_output_file("out", out); });
    EXPECT_NE(msg.find("out '" + out + "' is a"), std::string::npos) << msg;
  }
  for (const std::string& out : std::vector<std::string>{fifo, d + "/null.onnx"}) {
    const auto msg = test::error_of<std::runtime_error>([&] { write_file_atomic(out, std::string("x")); });
    EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  }
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_TRUE(fs::is_symlink(d + "/null.onnx"));
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  // inputs: refused at once, a FIFO without a writer does not block
  const auto t0 = std::chrono::steady_clock::now();
  const auto read = test::error_of<std::runtime_error>([&] { read_file_bytes(fifo); });
  EXPECT_NE(read.find("not a regular file"), std::string::npos) << read;
  const auto in = test::error_of<std::runtime_error>([&] { check_input_file(fifo, "model"); });
  EXPECT_NE(in.find("model: '" + fifo + "' is a named pipe (FIFO), not a regular file"), std::string::npos) << in;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  const auto app = test::error_of<std::runtime_error>([&] { append_line_synced(d + "/null.onnx", "{}"); });
  EXPECT_NE(app.find("not a regular file"), std::string::npos) << app;
}

TEST(Fs, OutputFolderCheckedBeforeTheWork) {
  const std::string d = test::scratch_dir("fs_out_folder");
  const auto missing =
      test::error_of<std::runtime_error>([&] { check_output_file("out", d + "/missing/x.safetensors"); });
  EXPECT_NE(missing.find("out '" + d + "/missing/x.safetensors': folder '" + d + "/missing' does not exist"),
            std::string::npos)
      << missing;
  EXPECT_NO_THROW(check_output_file("out", d + "/x.safetensors"));
  EXPECT_NO_THROW(check_output_dir("run_dir", d + "/new/run"));  // can be created
  write_file_atomic(d + "/file", std::string("x"));
  const auto not_dir = test::error_of<std::invalid_argument>([&] { check_output_dir("run_dir", d + "/file"); });
  EXPECT_NE(not_dir.find("run_dir '" + d + "/file' is a regular file, not a folder"), std::string::npos) << not_dir;
  if (::geteuid() != 0) {  // root writes anywhere
    fs::create_directories(d + "/ro");
    fs::permissions(d + "/ro", fs::perms::owner_read | fs::perms::owner_exec);
    const auto ro = test::error_of<std::runtime_error>([&] { check_output_file("out", d + "/ro/x"); });
    EXPECT_NE(ro.find("is not writable"), std::string::npos) << ro;
    fs::permissions(d + "/ro", fs::perms::owner_all);
  }
}

TEST(Fs, StaleTempFilesOfKilledWritesAreRemoved) {
  const std::string d = test::scratch_dir("fs_stale_temp");
  const std::string out = d + "/model.safetensors";
  const std::string stale = d + "/.model.safetensors.tmp-" + std::to_string(dead_pid()) + "-12345";
  const std::string live = d + "/.model.safetensors.tmp-" + std::to_string(::getppid()) + "-777";  // a running writer
  const std::string other = d + "/.other.safetensors.tmp-" + std::to_string(dead_pid()) + "-1";   // another output
  const std::string unlike = d + "/.model.safetensors.tmp-abc";                                     // not the pattern
  for (const auto& p : {stale, live, other, unlike}) write_file_atomic(p, std::string(1000, 'x'));
  write_file_atomic(out, std::string("new"));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(fs::exists(unlike));
  EXPECT_EQ(slurp(out), "new");
  EXPECT_EQ(remove_stale_temp_files(d + "/other.safetensors"), 1);
}
