// safetensors reader/writer (https://github.com/huggingface/safetensors format: u64 LE header
// length, JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, data).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "skd/io/tensor_record.h"

namespace skd::io {

struct SafetensorsContent {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" object
};

// Parses a safetensors image held in memory. `source` names the file in error messages.
// Throws skd::FormatError for anything malformed (truncated, header lying about sizes or offsets,
// overlapping or out-of-range data, unknown dtype, duplicate keys, non-string metadata...).
SafetensorsContent parse_safetensors(const uint8_t* data, size_t size, const std::string& source);
SafetensorsContent read_safetensors(const std::string& path);

// Serializes with keys in sorted order, data in key order, header space-padded to 8 bytes.
std::vector<uint8_t> serialize_safetensors(const SafetensorsContent& content);
// Atomic write (temp + fsync + rename).
void write_safetensors(const std::string& path, const SafetensorsContent& content);

}  // namespace skd::io
