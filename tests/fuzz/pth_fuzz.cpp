// Fuzz target: a whole torch.save file (zip archive of torch >= 1.6, or the legacy pre-1.6 pickle
// stream) through skd::io::parse_pth and the state-dict extraction the checkpoint loader uses.
#include <cstdint>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/io/pth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skd::fuzz::run_expecting<skd::FormatError>("pth", [&] {
    const auto root = skd::io::parse_pth(data, size, "fuzz.pth");
    std::string wrapper;
    const auto tensors = skd::io::pth_state_dict(root, "fuzz.pth", &wrapper);
    for (const auto& [key, t] : tensors)
      if (t.data.size() != static_cast<size_t>(t.numel()) * skd::io::dtype_size(t.dtype))
        skd::fuzz::finding("pth", "a tensor's bytes disagree with its shape and dtype");
  });
  return 0;
}
