// Fuzz target: the safetensors reader (skd::io::parse_safetensors) on arbitrary bytes. Whatever it
// accepts must also survive the canonical writer and read back to the same tensors and metadata.
#include <cstdint>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skd::fuzz::run_expecting<skd::FormatError>("safetensors", [&] {
    const auto content = skd::io::parse_safetensors(data, size, "fuzz.safetensors");
    const auto bytes = skd::io::serialize_safetensors(content);
    const auto again = skd::io::parse_safetensors(bytes.data(), bytes.size(), "fuzz.roundtrip");
    if (again.metadata != content.metadata || again.tensors.size() != content.tensors.size())
      skd::fuzz::finding("safetensors", "round trip changed the metadata or the tensor count");
    for (const auto& [key, t] : content.tensors) {
      const auto it = again.tensors.find(key);
      if (it == again.tensors.end() || it->second.dtype != t.dtype ||
          it->second.shape != t.shape || it->second.data != t.data)
        skd::fuzz::finding("safetensors", "round trip changed a tensor");
    }
  });
  return 0;
}
