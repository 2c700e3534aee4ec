#include "skd/deploy/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/version.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/deploy/process.h"
#include "skd/io/json.h"
#include "skd_runtime_script.h"  // kRuntimeScript: python/skd_runtime.py, embedded at build time

extern char** environ;

namespace skd::deploy {

namespace {

// Waits for `fd` to be readable (POLLIN) or writable until `deadline`; false on timeout.
bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true;  // let the read/write report it
  }
}

std::chrono::steady_clock::time_point deadline_after(double seconds) {
  return std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                std::chrono::duration<double>(seconds));
}

}  // namespace

std::string libtorch_version() {
  return TORCH_VERSION;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += cat(i ? "," : "", shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return s + "]";
}

std::string installed_runtime_version(const std::string& runtime, const std::string& python) {
  const Runtime r = parse_enum(runtime, kRuntimeNames, "runtime");
  if (r == Runtime::LIBTORCH) return libtorch_version();
  WorkerOptions o;
  o.python = python;
  return RuntimeWorker(r, o).version();
}

RuntimeWorker::RuntimeWorker(Runtime runtime, const WorkerOptions& o)
    : runtime_(runtime), python_(resolve_python(o.python)), threads_(o.threads) {
  if (runtime == Runtime::LIBTORCH)
    throw std::invalid_argument("RuntimeWorker: libtorch runs in this process");
  if (threads_ < 1) throw ParameterError("threads", cat(" must be positive (got ", threads_, ")"));
  timeout_s_ = o.timeout_s > 0 ? o.timeout_s : seconds_from_env("SKD_RUNTIME_TIMEOUT", 600.0);
  // The script and the worker's stderr live in a temporary folder for the worker's lifetime.
  auto dir = std::make_shared<TempDir>();
  dir_ = dir->path();
  temp_ = dir;
  write_file_atomic(dir->file("skd_runtime.py"), kRuntimeScript);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error(
        cat("cannot create a socket pair for the runtime worker: ", std::strerror(errno)));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
  const std::string err = dir->file("stderr.txt");
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  const std::string name = enum_name(runtime, kRuntimeNames);
  std::vector<std::string> argv = {python_, "-u",        dir->file("skd_runtime.py"), "--runtime",
                                   name,    "--threads", std::to_string(threads_)};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = posix_spawnp(&pid_, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(sv[1]);
  fd_ = sv[0];
  if (rc != 0) {
    ::close(fd_);
    fd_ = -1;
    pid_ = -1;
    const std::string py = python_;
    throw ParameterFailure([=](const KeyNamer& n) {
      return cat("cannot run the Python interpreter '", py, "' (", n("python"), " / SKD_PYTHON) for ", name,
                 ": ", std::strerror(rc), ". ", kInstallRuntimes);
    });
  }
  std::string line;
  try {
    line = read_line("start");
  } catch (const std::exception&) {
    if (pid_ <= 0) throw;  // timed out: already killed and said so
    const int status = reap();
    const std::string why = last_line(read_text(err));
    const std::string py = python_;
    if (status == 3)
      throw ParameterFailure([=](const KeyNamer& n) {
        return cat(name, " is not installed in the Python interpreter '", py, "' (", n("python"),
                   " / SKD_PYTHON: ", why, "). Install it: ", kInstallRuntimes);
      });
    throw ParameterFailure([=](const KeyNamer& n) {
      return cat("the ", name, " worker did not start with the Python interpreter '", py, "' (", n("python"),
                 " / SKD_PYTHON; exit ", status, status == 127 ? ": interpreter not found" : "", "): ", why,
                 ". ", kInstallRuntimes);
    });
  }
  try {
    version_ = parse_reply(line, "start").value("version", std::string());
  } catch (...) {  // the destructor does not run for an object whose constructor throws
    ::kill(-pid_, SIGKILL);
    reap();
    throw;
  }
}

RuntimeWorker::~RuntimeWorker() {
  if (pid_ > 0) {
    if (fd_ >= 0) {
      const char quit[] = "{\"cmd\": \"quit\"}\n";
      (void)::send(fd_, quit, sizeof quit - 1, MSG_NOSIGNAL);
      ::shutdown(fd_, SHUT_WR);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(-pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (fd_ >= 0) ::close(fd_);
}

int RuntimeWorker::reap() {
  if (pid_ <= 0) return -1;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  pid_t w;
  while ((w = waitpid(pid_, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (w == 0) {
    ::kill(-pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void RuntimeWorker::died(const std::string& during) {
  const int status = reap();
  const std::string why = last_line(read_text(dir_ + "/stderr.txt"));
  throw std::runtime_error(cat("the ", enum_name(runtime_, kRuntimeNames), " worker (", python_,
                               ") ended during ", during, " (exit ", status, ")", why.empty() ? "" : ": ",
                               why));
}

void RuntimeWorker::write_all(const std::string& bytes, const std::string& during) {
  if (fd_ < 0) throw std::runtime_error(cat("the ", enum_name(runtime_, kRuntimeNames), " worker has ended"));
  const auto deadline = deadline_after(timeout_s_);
  size_t done = 0;
  while (done < bytes.size()) {
    if (!wait_fd(fd_, POLLOUT, deadline)) timed_out(during);
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) died(during);
    done += static_cast<size_t>(n);
  }
}

void RuntimeWorker::read_exact(char* out, size_t size, const std::string& during) {
  const auto deadline = deadline_after(timeout_s_);
  size_t done = 0;
  while (done < size) {
    // whatever the line reader had already taken from the socket first
    if (!buffer_.empty()) {
      const size_t k = std::min(buffer_.size(), size - done);
      std::memcpy(out + done, buffer_.data(), k);
      buffer_.erase(0, k);
      done += k;
      continue;
    }
    if (!wait_fd(fd_, POLLIN, deadline)) timed_out(during);
    const ssize_t n = ::recv(fd_, out + done, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) died(during);
    done += static_cast<size_t>(n);
  }
}

std::string RuntimeWorker::read_line(const std::string& during) {
  if (fd_ < 0) throw std::runtime_error(cat("the ", enum_name(runtime_, kRuntimeNames), " worker has ended"));
  const auto deadline = deadline_after(timeout_s_);
  for (;;) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (buffer_.size() > (64u << 20)) died(cat(during, " (an answer line over 64 MB)"));
    if (!wait_fd(fd_, POLLIN, deadline)) timed_out(during);
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("closed");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

void RuntimeWorker::timed_out(const std::string& during) {
  if (pid_ > 0) ::kill(-pid_, SIGKILL);
  reap();
  throw std::runtime_error(cat("the ", enum_name(runtime_, kRuntimeNames), " worker (", python_,
                               ") did not answer ", during, " within ", timeout_s_,
                               " s and was killed (SKD_RUNTIME_TIMEOUT)"));
}

nlohmann::json RuntimeWorker::parse_reply(const std::string& line, const std::string& during) {
  nlohmann::json j;
  try {
    j = io::parse_json_bounded(line, "its answer");
  } catch (const io::JsonError& e) {
    throw FormatError(cat("the ", enum_name(runtime_, kRuntimeNames), " worker answered ", during,
                          " with something that is not JSON (", e.detail(), "): '", line.substr(0, 200),
                          "'"));
  }
  if (!j.is_object() || !j.value("ok", false))
    throw std::runtime_error(cat(enum_name(runtime_, kRuntimeNames), " ", version_, " refused ", during, ": ",
                                 j.is_object() ? j.value("error", std::string("?")) : line.substr(0, 200)));
  return j;
}

nlohmann::json RuntimeWorker::request(const nlohmann::json& req, const std::string& payload,
                                      std::string* reply) {
  const std::string during = cat("the request '", req.value("cmd", std::string("?")), "'",
                                 loaded_.empty() ? "" : cat(" for '", loaded_, "'"));
  auto r = req;
  if (!payload.empty()) r["bytes"] = payload.size();
  write_all(r.dump() + "\n", during);
  if (!payload.empty()) write_all(payload, during);
  std::string line;
  try {
    line = read_line(during);
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()) == "closed") died(during);
    throw;
  }
  auto j = parse_reply(line, during);
  const auto bytes = j.find("bytes");
  if (bytes != j.end()) {
    if (!bytes->is_number_unsigned() || bytes->get<uint64_t>() > (uint64_t{16} << 30))
      throw FormatError(cat("the ", enum_name(runtime_, kRuntimeNames),
                            " worker announced a bad payload size in ", during));
    std::string data(bytes->get<size_t>(), '\0');
    read_exact(data.data(), data.size(), during);
    if (reply) *reply = std::move(data);
  }
  return j;
}

namespace {

std::vector<int64_t> shape_of(const nlohmann::json& j, const std::string& what) {
  std::vector<int64_t> s;
  if (!j.is_array()) throw FormatError(cat("the runtime worker reported no shape for ", what));
  for (const auto& d : j) {
    if (!d.is_number_integer()) throw FormatError(cat("the runtime worker reported a bad shape for ", what));
    s.push_back(d.get<int64_t>());
  }
  return s;
}

}  // namespace

OnnxModelInfo RuntimeWorker::load(const std::string& onnx_path) {
  loaded_ = onnx_path;
  const auto j = request({{"cmd", "load"}, {"path", onnx_path}});
  OnnxModelInfo info;
  try {
    const auto& in = j.at("input");
    const auto& out = j.at("output");
    info.input_name = in.at("name").get<std::string>();
    info.input_type = in.value("type", std::string());
    info.input_shape = shape_of(in.at("shape"), "the input");
    info.output_name = out.at("name").get<std::string>();
    info.output_type = out.value("type", std::string());
    info.output_shape = shape_of(out.at("shape"), "the output");
    for (const auto& [k, v] : j.at("metadata").items())
      if (v.is_string()) info.metadata[k] = v.get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(cat("the runtime worker's description of '", onnx_path, "' is incomplete: ", e.what()));
  }
  input_shape_ = info.input_shape;
  return info;
}

torch::Tensor RuntimeWorker::run(const torch::Tensor& input) {
  const auto x = input.to(torch::kCPU, torch::kFloat32).contiguous();
  std::string payload(static_cast<size_t>(x.numel()) * sizeof(float), '\0');
  std::memcpy(payload.data(), x.data_ptr<float>(), payload.size());
  std::string reply;
  const auto j = request({{"cmd", "run"}, {"shape", x.sizes().vec()}}, payload, &reply);
  const auto shape = shape_of(j.value("shape", nlohmann::json()), "the output");
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n < 0 || static_cast<size_t>(n) * sizeof(float) != reply.size())
    throw FormatError(
        cat("the runtime worker's output for '", loaded_, "' has ", reply.size(), " bytes for its shape"));
  auto y = torch::empty(shape, torch::kFloat32);
  std::memcpy(y.data_ptr<float>(), reply.data(), reply.size());
  return y;
}

extract::LatencyResult RuntimeWorker::time(int64_t batch, int warmup, int repeats) {
  const auto j = request({{"cmd", "time"},
                          {"batch", batch},
                          {"shape", input_shape_},
                          {"warmup", warmup},
                          {"warmup_s", extract::kWarmupSeconds},
                          {"settle_s", extract::kSettleSeconds},
                          {"repeats", repeats}});
  extract::LatencyResult r;
  r.batch_size = batch;
  try {
    r.median_ms = j.at("median_ms").get<double>();
    r.p10_ms = j.at("p10_ms").get<double>();
    r.p90_ms = j.at("p90_ms").get<double>();
    r.images_per_s = j.at("images_per_s").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(cat("the runtime worker's timing of '", loaded_, "' is incomplete: ", e.what()));
  }
  return r;
}

nlohmann::json RuntimeWorker::quantize(const nlohmann::json& req) {
  auto r = req;
  r["cmd"] = "quantize";
  return request(r);
}

}  // namespace skd::deploy
