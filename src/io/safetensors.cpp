// safetensors reader/writer: strict, allocation-safe parsing of untrusted files; canonical writing.
#include "skd/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/io/json.h"

namespace skd::io {

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = UINT64_C(100) << 20;
// Root object (1) > tensor entry or "__metadata__" (2) > shape / data_offsets arrays (3).
// Anything deeper cannot be valid, and refusing it early keeps hostile headers from building
// deep DOMs.
constexpr size_t kMaxNesting = 3;
constexpr const char* kMetadataKey = "__metadata__";

// Keys and values come from untrusted files: keep messages bounded and on one line.
std::string printable(std::string_view s, size_t limit = 200) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += cat("...(", s.size(), " bytes)");
  return out;
}

// A short rendering of a JSON value for "found ..." in messages.
std::string describe(const json& j) {
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return cat(j.type_name(), " ", printable(text));
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i == 16) {
      out += cat(",...(", shape.size(), " dims)");
      break;
    }
    if (i) out += ",";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::string dtype_list() {
  std::string out;
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U8, DType::Bool}) {
    if (!out.empty()) out += ", ";
    out += dtype_name(d);
  }
  return out;
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

// Byte size of a tensor; nullopt if the element count exceeds int64 or the byte count exceeds
// uint64. Dims of size 0 are left out of the overflow check so that every dim's stride (the
// product of the dims after it) is known to fit in int64 too.
std::optional<uint64_t> tensor_nbytes(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t nonzero_product = 1;
  bool has_zero = false;
  for (int64_t d : shape) {
    if (d == 0) {
      has_zero = true;
      continue;
    }
    if (!checked_mul(nonzero_product, static_cast<uint64_t>(d), &nonzero_product) ||
        nonzero_product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return std::nullopt;
  }
  uint64_t bytes = 0;
  if (!checked_mul(nonzero_product, dtype_size(dtype), &bytes)) return std::nullopt;
  return has_zero ? 0 : bytes;
}

template <typename... Args>
[[noreturn]] void fail(const std::string& source, Args&&... args) {
  throw FormatError(cat(printable(source, 1000), ": ", std::forward<Args>(args)...));
}

// First pass over the header: nlohmann's DOM parser keeps the last of duplicate keys silently
// (and its callback mode rescans the parent object at every object end, quadratic on hostile
// headers), so duplicates and excessive nesting are caught here with a plain SAX handler.
class HeaderScreen : public nlohmann::json_sax<json> {
 public:
  std::string error;  // empty unless the scan stopped on a problem

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }

  bool start_object(std::size_t) override { return push(); }
  bool start_array(std::size_t) override { return push(); }
  bool end_object() override { return pop(); }
  bool end_array() override { return pop(); }

  bool key(string_t& k) override {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      if (frames_.size() == 1)
        error = cat("duplicate tensor key '", printable(k), "' in header");
      else if (!frames_.front().last_key.empty())
        error = cat("duplicate field '", printable(k), "' inside '",
                    printable(frames_.front().last_key), "'");
      else
        error = cat("duplicate field '", printable(k), "' in header");
      return false;
    }
    f.last_key = k;
    return true;
  }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error = cat("header is not valid JSON: ", ex.what());
    return false;
  }

 private:
  struct Frame {  // one per open object or array; keys stay empty for arrays
    std::unordered_set<std::string> keys;
    std::string last_key;
  };
  std::vector<Frame> frames_;

  bool push() {
    if (frames_.size() >= kMaxNesting) {
      error = cat("header nests deeper than ", kMaxNesting,
                  " levels; safetensors headers are {name: {dtype, shape: [...], "
                  "data_offsets: [...]}}");
      return false;
    }
    frames_.emplace_back();
    return true;
  }
  bool pop() {
    frames_.pop_back();
    return true;
  }
};

struct PendingTensor {
  std::string key;
  TensorRecord record;  // data still empty
  uint64_t begin, end;
};

// JSON integers >= 0 (nlohmann stores "-0" as a signed integer, which is still fine here).
std::optional<uint64_t> as_non_negative(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0)
    return static_cast<uint64_t>(j.get<int64_t>());
  return std::nullopt;
}

uint64_t read_le_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

