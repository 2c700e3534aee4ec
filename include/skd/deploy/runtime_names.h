// The names of the deployment runtimes (skd/deploy/runtime.h drives them), for options and files that
// name one without needing the worker.
#pragma once

#include <string>
#include <utility>

namespace skd::deploy {

enum class Runtime { LIBTORCH, ONNXRUNTIME, OPENVINO };
inline constexpr std::pair<const char*, Runtime> kRuntimeNames[] = {
    {"libtorch", Runtime::LIBTORCH}, {"onnxruntime", Runtime::ONNXRUNTIME}, {"openvino", Runtime::OPENVINO}};

// The version of LibTorch this build runs ("1.13.1", "2.11.0").
std::string libtorch_version();

// How to get the runtimes (said in every error about a missing one).
inline constexpr const char* kInstallRuntimes =
    "bash scripts/setup_venv.sh --runtimes (prints the environment's folder; then pass --python "
    "<that folder>/bin/python or set SKD_PYTHON), or pip install onnxruntime onnx openvino numpy into "
    "that Python";

}  // namespace skd::deploy
