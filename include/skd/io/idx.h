// IDX files (the MNIST / Fashion-MNIST container), plain or gzip-compressed, torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace skd::io {

struct IdxArray {
  std::vector<int64_t> shape;  // e.g. [60000, 28, 28] or [60000]
  std::vector<uint8_t> data;   // unsigned-byte elements only (type code 0x08)
};

// Parses an (already decompressed) IDX image. Throws skd::FormatError naming `source` on a wrong
// magic, an unsupported element type, or a size that disagrees with the dimensions.
IdxArray parse_idx(const uint8_t* data, size_t size, const std::string& source);
// Reads a .gz (detected by content) or plain IDX file.
IdxArray read_idx(const std::string& path);

// gunzip with a hard output limit (throws skd::FormatError on corrupt input or over the limit).
std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& source,
                            size_t max_output = size_t{1} << 32);

}  // namespace skd::io