PendingTensor parse_entry(const std::string& source, const std::string& key, const json& entry,
                          uint64_t data_size) {
  const std::string where = cat("tensor '", printable(key), "': ");
  if (!entry.is_object())
    fail(source, where, "entry must be an object {\"dtype\", \"shape\", \"data_offsets\"}, found ",
         describe(entry));
  for (const auto& [field, value] : entry.items()) {
    (void)value;
    if (field != "dtype" && field != "shape" && field != "data_offsets")
      fail(source, where, "unexpected field '", printable(field),
           "' (expected only \"dtype\", \"shape\", \"data_offsets\")");
  }
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field)) fail(source, where, "missing field \"", field, "\"");

  PendingTensor t{key, {}, 0, 0};

  const json& dtype = entry.at("dtype");
  if (!dtype.is_string())
    fail(source, where, "\"dtype\" must be a string, found ", describe(dtype));
  const auto parsed_dtype = dtype_from_name(dtype.get_ref<const std::string&>());
  if (!parsed_dtype)
    fail(source, where, "unknown dtype '", printable(dtype.get_ref<const std::string&>()),
         "' (expected one of ", dtype_list(), ")");
  t.record.dtype = *parsed_dtype;

  const json& shape = entry.at("shape");
  if (!shape.is_array())
    fail(source, where, "\"shape\" must be an array of non-negative integers, found ",
         describe(shape));
  t.record.shape.reserve(shape.size());  // bounded by the header size already in memory
  for (size_t i = 0; i < shape.size(); ++i) {
    const auto d = as_non_negative(shape[i]);
    if (!d || *d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(source, where, "shape[", i, "] must be a non-negative integer below 2^63, found ",
           describe(shape[i]));
    t.record.shape.push_back(static_cast<int64_t>(*d));
  }
  const auto nbytes = tensor_nbytes(t.record.shape, t.record.dtype);
  if (!nbytes)
    fail(source, where, "shape ", shape_str(t.record.shape), " with dtype ",
         dtype_name(t.record.dtype), " is too large (element or byte count overflows)");

  const json& offsets = entry.at("data_offsets");
  const bool pair = offsets.is_array() && offsets.size() == 2;
  const auto begin = pair ? as_non_negative(offsets[0]) : std::nullopt;
  const auto end = pair ? as_non_negative(offsets[1]) : std::nullopt;
  if (!begin || !end)
    fail(source, where, "\"data_offsets\" must be [begin, end] with non-negative integers, found ",
         describe(offsets));
  t.begin = *begin;
  t.end = *end;
  if (t.begin > t.end)
    fail(source, where, "data_offsets [", t.begin, ", ", t.end, ") have begin after end");
  if (t.end > data_size)
    fail(source, where, "data_offsets [", t.begin, ", ", t.end, ") exceed the data block of ",
         data_size, " bytes (file truncated or header wrong)");
  if (t.end - t.begin != *nbytes)
    fail(source, where, "data_offsets [", t.begin, ", ", t.end, ") hold ", t.end - t.begin,
         " bytes but dtype ", dtype_name(t.record.dtype), " and shape ",
         shape_str(t.record.shape), " need ", *nbytes);
  return t;
}

void parse_metadata(const std::string& source, const json& meta,
                    std::map<std::string, std::string>* out) {
  if (!meta.is_object())
    fail(source, "\"", kMetadataKey, "\" must be an object of strings, found ", describe(meta));
  for (const auto& [k, v] : meta.items()) {
    if (!v.is_string())
      fail(source, "\"", kMetadataKey, "\" value for '", printable(k),
           "' must be a string, found ", describe(v));
    out->emplace(k, v.get<std::string>());
  }
}

}  // namespace

