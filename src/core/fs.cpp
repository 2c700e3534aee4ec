#include "skd/core/fs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "skd/core/error.h"

namespace skd {

std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a regular file);
  // reads of a regular file ignore the flag.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw std::runtime_error(cat("cannot open '", path, "': ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(cat("'", path, "' is not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    throw std::runtime_error(cat("'", path, "' is ", st.st_size, " bytes, more than the limit of ",
                                 max_bytes));
  }
  std::vector<uint8_t> out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error(cat("read error on '", path, "' after ", done, " bytes: ",
                                   n == 0 ? "unexpected end of file" : std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return out;
}

namespace {

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a named pipe (FIFO)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISREG(m)) return "a regular file";
  return "not a regular file";
}

// The folder a file `path` goes into ("." for a bare name).
std::string folder_of(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// Throws unless `dir` is a directory this process may create files in.
void check_writable_dir(const std::string& key, const std::string& target, const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    throw ParameterFailure(key, cat(" '", target, "': folder '", dir, "' does not exist (", std::strerror(errno), ")"));
  if (!S_ISDIR(st.st_mode)) throw ParameterFailure(key, cat(" '", target, "': '", dir, "' is not a folder"));
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw ParameterFailure(key, cat(" '", target, "': folder '", dir, "' is not writable (", std::strerror(errno), ")"));
}

// Throws when an existing `path` is not a regular file (stat: through symbolic links).
void check_replaceable(const std::string& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw std::runtime_error(cat("cannot write '", path, "': it is ", kind_of(st.st_mode), ", not a regular file (",
                                 what, ")"));
}

bool parse_temp_pid(const std::string& name, const std::string& prefix, long* pid) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string rest = name.substr(prefix.size());  // <pid>-<random>
  const auto dash = rest.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == rest.size()) return false;
  for (size_t i = 0; i < rest.size(); ++i)
    if (i != dash && !std::isdigit(static_cast<unsigned char>(rest[i]))) return false;
  if (dash > 9) return false;
  *pid = std::stol(rest.substr(0, dash));
  return *pid > 0;
}

// True when process `pid` no longer runs, or started after `mtime` (its pid was reused).
bool writer_gone(long pid, const struct timespec& mtime) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  struct stat proc {};
  if (::stat(cat("/proc/", pid).c_str(), &proc) != 0) return false;
  return proc.st_ctim.tv_sec > mtime.tv_sec + 1;
}

void fsync_dir(const std::filesystem::path& dir) {
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

bool file_identity(const std::string& path, uint64_t* dev, uint64_t* ino) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return false;
  *dev = static_cast<uint64_t>(st.st_dev);
  *ino = static_cast<uint64_t>(st.st_ino);
  return true;
}

bool same_file(const std::string& a, const std::string& b) {
  uint64_t da = 0, ia = 0, db = 0, ib = 0;
  return file_identity(a, &da, &ia) && file_identity(b, &db, &ib) && da == db && ia == ib;
}

bool same_path(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  if (same_file(a, b)) return true;
  std::error_code ea, eb;
  const auto ca = std::filesystem::weakly_canonical(a, ea), cb = std::filesystem::weakly_canonical(b, eb);
  return !ea && !eb && ca == cb;
}

void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i)
    for (size_t j = i + 1; j < outputs.size(); ++j)
      if (same_path(outputs[i].second, outputs[j].second))
        throw ParameterError([a = outputs[i], b = outputs[j]](const KeyNamer& name) {
          return cat(name(a.first), " '", a.second, "' and ", name(b.first), " '", b.second,
                     "' are the same file; give each output its own path");
        });
}

void check_input_file(const std::string& path, const std::string& key) {
  struct stat st {};
  std::string problem;
  if (::stat(path.c_str(), &st) != 0)
    problem = cat("cannot open '", path, "': ", std::strerror(errno));
  else if (!S_ISREG(st.st_mode))
    problem = cat("'", path, "' is ", kind_of(st.st_mode), ", not a regular file");
  if (problem.empty()) return;
  if (key.empty()) throw std::runtime_error(problem);
  throw ParameterFailure(key, cat(": ", problem));
}

void check_output_file(const std::string& key, const std::string& path, const std::vector<std::string>& inputs) {
  if (path.empty()) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw ParameterError(key, cat(" '", path, "' is ", kind_of(st.st_mode),
                                  "; an output must be a regular file (or not exist yet)"));
  for (const auto& in : inputs)
    if (same_file(path, in))
      throw ParameterError(key, cat(" '", path, "' is the same file as the input '", in,
                                    "'; writing it would replace the input"));
  check_writable_dir(key, path, folder_of(path));
}

void check_output_dir(const std::string& key, const std::string& path) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      throw ParameterError(key, cat(" '", path, "' is ", kind_of(st.st_mode), ", not a folder"));
    return check_writable_dir(key, path, path);
  }
  fs::path p = fs::path(path).lexically_normal();  // the nearest existing ancestor must take a new folder
  while (p.has_parent_path() && p.parent_path() != p) {
    p = p.parent_path();
    if (::stat(p.c_str(), &st) == 0) return check_writable_dir(key, path, p.string());
  }
  if (fs::path(path).is_relative()) check_writable_dir(key, path, ".");
}

int remove_stale_temp_files(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string dir = folder_of(path);
  const std::string prefix = cat(".", target.filename().string(), ".tmp-");
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    long pid = 0;
    if (!parse_temp_pid(name, prefix, &pid) || pid == static_cast<long>(::getpid())) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (writer_gone(pid, st.st_mtim) && ::unlink(it->path().c_str()) == 0) ++removed;
  }
  return removed;
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.parent_path();
  check_replaceable(path, "refusing to replace it");
  remove_stale_temp_files(path);
  std::random_device rd;
  const std::string tmp =
      (dir / cat(".", target.filename().string(), ".tmp-", ::getpid(), "-", rd())).string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error(cat("cannot write '", path, "': cannot create temporary file in '",
                                 dir.empty() ? "." : dir.string(), "': ", std::strerror(errno)));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(cat("cannot write '", path, "': ", what, ": ", std::strerror(err),
                                 " (previous content left unchanged)"));
  };
  const auto* p = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, p + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(cat("cannot write '", path, "': close failed: ", std::strerror(err)));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {  // appeared while writing
    ::unlink(tmp.c_str());
    check_replaceable(path, "refusing to replace it");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(cat("cannot write '", path, "': rename failed: ", std::strerror(err)));
  }
  fsync_dir(dir);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_file_atomic(path, content.data(), content.size());
}

void append_line_synced(const std::string& path, const std::string& line) {
  const std::string text = line + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0) throw std::runtime_error(cat("cannot open '", path, "': ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(cat("cannot append to '", path, "': not a regular file"));
  }
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::fsync(fd);
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size()))
    throw std::runtime_error(cat("cannot append to '", path, "': ", std::strerror(err)));
}

}  // namespace skd
