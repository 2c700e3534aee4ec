#include "skd/export/parity.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/deploy/process.h"
#include "skd/io/json.h"
#include "skd/io/safetensors.h"
#include "skd/models/checkpoint.h"
#include "skd_onnx_check_script.h"  // kOnnxCheckScript: python/skd_onnx_check.py, embedded at build time

namespace skd::exporter {

using deploy::last_line;
using deploy::read_text;
using deploy::run_process;
using deploy::TempDir;

namespace {

// The checker's result line (python/skd_onnx_check.py prints one JSON object on its last stdout line):
// {"max_abs_diff": number, "onnxruntime": string, "inputs": {name: [batch, ...dims], ...}}. Anything
// else is a skd::FormatError naming the checker.
void parse_checker_result(const std::string& line, const std::string& checker, ParityResult& result) {
  const auto bad = [&](const std::string& why) {
    return FormatError(cat("the onnxruntime parity check (", checker, ") printed an unexpected result: ", why,
                           " (last line of its output: '", line.substr(0, 200), "')"));
  };
  nlohmann::json j;
  try {
    j = io::parse_json_bounded(line, "its result");
  } catch (const io::JsonError& e) {
    throw bad(e.detail());
  }
  if (!j.is_object()) throw bad("not a JSON object");
  const auto diff = j.find("max_abs_diff");
  const auto ort = j.find("onnxruntime");
  const auto inputs = j.find("inputs");
  if (diff == j.end() || !(diff->is_number() || diff->is_null())) throw bad("'max_abs_diff' is not a number");
  if (ort == j.end() || !ort->is_string()) throw bad("'onnxruntime' is not a string");
  if (inputs == j.end() || !inputs->is_object() || inputs->empty())
    throw bad("'inputs' is not a non-empty object");
  result.max_abs_diff = diff->is_null() ? INFINITY : diff->get<double>();
  result.onnxruntime_version = ort->get<std::string>();
  for (const auto& [name, shape] : inputs->items()) {
    if (!shape.is_array() || shape.empty()) throw bad(cat("input '", name, "' has no shape"));
    std::vector<int64_t> dims;
    for (const auto& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        throw bad(cat("input '", name, "' has a bad dimension"));
      dims.push_back(d.get<int64_t>());
    }
    result.inputs.push_back(dims);
  }
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += cat(i ? "," : "", s[i]);
  return out + "]";
}

}  // namespace

std::string ParityResult::line() const {
  char diff[32], tol[32];
  std::snprintf(diff, sizeof diff, "%.3g", max_abs_diff);
  std::snprintf(tol, sizeof tol, "%.0e", tolerance);
  std::string in;
  for (const auto& s : inputs) in += cat(in.empty() ? "" : " ", shape_text(s));
  return cat("parity: max |logit diff| ", diff, passed() ? " <= " : " > ", tol, " on inputs ", in,
             ", onnxruntime ", onnxruntime_version, " (", python, ")");
}

ParityResult check_parity(models::ElasticModelImpl& model, const std::string& onnx_bytes,
                          const ParityOptions& options) {
  if (options.batches.empty()) throw std::invalid_argument("parity check: no batch sizes");
  const auto& c = model.config();
  ParityResult result;
  result.python = resolve_python(options.python);
  result.tolerance = options.tolerance;
  TempDir dir;
  write_file_atomic(dir.file("model.onnx"), onnx_bytes.data(), onnx_bytes.size());
  write_file_atomic(dir.file("skd_onnx_check.py"), kOnnxCheckScript);
  {
    model.eval();
    torch::NoGradGuard guard;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    io::SafetensorsContent data;
    for (int64_t b : options.batches) {
      const std::vector<int64_t> shape = {b, c.in_chans, c.img_size, c.img_size};
      torch::Tensor x, graph_x;
      if (options.input == data::GraphInput::NORMALIZED) {
        x = graph_x = torch::randn(shape, gen, torch::kFloat32);
      } else {  // pixels: the graph normalizes them itself, the C++ forward gets them normalized here
        const auto pixels = torch::randint(0, 256, shape, gen, torch::kUInt8);
        const auto unit = pixels.to(torch::kFloat32).div(255.0);
        x = (unit - data::channel_tensor(options.mean)) / data::channel_tensor(options.std);
        graph_x = options.input == data::GraphInput::UINT8 ? pixels : unit;
      }
      auto y = model.forward(x);
      data.tensors.emplace(cat("input.b", b), models::record_from_tensor(graph_x));
      data.tensors.emplace(cat("expected.b", b), models::record_from_tensor(y));
    }
    io::write_safetensors(dir.file("data.safetensors"), data);
  }
  const int rc = run_process(
      {result.python, dir.file("skd_onnx_check.py"), dir.file("model.onnx"), dir.file("data.safetensors"),
       "--threads", std::to_string(options.threads)},
      dir.file("out.txt"), dir.file("err.txt"),
      [](const KeyNamer& name) { return cat("the Python interpreter (", name("python"), " / SKD_PYTHON)"); },
      deploy::seconds_from_env("SKD_ONNX_CHECK_TIMEOUT", 600.0), "the onnxruntime parity check");
  const std::string err = last_line(read_text(dir.file("err.txt")));
  if (rc == 3)
    throw ParameterFailure([=](const KeyNamer& name) {
      return cat(name("verify"), " needs onnxruntime in the Python interpreter '", result.python, "' (", err,
                 "). Install it: `bash scripts/setup_venv.sh --runtimes` (prints the environment's folder on "
                 "its last line), "
                 "then pass ",
                 name("python"),
                 " <that folder>/bin/python (or set SKD_PYTHON); or `pip install "
                 "onnxruntime numpy` into that Python");
    });
  if (rc != 0)
    throw std::runtime_error(cat("the onnxruntime parity check with '", result.python, "' failed (exit ", rc,
                                 rc == 127 ? ": interpreter not found" : "", "): ", err));
  parse_checker_result(last_line(read_text(dir.file("out.txt"))), cat(result.python, " skd_onnx_check.py"),
                       result);
  // Larger batches first, as the inputs were made.
  std::sort(result.inputs.begin(), result.inputs.end(),
            [](const auto& a, const auto& b) { return a[0] > b[0]; });
  if (!std::isfinite(result.max_abs_diff)) result.max_abs_diff = INFINITY;
  return result;
}

}  // namespace skd::exporter