SafetensorsContent parse_safetensors(const uint8_t* data, size_t size, const std::string& source) {
  if (size < 8)
    fail(source, "file is ", size, " bytes, too short for the 8-byte header length");
  const uint64_t header_len = read_le_u64(data);
  if (header_len > size - 8)
    fail(source, "header length ", header_len, " exceeds the ", size - 8,
         " bytes that follow the length field (file truncated or not safetensors)");
  if (header_len > kMaxHeaderBytes)
    fail(source, "header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes,
         " bytes (100 MiB)");

  const uint8_t* header_begin = data + 8;
  const uint8_t* header_end = header_begin + header_len;
  const uint8_t* block = header_end;
  const uint64_t data_size = size - 8 - header_len;

  HeaderScreen screen;
  bool screened = false;
  try {
    screened = json::sax_parse(header_begin, header_end, &screen);
  } catch (const json::exception& e) {
    fail(source, "header is not valid JSON: ", e.what());
  }
  if (!screened || !screen.error.empty())
    fail(source, screen.error.empty() ? std::string("header is not valid JSON") : screen.error);

  // The screen above already refused deep nesting and duplicate keys; the one bounded parser of
  // skd/io/json.h builds the value.
  json header;
  try {
    header = parse_json_bounded(
        std::string_view(reinterpret_cast<const char*>(header_begin), static_cast<size_t>(header_end - header_begin)),
        "header");
  } catch (const JsonError& e) {
    fail(source, "header ", e.detail());
  }
  if (!header.is_object())
    fail(source, "header must be a JSON object, found ", describe(header));

  SafetensorsContent content;
  std::vector<PendingTensor> pending;
  pending.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey)
      parse_metadata(source, value, &content.metadata);
    else
      pending.push_back(parse_entry(source, key, value, data_size));
  }

  // Overlap check before any data is copied: with ranges disjoint and inside the block, the total
  // copied is bounded by the input size. Zero-size tensors may sit at the boundary of others.
  std::vector<const PendingTensor*> order;
  order.reserve(pending.size());
  for (const auto& t : pending) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const PendingTensor* a, const PendingTensor* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const PendingTensor* furthest = nullptr;  // the earlier tensor reaching furthest into the block
  for (const PendingTensor* t : order) {
    if (furthest && t->begin < furthest->end)
      fail(source, "tensor '", printable(t->key), "' data_offsets [", t->begin, ", ", t->end,
           ") overlap tensor '", printable(furthest->key), "' data_offsets [", furthest->begin,
           ", ", furthest->end, ")");
    if (!furthest || t->end > furthest->end) furthest = t;
  }

  for (auto& t : pending) {
    t.record.data.assign(block + t.begin, block + t.end);
    content.tensors.emplace(std::move(t.key), std::move(t.record));
  }
  return content;
}

SafetensorsContent read_safetensors(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> serialize_safetensors(const SafetensorsContent& content) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [key, rec] : content.tensors) {
    if (key == kMetadataKey)
      throw std::invalid_argument(cat("serialize_safetensors: '", kMetadataKey,
                                      "' is reserved and cannot name a tensor"));
    for (int64_t d : rec.shape)
      if (d < 0)
        throw std::invalid_argument(cat("serialize_safetensors: tensor '", key,
                                        "': negative dimension in shape ", shape_str(rec.shape)));
    const auto nbytes = tensor_nbytes(rec.shape, rec.dtype);
    if (!nbytes || rec.data.size() != *nbytes)
      throw std::invalid_argument(
          cat("serialize_safetensors: tensor '", key, "': data holds ", rec.data.size(),
              " bytes but dtype ", dtype_name(rec.dtype), " and shape ", shape_str(rec.shape),
              " need ", nbytes ? std::to_string(*nbytes) : std::string("more than 2^64")));
    json entry = json::object();
    entry["dtype"] = dtype_name(rec.dtype);
    entry["shape"] = rec.shape;
    entry["data_offsets"] = json::array({offset, offset + *nbytes});
    header[key] = std::move(entry);
    offset += *nbytes;
  }
  if (!content.metadata.empty()) header[kMetadataKey] = content.metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw std::invalid_argument(
        cat("serialize_safetensors: a tensor key or metadata string is not valid UTF-8: ",
            e.what()));
  }
  // Padding keeps the data block 8-byte aligned for readers that map the file.
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');

  std::vector<uint8_t> out(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i, n >>= 8) out[i] = static_cast<uint8_t>(n & 0xff);
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* dst = out.data() + 8 + text.size();
  for (const auto& [key, rec] : content.tensors) {
    (void)key;
    if (!rec.data.empty()) std::memcpy(dst, rec.data.data(), rec.data.size());
    dst += rec.data.size();
  }
  return out;
}

void write_safetensors(const std::string& path, const SafetensorsContent& content) {
  const std::vector<uint8_t> bytes = serialize_safetensors(content);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace skd::io
