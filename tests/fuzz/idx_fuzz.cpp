// Fuzz target: the IDX reader (skd::io::parse_idx) and, for gzip input (1f 8b), the bounded gunzip
// that read_idx puts in front of it, on arbitrary bytes.
#include <cstdint>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skd::fuzz::run_expecting<skd::FormatError>("idx", [&] {
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
      const auto plain = skd::io::gunzip(data, size, "fuzz.idx.gz");
      const auto a = skd::io::parse_idx(plain.data(), plain.size(), "fuzz.idx.gz");
      (void)a;
    } else {
      const auto a = skd::io::parse_idx(data, size, "fuzz.idx");
      uint64_t count = 1;
      for (int64_t d : a.shape) count *= static_cast<uint64_t>(d);
      if (count != a.data.size()) skd::fuzz::finding("idx", "element count disagrees with the shape");
    }
  });
  return 0;
}
