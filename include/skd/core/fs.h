// File helpers: bounded whole-file reads and atomic writes (temp file, fsync, rename).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace skd {

// Reads a whole file. Throws std::runtime_error naming the path if it cannot be opened/read or
// is larger than max_bytes.
std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes = UINT64_C(1) << 40);

// Writes `size` bytes to `path` atomically: a temporary file in the same directory is written,
// fsync'ed and renamed over `path`, then the directory is fsync'ed. On any failure the temporary
// file is removed, `path` keeps its previous content, and std::runtime_error names the path.
void write_file_atomic(const std::string& path, const void* data, size_t size);
void write_file_atomic(const std::string& path, const std::string& content);

// Appends `line` plus a newline to `path` (created if missing) in one write, then fsyncs it (JSON-lines
// logs that survive a crash). Throws std::runtime_error naming the path.
void append_line_synced(const std::string& path, const std::string& line);

}  // namespace skd
