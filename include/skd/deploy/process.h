// The helpers that leave the process: a temporary folder that removes itself, a child program run with
// its output in files and a time limit (the onnxruntime parity check, skd/export/parity.h, runs Python
// through them), and the Python interpreter the runtimes are driven with (skd/deploy/runtime.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "skd/core/error.h"

namespace skd::deploy {

// A temporary folder under $TMPDIR (else /tmp), removed with everything in it when the object goes.
// std::runtime_error when it cannot be created.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The whole content of a file ("" when it cannot be read).
std::string read_text(const std::string& path);
// The last line of `text`, trailing newlines dropped.
std::string last_line(std::string text);

// Runs argv (PATH lookup for argv[0]) in its own process group, stdin from /dev/null, stdout/stderr into
// the files `out` and `err`; returns the exit status (128 + signal when killed). A process that runs
// longer than `timeout_s` is killed with its whole process group, and std::runtime_error says that
// `label` (argv[0] argv[1]) did not finish. Throws skd::ParameterFailure when it cannot be started
// (`what` names the program, by config keys).
// Seconds from the environment variable `name` (a positive number; a test seam, documented in
// docs/reliability.md), else `fallback`.
double seconds_from_env(const char* name, double fallback);

// The interpreter for the runtimes and the parity check: `flag` if given, else $SKD_PYTHON, else "python3".
std::string resolve_python(const std::string& flag);

int run_process(const std::vector<std::string>& argv, const std::string& out, const std::string& err,
                const std::function<std::string(const KeyNamer&)>& what, double timeout_s,
                const std::string& label);

}  // namespace skd::deploy
