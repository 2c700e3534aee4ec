// Read-only zip archive over an in-memory image: central directory, ZIP64, stored/deflate entries.
#include "skd/io/zip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "skd/core/error.h"

namespace skd::io {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEocdSize = 22;
constexpr size_t kZip64EocdSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;
// Deflate cannot expand data by more than ~1032:1; a bigger claim is a lie.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t rd64(const uint8_t* p) { return rd32(p) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }

// zlib's length arguments are 32-bit, so large buffers go through in chunks.
uint32_t crc32_of(const uint8_t* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (size > 0) {
    const uInt n = static_cast<uInt>(std::min<size_t>(size, UINT_MAX));
    crc = crc32(crc, data, n);
    data += n;
    size -= n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

ZipArchive::ZipArchive(const uint8_t* data, size_t size, std::string source)
    : data_(data), size_(size), source_(std::move(source)) {
  parse_central_directory();
}

void ZipArchive::fail(const std::string& what) const {
  throw FormatError(cat(source_, ": zip: ", what));
}

void ZipArchive::parse_central_directory() {
  if (size_ < kEocdSize) fail(cat("file too small (", size_, " bytes) to be a zip archive"));
  // The end-of-central-directory record sits at the end, followed by a comment of <= 64 KiB.
  size_t eocd = SIZE_MAX;
  const size_t lowest = size_ - kEocdSize > 0xFFFF ? size_ - kEocdSize - 0xFFFF : 0;
  for (size_t pos = size_ - kEocdSize + 1; pos-- > lowest;) {
    if (rd32(data_ + pos) == kEocdSig && pos + kEocdSize + rd16(data_ + pos + 20) <= size_) {
      eocd = pos;
      break;
    }
  }
  if (eocd == SIZE_MAX) fail("end of central directory record not found (truncated file?)");
  const uint8_t* e = data_ + eocd;
  if (rd16(e + 4) != 0 || rd16(e + 6) != 0) fail("multi-disk archives are not supported");
  uint64_t count = rd16(e + 10);
  uint64_t cd_size = rd32(e + 12);
  uint64_t cd_offset = rd32(e + 16);
  uint64_t cd_limit = eocd;  // the central directory must end before the record describing it

  if (eocd >= kZip64LocatorSize && rd32(data_ + eocd - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint8_t* loc = data_ + eocd - kZip64LocatorSize;
    const uint64_t rec = rd64(loc + 8);
    if (rec > size_ || size_ - rec < kZip64EocdSize || rec + kZip64EocdSize > eocd)
      fail(cat("ZIP64 end of central directory offset ", rec, " is out of range"));
    const uint8_t* z = data_ + rec;
    if (rd32(z) != kZip64EocdSig) fail(cat("bad ZIP64 end of central directory at byte ", rec));
    if (rd32(z + 16) != 0 || rd32(z + 20) != 0) fail("multi-disk archives are not supported");
    count = rd64(z + 32);
    cd_size = rd64(z + 40);
    cd_offset = rd64(z + 48);
    cd_limit = rec;
  }
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
    fail(cat("central directory (offset ", cd_offset, ", ", cd_size,
             " bytes) lies outside the file"));
  if (count > cd_size / kCentralHeaderSize)
    fail(cat("central directory claims ", count, " entries in ", cd_size, " bytes"));

  entries_.reserve(static_cast<size_t>(count));
  size_t pos = static_cast<size_t>(cd_offset);
  const size_t end = static_cast<size_t>(cd_offset + cd_size);
  for (uint64_t i = 0; i < count; ++i) {
    if (end - pos < kCentralHeaderSize || rd32(data_ + pos) != kCentralHeaderSig)
      fail(cat("bad central directory header #", i, " at byte ", pos));
    const uint8_t* h = data_ + pos;
    ZipEntry entry;
    entry.flags = rd16(h + 8);
    entry.method = rd16(h + 10);
    entry.crc32 = rd32(h + 16);
    entry.compressed_size = rd32(h + 20);
    entry.size = rd32(h + 24);
    const size_t name_len = rd16(h + 28);
    const size_t extra_len = rd16(h + 30);
    const size_t comment_len = rd16(h + 32);
    entry.local_header_offset = rd32(h + 42);
    if (end - pos - kCentralHeaderSize < name_len + extra_len + comment_len)
      fail(cat("central directory header #", i, " at byte ", pos, " overruns the directory"));
    entry.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);

    // ZIP64 extra field: 64-bit values for exactly those fields saturated at 0xFFFFFFFF.
    const uint8_t* x = h + kCentralHeaderSize + name_len;
    size_t left = extra_len;
    while (left >= 4) {
      const uint16_t id = rd16(x);
      const size_t len = rd16(x + 2);
      if (len > left - 4) fail(cat("extra field of '", entry.name, "' overruns its header"));
      if (id == 0x0001) {
        const uint8_t* v = x + 4;
        size_t vleft = len;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFFu) return;
          if (vleft < 8) fail(cat("ZIP64 extra field of '", entry.name, "' is too short"));
          field = rd64(v);
          v += 8;
          vleft -= 8;
        };
        take(entry.size);
        take(entry.compressed_size);
        take(entry.local_header_offset);
      }
      x += 4 + len;
      left -= 4 + len;
    }
    if (entry.flags & 0x1) fail(cat("entry '", entry.name, "' is encrypted"));
    if (entry.local_header_offset >= size_)
      fail(cat("entry '", entry.name, "' starts at byte ", entry.local_header_offset,
               ", past the end of the ", size_, "-byte file"));
    if (entry.compressed_size > size_)
      fail(cat("entry '", entry.name, "' claims ", entry.compressed_size,
               " compressed bytes in a ", size_, "-byte file"));
    if (!by_name_.emplace(entry.name, entries_.size()).second)
      fail(cat("duplicate entry '", entry.name, "'"));
    entries_.push_back(std::move(entry));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

ByteSpan ZipArchive::read(const ZipEntry& entry, std::vector<uint8_t>& scratch) const {
  const uint64_t off = entry.local_header_offset;
  if (off > size_ || size_ - off < kLocalHeaderSize || rd32(data_ + off) != kLocalHeaderSig)
    fail(cat("bad local header for '", entry.name, "' at byte ", off));
  // The local extra field may differ in length from the central one (torch pads it for alignment).
  const uint8_t* h = data_ + off;
  const uint64_t name_len = rd16(h + 26);
  const uint64_t data_off = off + kLocalHeaderSize + name_len + rd16(h + 28);
  if (name_len != entry.name.size() ||
      std::memcmp(h + kLocalHeaderSize, entry.name.data(), entry.name.size()) != 0)
    fail(cat("local header at byte ", off, " does not match entry '", entry.name, "'"));
  if (data_off > size_ || entry.compressed_size > size_ - data_off)
    fail(cat("data of '", entry.name, "' (", entry.compressed_size, " bytes at byte ", data_off,
             ") runs past the end of the ", size_, "-byte file"));
  const uint8_t* src = data_ + data_off;
  const size_t src_size = static_cast<size_t>(entry.compressed_size);

  ByteSpan out;
  if (entry.method == 0) {
    if (entry.size != entry.compressed_size)
      fail(cat("stored entry '", entry.name, "' has size ", entry.size, " but ", src_size,
               " stored bytes"));
    out = {src, src_size};
  } else if (entry.method == 8) {
    if (entry.size / kMaxDeflateRatio > entry.compressed_size)
      fail(cat("deflated entry '", entry.name, "' claims ", entry.size, " bytes from only ",
               src_size, " compressed bytes"));
    const size_t claimed = static_cast<size_t>(entry.size);
    // Grow with the real output instead of trusting the claim up front; one byte of headroom
    // reveals a stream that inflates to more than it claims.
    scratch.clear();
    scratch.resize(std::min<size_t>(claimed + 1, size_t{1} << 16));
    z_stream zs{};
    if (inflateInit2(&zs, -15) != Z_OK) fail("zlib inflateInit2 failed");
    size_t in_done = 0, out_done = 0;
    int ret = Z_OK;
    while (true) {
      if (zs.avail_in == 0 && in_done < src_size) {
        const size_t n = std::min<size_t>(src_size - in_done, UINT_MAX);
        zs.next_in = const_cast<Bytef*>(src + in_done);
        zs.avail_in = static_cast<uInt>(n);
        in_done += n;
      }
      if (out_done == scratch.size()) {
        if (scratch.size() > claimed) break;  // produced more than claimed: reported below
        scratch.resize(std::min<size_t>(claimed + 1, scratch.size() * 2));
      }
      const size_t room = std::min<size_t>(scratch.size() - out_done, UINT_MAX);
      zs.next_out = scratch.data() + out_done;
      zs.avail_out = static_cast<uInt>(room);
      ret = inflate(&zs, Z_NO_FLUSH);
      out_done += room - zs.avail_out;
      if (ret == Z_STREAM_END) break;
      if (ret == Z_OK) continue;
      if (ret == Z_BUF_ERROR && zs.avail_out == 0) continue;  // just needs more room
      break;
    }
    inflateEnd(&zs);
    if (out_done > claimed)
      fail(cat("deflated entry '", entry.name, "' inflates to more than its ", claimed,
               " bytes"));
    if (ret != Z_STREAM_END)
      fail(cat("deflated entry '", entry.name, "' is corrupt or truncated (zlib error ", ret,
               ")"));
    if (out_done != claimed)
      fail(cat("deflated entry '", entry.name, "' inflates to ", out_done, " bytes, not ",
               claimed));
    scratch.resize(out_done);
    out = {scratch.data(), scratch.size()};
  } else {
    fail(cat("entry '", entry.name, "' uses unsupported compression method ", entry.method));
  }
  if (crc32_of(out.data, out.size) != entry.crc32)
    fail(cat("CRC mismatch in entry '", entry.name, "' (corrupt file)"));
  return out;
}

}  // namespace skd::io
