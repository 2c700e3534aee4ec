// Fuzz target: the restricted pickle machine alone (skd::io::parse_pickle) on one data.pkl stream,
// without the zip container and its CRCs in the way, then the state-dict extraction. Storages
// "0".."15" exist with 4 KiB each, so pickles with small tensors reach the tensor rebuild path.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/io/pth.h"

namespace {

const std::map<std::string, std::vector<uint8_t>>& storages() {
  static const auto* s = [] {
    auto* m = new std::map<std::string, std::vector<uint8_t>>;
    for (int k = 0; k < 16; ++k) {
      std::vector<uint8_t> bytes(4096);
      for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + k);
      (*m)[std::to_string(k)] = std::move(bytes);
    }
    return m;
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skd::fuzz::run_expecting<skd::FormatError>("pickle", [&] {
    const auto root = skd::io::parse_pickle(data, size, "fuzz/data.pkl", storages());
    const auto tensors = skd::io::pth_state_dict(root, "fuzz/data.pkl");
    for (const auto& [key, t] : tensors)
      if (t.data.size() != static_cast<size_t>(t.numel()) * skd::io::dtype_size(t.dtype))
        skd::fuzz::finding("pickle", "a tensor's bytes disagree with its shape and dtype");
  });
  return 0;
}
