// SHA-256 (FIPS 180-4) for provenance hashes of input files.
#pragma once

#include <cstdint>
#include <string>

namespace skd::io {

std::string sha256_hex(const uint8_t* data, size_t size);
// Streams the file; throws std::runtime_error naming the path if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace skd::io
