// The deployment runtimes a sub-network is measured in: LibTorch (the toolkit's own eager forward),
// onnxruntime and OpenVINO. The latter two are driven through the project's runtimes environment
// (scripts/setup_venv.sh --runtimes): RuntimeWorker runs python/skd_runtime.py (embedded in the library)
// as a child process and talks to it over pipes, so one session serves a whole evaluation or latency
// sweep. Why Python and not the runtimes' C++ APIs: docs/decisions.md, "Deployment runtimes".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "skd/deploy/runtime_names.h"
#include "skd/extract/latency_table.h"

namespace skd::deploy {

struct WorkerOptions {
  std::string python;  // empty: $SKD_PYTHON, else python3
  int threads = 1;     // the runtime's intra-op threads
  // Seconds one request may take before the worker is killed ($SKD_RUNTIME_TIMEOUT, default 600).
  double timeout_s = 0;
};

// What a runtime reports about a loaded ONNX model. Shapes: -1 for a dynamic dimension.
struct OnnxModelInfo {
  std::string input_name, input_type, output_name, output_type;
  std::vector<int64_t> input_shape, output_shape;
  std::map<std::string, std::string> metadata;  // metadata_props
};

// "[?,3,32,32]": a shape as the worker reports it (-1, a dynamic dimension, as "?").
std::string shape_text(const std::vector<int64_t>& shape);

// The version of `runtime` (a kRuntimeNames name) that runs here: this build's LibTorch, or what the
// worker started with `python` reports (errors as RuntimeWorker's).
std::string installed_runtime_version(const std::string& runtime, const std::string& python);

// One onnxruntime or OpenVINO session in a child Python process. Not copyable; the process ends with
// the object. Errors: skd::ParameterFailure naming `python` when the interpreter cannot be run or lacks
// the runtime (the message says how to install it, kInstallRuntimes), std::runtime_error with the
// worker's message for a request it refused (naming the request), and when a request outlives
// timeout_s (the worker is killed).
class RuntimeWorker {
 public:
  RuntimeWorker(Runtime runtime, const WorkerOptions& options);
  ~RuntimeWorker();
  RuntimeWorker(const RuntimeWorker&) = delete;
  RuntimeWorker& operator=(const RuntimeWorker&) = delete;

  Runtime runtime() const { return runtime_; }
  const std::string& version() const { return version_; }
  const std::string& python() const { return python_; }
  int threads() const { return threads_; }

  // Loads (replaces) the session's model from an .onnx file.
  OnnxModelInfo load(const std::string& onnx_path);
  // Runs the loaded model on a float32 CPU tensor; returns its first output (float32).
  torch::Tensor run(const torch::Tensor& input);
  // The loaded model's latency at `batch` on random input of the model's input shape (batch replaced).
  extract::LatencyResult time(int64_t batch, int warmup, int repeats);
  // Static int8 quantization (onnxruntime only): the request is passed as given (python/skd_runtime.py,
  // "quantize"); returns the worker's answer.
  nlohmann::json quantize(const nlohmann::json& request);

 private:
  nlohmann::json request(const nlohmann::json& req, const std::string& payload = {},
                         std::string* reply = nullptr);
  nlohmann::json parse_reply(const std::string& line, const std::string& during);
  void write_all(const std::string& bytes, const std::string& during);
  void read_exact(char* out, size_t size, const std::string& during);
  std::string read_line(const std::string& during);
  int reap();  // waits for (or kills) the worker; its exit status
  [[noreturn]] void died(const std::string& during);
  [[noreturn]] void timed_out(const std::string& during);

  Runtime runtime_;
  std::string python_, version_, dir_;
  std::shared_ptr<void> temp_;  // the temporary folder with the script and the worker's stderr
  int threads_ = 1;
  double timeout_s_ = 600;
  pid_t pid_ = -1;
  int fd_ = -1;         // our end of the socket pair (the worker's stdin and stdout)
  std::string buffer_;  // read from the socket, not yet consumed
  std::vector<int64_t> input_shape_;
  std::string loaded_;
};

}  // namespace skd::deploy
