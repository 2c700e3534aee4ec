#include "skd/io/idx.h"

#include <zlib.h>

#include "skd/core/error.h"
#include "skd/core/fs.h"

namespace skd::io {

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& source, size_t max_output) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw FormatError(cat(source, ": cannot initialise zlib"));
  std::vector<uint8_t> out;
  out.resize(std::min<size_t>(std::max<size_t>(size * 4, 1 << 16), max_output));
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  int rc = Z_OK;
  while (true) {
    if (zs.total_out == out.size()) {
      if (out.size() >= max_output) {
        inflateEnd(&zs);
        throw FormatError(cat(source, ": decompressed data exceeds ", max_output, " bytes"));
      }
      out.resize(std::min(out.size() * 2, max_output));
    }
    zs.next_out = out.data() + zs.total_out;
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - zs.total_out, UINT32_MAX));
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      inflateEnd(&zs);
      throw FormatError(cat(source, ": corrupt gzip data (", zs.msg ? zs.msg : "zlib error", ")"));
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      throw FormatError(cat(source, ": truncated gzip data"));
    }
  }
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

IdxArray parse_idx(const uint8_t* d, size_t size, const std::string& source) {
  if (size < 4) throw FormatError(cat(source, ": ", size, " bytes, too short for an IDX header"));
  if (d[0] != 0 || d[1] != 0)
    throw FormatError(cat(source, ": wrong IDX magic (first two bytes must be 0)"));
  if (d[2] != 0x08)
    throw FormatError(cat(source, ": IDX element type 0x", std::hex, int{d[2]}, " is not supported (expected 0x08, unsigned byte)"));
  const int ndim = d[3];
  if (ndim < 1 || ndim > 4) throw FormatError(cat(source, ": IDX with ", ndim, " dimensions (expected 1..4)"));
  if (size < 4 + 4 * static_cast<size_t>(ndim)) throw FormatError(cat(source, ": truncated IDX header"));
  IdxArray a;
  uint64_t count = 1;
  for (int i = 0; i < ndim; ++i) {
    const uint8_t* p = d + 4 + 4 * i;
    const uint64_t n = (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | p[3];
    a.shape.push_back(static_cast<int64_t>(n));
    count *= n;
    if (count > (uint64_t{1} << 40)) throw FormatError(cat(source, ": IDX dimensions too large"));
  }
  const size_t offset = 4 + 4 * static_cast<size_t>(ndim);
  if (size - offset != count)
    throw FormatError(cat(source, ": IDX dimensions need ", count, " bytes of data but the file has ", size - offset,
                          size - offset < count ? " (truncated)" : " (trailing bytes)"));
  a.data.assign(d + offset, d + size);
  return a;
}

IdxArray read_idx(const std::string& path) {
  const auto raw = read_file_bytes(path);
  if (raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
    const auto plain = gunzip(raw.data(), raw.size(), path);
    return parse_idx(plain.data(), plain.size(), path);
  }
  return parse_idx(raw.data(), raw.size(), path);
}

}  // namespace skd::io
