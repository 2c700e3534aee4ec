// Reader for PyTorch `torch.save` checkpoints (zip archive with data.pkl + data/<key> storages,
// whatever the archive's top folder is called). A restricted pickle machine rebuilds the object
// tree: dicts/OrderedDicts, lists, tuples, scalars, strings, tensors; any other Python object
// (argparse.Namespace, numpy scalars, ...) is kept as an opaque value, never executed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "skd/io/tensor_record.h"

namespace skd::io {

struct PyValue;
using PyValuePtr = std::shared_ptr<PyValue>;

struct PyNone {};
struct PyList {  // list or tuple
  bool is_tuple = false;
  std::vector<PyValuePtr> items;
};
struct PyDict {  // dict or OrderedDict, insertion-ordered
  std::vector<std::pair<PyValuePtr, PyValuePtr>> items;
};
struct PyObject {  // any other object: its class path and the arguments it was built from
  std::string cls;  // "module.name"
  std::vector<PyValuePtr> args;
  PyValuePtr state;  // from BUILD, may be null
};
struct PyBytes {
  std::vector<uint8_t> data;
};

struct PyValue {
  std::variant<PyNone, bool, int64_t, double, std::string, PyBytes, PyList, PyDict, PyObject,
               TensorRecord>
      v;
};

// Parses a torch.save image held in memory: the zip archive of torch >= 1.6 or the legacy pre-1.6
// pickle stream. `source` names the file in error messages. Throws skd::FormatError on anything
// malformed, including tensors that point outside their storage.
PyValuePtr parse_pth(const uint8_t* data, size_t size, const std::string& source);
PyValuePtr read_pth(const std::string& path);

// The pickle machine alone on one data.pkl stream, with the storages that a torch.save archive
// keeps as data/<key> given by key. For fuzzing and tests (no zip CRC in the way).
PyValuePtr parse_pickle(const uint8_t* data, size_t size, const std::string& source,
                        const std::map<std::string, std::vector<uint8_t>>& storages);

// The state_dict inside a checkpoint: the dict under "model" or "state_dict" when the top level
// has one (official DeiT/Swin layout), otherwise the top-level dict itself. Only tensor entries are
// returned. `wrapper` receives "model", "state_dict" or "" when non-null.
TensorMap pth_state_dict(const PyValuePtr& root, const std::string& source,
                         std::string* wrapper = nullptr);
TensorMap read_pth_state_dict(const std::string& path, std::string* wrapper = nullptr);

}  // namespace skd::io
