// Tests of the file helpers: bounded whole-file reads and atomic writes.
#include "skd/core/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.h"

namespace skd {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

// Runs `f`, expecting std::runtime_error whose message contains `needle`.
template <typename F>
void expect_runtime_error_naming(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception thrown";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(FsWriteFileAtomic, CreatesFileWithContent) {
  const std::string dir = test::scratch_dir("fs_create");
  const std::string path = dir + "/out.bin";
  const std::string content("binary\0data\xff\n", 13);
  write_file_atomic(path, content);
  EXPECT_EQ(slurp(path), content);
  EXPECT_EQ(entries(dir), (std::set<std::string>{"out.bin"}));
}

TEST(FsWriteFileAtomic, WritesEmptyFileAndRawPointerOverload) {
  const std::string dir = test::scratch_dir("fs_raw");
  write_file_atomic(dir + "/empty", nullptr, 0);
  EXPECT_TRUE(fs::is_regular_file(dir + "/empty"));
  EXPECT_EQ(fs::file_size(dir + "/empty"), 0u);

  std::vector<uint8_t> big(3 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  write_file_atomic(dir + "/big", big.data(), big.size());
  EXPECT_EQ(read_file_bytes(dir + "/big"), big);
}

TEST(FsWriteFileAtomic, OverwritesByReplacingTheFile) {
  const std::string dir = test::scratch_dir("fs_overwrite");
  const std::string path = dir + "/state.json";
  write_file_atomic(path, std::string("old content that is longer"));
  // A hard link keeps the old inode visible: an atomic replace leaves it untouched, whereas
  // truncating and rewriting in place would change it.
  const std::string link = dir + "/old_link";
  ASSERT_EQ(::link(path.c_str(), link.c_str()), 0);
  write_file_atomic(path, std::string("new"));
  EXPECT_EQ(slurp(path), "new");
  EXPECT_EQ(slurp(link), "old content that is longer");
  EXPECT_EQ(entries(dir), (std::set<std::string>{"state.json", "old_link"}));
}

TEST(FsWriteFileAtomic, LeavesNoTemporaryFilesBehind) {
  const std::string dir = test::scratch_dir("fs_no_temps");
  for (int i = 0; i < 20; ++i) {
    write_file_atomic(dir + "/a.txt", std::string(static_cast<size_t>(i) * 100, 'a'));
    write_file_atomic(dir + "/b.txt", std::to_string(i));
  }
  EXPECT_EQ(entries(dir), (std::set<std::string>{"a.txt", "b.txt"}));
  EXPECT_EQ(slurp(dir + "/b.txt"), "19");
}

TEST(FsWriteFileAtomic, NonexistentDirectoryThrowsAndCreatesNothing) {
  const std::string dir = test::scratch_dir("fs_no_dir");
  const std::string missing = dir + "/missing";
  const std::string path = missing + "/out.bin";
  expect_runtime_error_naming([&] { write_file_atomic(path, std::string("x")); }, path);
  EXPECT_FALSE(fs::exists(missing));
  EXPECT_TRUE(entries(dir).empty());
}

TEST(FsWriteFileAtomic, ReadOnlyDirectoryThrowsAndKeepsOldContent) {
  if (::geteuid() == 0)
    GTEST_SKIP() << "running as root: permission bits do not stop root from writing, so a "
                    "chmod 0555 directory cannot make the write fail";
  const std::string dir = test::scratch_dir("fs_read_only");
  const std::string path = dir + "/keep.txt";
  write_file_atomic(path, std::string("previous"));
  ASSERT_EQ(::chmod(dir.c_str(), 0555), 0);
  expect_runtime_error_naming([&] { write_file_atomic(path, std::string("next")); }, path);
  ::chmod(dir.c_str(), 0755);  // so scratch_dir can clean up on the next run
  EXPECT_EQ(slurp(path), "previous");
  EXPECT_EQ(entries(dir), (std::set<std::string>{"keep.txt"}));
}

TEST(FsWriteFileAtomic, TargetIsADirectoryThrowsAndCleansUp) {
  const std::string dir = test::scratch_dir("fs_target_dir");
  const std::string path = dir + "/sub";
  fs::create_directory(path);
  expect_runtime_error_naming([&] { write_file_atomic(path, std::string("x")); }, path);
  EXPECT_EQ(entries(dir), (std::set<std::string>{"sub"}));
}

TEST(FsReadFileBytes, ReadsWholeFile) {
  const std::string dir = test::scratch_dir("fs_read");
  const std::string content("\x00\x01\x02hello\xfe", 9);
  write_file_atomic(dir + "/f", content);
  const std::vector<uint8_t> bytes = read_file_bytes(dir + "/f");
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), content);

  write_file_atomic(dir + "/empty", std::string());
  EXPECT_TRUE(read_file_bytes(dir + "/empty").empty());
}

TEST(FsReadFileBytes, MissingFileThrowsNamingPath) {
  const std::string path = test::scratch_dir("fs_missing") + "/does_not_exist.bin";
  expect_runtime_error_naming([&] { read_file_bytes(path); }, path);
}

TEST(FsReadFileBytes, DirectoryIsNotARegularFile) {
  const std::string dir = test::scratch_dir("fs_read_dir");
  expect_runtime_error_naming([&] { read_file_bytes(dir); }, dir);
}

TEST(FsReadFileBytes, MaxBytesLimitEnforced) {
  const std::string path = test::scratch_dir("fs_limit") + "/hundred.bin";
  write_file_atomic(path, std::string(100, 'z'));
  EXPECT_EQ(read_file_bytes(path, 100).size(), 100u);
  expect_runtime_error_naming([&] { read_file_bytes(path, 99); }, path);
  expect_runtime_error_naming([&] { read_file_bytes(path, 0); }, "limit");
}

}  // namespace
}  // namespace skd
