// Torch-free tensor records: what the file parsers (safetensors, .pth) produce and consume.
// Keeping the parsers free of LibTorch makes them fast to build, fuzz and test.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace skd::io {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

// Bytes per element.
size_t dtype_size(DType dtype);
// safetensors spelling: "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL".
const char* dtype_name(DType dtype);
std::optional<DType> dtype_from_name(std::string_view name);

struct TensorRecord {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // contiguous, row-major, little-endian; size == numel * dtype_size

  int64_t numel() const;
};

// Tensors by key (sorted).
using TensorMap = std::map<std::string, TensorRecord>;

}  // namespace skd::io
