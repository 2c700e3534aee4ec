// The runtime worker's protocol against hostile children (no runtime needed: stand-in interpreters
// written here), and the errors a user sees for a missing interpreter or runtime. The runtimes
// themselves are exercised by tests/e2e/runtimes.sh.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>

#include "skd/core/error.h"
#include "skd/deploy/process.h"
#include "skd/deploy/runtime.h"
#include "test_util.h"

using namespace skd;
using namespace skd::deploy;

namespace {

// An executable stand-in for the interpreter: `body` is a shell script that receives the worker's
// arguments and talks over stdin/stdout.
std::string fake_python(const std::string& name, const std::string& body) {
  const std::string path = test::scratch_dir("deploy_runtime") + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

WorkerOptions with(const std::string& python, double timeout_s = 5) {
  WorkerOptions o;
  o.python = python;
  o.timeout_s = timeout_s;
  return o;
}

}  // namespace

TEST(RuntimeWorker, MissingInterpreterSaysHowToInstall) {
  const auto msg = test::error_of<ParameterFailure>(
      [] { RuntimeWorker(Runtime::ONNXRUNTIME, with("/nonexistent/python3")); });
  EXPECT_NE(msg.find("'/nonexistent/python3'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("setup_venv.sh --runtimes"), std::string::npos) << msg;
}

TEST(RuntimeWorker, RuntimeNotInstalledSaysHowToInstall) {
  // Exit 3 with a message: what python/skd_runtime.py does when the import fails.
  const auto py = fake_python(
      "no_runtime", "echo \"cannot import onnxruntime (No module named 'onnxruntime')\" >&2; exit 3");
  const auto msg = test::error_of<ParameterFailure>([&] { RuntimeWorker(Runtime::ONNXRUNTIME, with(py)); });
  EXPECT_NE(msg.find("onnxruntime is not installed in the Python interpreter '" + py + "'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("No module named 'onnxruntime'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("setup_venv.sh --runtimes"), std::string::npos) << msg;
}

TEST(RuntimeWorker, AWorkerThatDiesOrLiesIsAnError) {
  // Answers the start, then exits on the first request.
  const auto dies =
      fake_python("dies", "echo '{\"ok\": true, \"version\": \"9.9\"}'; read line; echo boom >&2; exit 7");
  RuntimeWorker w(Runtime::OPENVINO, with(dies));
  EXPECT_EQ(w.version(), "9.9");
  const auto msg = test::error_of<std::runtime_error>([&] { w.load("model.onnx"); });
  EXPECT_NE(msg.find("the openvino worker (" + dies +
                     ") ended during the request 'load' for 'model.onnx' (exit 7): boom"),
            std::string::npos)
      << msg;
  // Not JSON, a refusal, a payload size it cannot have.
  const auto garbage = fake_python("garbage", "echo 'hello'");
  const auto g = test::error_of<FormatError>([&] { RuntimeWorker(Runtime::ONNXRUNTIME, with(garbage)); });
  EXPECT_NE(g.find("not JSON"), std::string::npos) << g;
  const auto refuses = fake_python("refuses",
                                   "echo '{\"ok\": true, \"version\": \"1\"}'; read line; echo '{\"ok\": "
                                   "false, \"error\": \"ValueError: nope\"}'; sleep 1");
  RuntimeWorker r(Runtime::ONNXRUNTIME, with(refuses));
  const auto rm = test::error_of<std::runtime_error>([&] { r.load("m.onnx"); });
  EXPECT_NE(rm.find("onnxruntime 1 refused the request 'load' for 'm.onnx': ValueError: nope"),
            std::string::npos)
      << rm;
  const auto huge = fake_python("huge",
                                "echo '{\"ok\": true, \"version\": \"1\"}'; read line; echo '{\"ok\": true, "
                                "\"shape\": [1], \"bytes\": -5}'; sleep 1");
  RuntimeWorker h(Runtime::ONNXRUNTIME, with(huge));
  const auto hm = test::error_of<FormatError>([&] { h.run(torch::zeros({1, 1, 2, 2})); });
  EXPECT_NE(hm.find("bad payload size"), std::string::npos) << hm;
}

TEST(RuntimeWorker, AHungWorkerIsKilledAfterTheTimeout) {
  const auto hangs = fake_python("hangs", "echo '{\"ok\": true, \"version\": \"1\"}'; read line; sleep 60");
  RuntimeWorker w(Runtime::ONNXRUNTIME, with(hangs, 0.5));
  const auto start = std::chrono::steady_clock::now();
  const auto msg = test::error_of<std::runtime_error>([&] { w.time(1, 1, 1); });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(msg.find("did not answer the request 'time' within 0.5 s and was killed"), std::string::npos)
      << msg;
  EXPECT_LT(s, 10.0);
}

TEST(RuntimeWorker, ShapesAndInterpreterDefaults) {
  EXPECT_EQ(shape_text({-1, 3, 32, 32}), "[?,3,32,32]");
  EXPECT_EQ(resolve_python("/x/python"), "/x/python");
  EXPECT_EQ(installed_runtime_version("libtorch", ""), libtorch_version());
  EXPECT_THROW(installed_runtime_version("tensorrt", ""), ParameterError);
}
