// Read-only zip archive over an in-memory image (central directory, ZIP64, stored/deflate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace skd::io {

// A borrowed byte range; valid as long as whatever owns the bytes.
struct ByteSpan {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

struct ZipEntry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;  // uncompressed
  uint64_t local_header_offset = 0;
};

// Parses the central directory at construction; every offset and size is validated against the
// image before use. The image must outlive the archive. Errors are skd::FormatError whose message
// starts with `source`.
class ZipArchive {
 public:
  ZipArchive(const uint8_t* data, size_t size, std::string source);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const ZipEntry* find(const std::string& name) const;

  // The entry's uncompressed bytes, CRC-checked. Stored entries come back as a view into the image
  // (no copy); deflated ones are inflated into `scratch`, which then owns the returned bytes.
  ByteSpan read(const ZipEntry& entry, std::vector<uint8_t>& scratch) const;

  const std::string& source() const { return source_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  void parse_central_directory();

  const uint8_t* data_;
  size_t size_;
  std::string source_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace skd::io
