// torch.save reader: zip and legacy (pre-1.6) containers, a restricted pickle machine, tensors.
#include "skd/io/pth.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <unordered_map>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/io/zip.h"

namespace skd::io {

namespace {

// Limits that keep hostile input from exhausting memory, stack or time. Real checkpoints stay
// far below them: a state dict costs ~25 objects per tensor and nests ~5 levels deep.
constexpr uint64_t kMaxValues = uint64_t{1} << 22;  // objects created by one pickle
constexpr size_t kMaxStack = size_t{1} << 22;       // stack entries and marks
constexpr uint32_t kMaxDepth = 200;                 // container nesting (destructors recurse)
constexpr size_t kMaxDims = 64;
constexpr int kMaxCallNesting = 4;           // _rebuild_from_type_v2 wrapping another rebuild
constexpr size_t kMaxIndexedKeyBytes = 256;  // longer dict keys are not de-duplicated
constexpr size_t kMaxListedKeys = 30;

// ---------------------------------------------------------------------------------------------
// Storages and tensors waiting for their bytes.

struct StorageRoot {
  std::string key;        // record data/<key> (zip) or legacy storage key
  std::string type_name;  // e.g. "torch.FloatStorage"
  std::optional<DType> dtype;  // nullopt: a storage type this reader cannot decode
  bool untyped = false;        // torch.UntypedStorage: numel counts bytes
  uint64_t numel = 0;

  size_t elem_size() const { return untyped || !dtype ? 1 : dtype_size(*dtype); }
};

struct StorageView {  // legacy files can point tensors at a slice of a storage
  size_t root = 0;
  uint64_t offset = 0;  // in root elements
  uint64_t numel = 0;
};

struct PendingTensor {
  PyValuePtr value;  // holds the TensorRecord whose data is still empty
  size_t view = 0;
  uint64_t offset = 0;  // in tensor elements, relative to the view
  std::vector<int64_t> stride;
};

struct Storages {
  std::vector<StorageRoot> roots;
  std::unordered_map<std::string, size_t> root_by_key;
  std::vector<StorageView> views;
  std::vector<PendingTensor> pending;
};

// Work and output allowances shared by every pickle of one file, proportional to its size, so
// that repeated references (memo GET) cannot multiply copies without bound.
struct Budget {
  uint64_t work = 0;    // items moved/copied, bytes hashed or copied by the pickle machine
  uint64_t output = 0;  // tensor bytes materialized
  uint64_t refs = 0;    // tensor bytes referenced from dicts (each may be copied out later)

  static Budget for_input(uint64_t size) {
    Budget b;
    b.work = 32 * size + (uint64_t{1} << 20);
    // Tensors normally cover their storages once (tied weights twice); only overlapping views
    // such as stride-0 expansions can exceed the file size, and only by this much.
    b.output = 4 * size + (uint64_t{1} << 24);
    b.refs = b.output;
    return b;
  }
};

bool mul_ok(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool add_ok(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }

std::optional<DType> storage_dtype(std::string name, bool& untyped) {
  untyped = false;
  if (name.rfind("torch.cuda.", 0) == 0) name = "torch." + name.substr(11);
  if (name == "torch.UntypedStorage" || name == "torch.storage.UntypedStorage" ||
      name == "torch.storage._UntypedStorage" || name == "torch._UntypedStorage") {
    untyped = true;
    return DType::U8;
  }
  static const std::pair<const char*, DType> kTypes[] = {
      {"torch.FloatStorage", DType::F32},   {"torch.DoubleStorage", DType::F64},
      {"torch.HalfStorage", DType::F16},    {"torch.BFloat16Storage", DType::BF16},
      {"torch.LongStorage", DType::I64},    {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16},   {"torch.CharStorage", DType::I8},
      {"torch.ByteStorage", DType::U8},     {"torch.BoolStorage", DType::Bool}};
  for (const auto& [n, d] : kTypes)
    if (name == n) return d;
  return std::nullopt;
}

std::optional<DType> torch_dtype(const std::string& name) {
  static const std::pair<const char*, DType> kTypes[] = {
      {"torch.float32", DType::F32}, {"torch.float", DType::F32},   {"torch.float64", DType::F64},
      {"torch.double", DType::F64},  {"torch.float16", DType::F16}, {"torch.half", DType::F16},
      {"torch.bfloat16", DType::BF16}, {"torch.int64", DType::I64}, {"torch.long", DType::I64},
      {"torch.int32", DType::I32},   {"torch.int", DType::I32},     {"torch.int16", DType::I16},
      {"torch.short", DType::I16},   {"torch.int8", DType::I8},     {"torch.uint8", DType::U8},
      {"torch.bool", DType::Bool}};
  for (const auto& [n, d] : kTypes)
    if (name == n) return d;
  return std::nullopt;
}

std::string type_name(const PyValue& v) {
  struct Visitor {
    std::string operator()(const PyNone&) const { return "None"; }
    std::string operator()(bool) const { return "bool"; }
    std::string operator()(int64_t) const { return "int"; }
    std::string operator()(double) const { return "float"; }
    std::string operator()(const std::string&) const { return "str"; }
    std::string operator()(const PyBytes&) const { return "bytes"; }
    std::string operator()(const PyList& l) const { return l.is_tuple ? "tuple" : "list"; }
    std::string operator()(const PyDict&) const { return "dict"; }
    std::string operator()(const PyObject& o) const { return o.cls; }
    std::string operator()(const TensorRecord&) const { return "tensor"; }
  };
  return std::visit(Visitor{}, v.v);
}

const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";            case '.': return "STOP";
    case '0': return "POP";             case '1': return "POP_MARK";
    case '2': return "DUP";             case 'F': return "FLOAT";
    case 'I': return "INT";             case 'J': return "BININT";
    case 'K': return "BININT1";         case 'L': return "LONG";
    case 'M': return "BININT2";         case 'N': return "NONE";
    case 'P': return "PERSID";          case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";          case 'S': return "STRING";
    case 'T': return "BINSTRING";       case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";         case 'X': return "BINUNICODE";
    case 'a': return "APPEND";          case 'b': return "BUILD";
    case 'c': return "GLOBAL";          case 'd': return "DICT";
    case '}': return "EMPTY_DICT";      case 'e': return "APPENDS";
    case 'g': return "GET";             case 'h': return "BINGET";
    case 'i': return "INST";            case 'j': return "LONG_BINGET";
    case 'l': return "LIST";            case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";             case 'p': return "PUT";
    case 'q': return "BINPUT";          case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";         case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";     case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";        case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";  case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";         case 0x82: return "EXT1";
    case 0x83: return "EXT2";           case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";         case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";         case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";       case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";          case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";      case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";      case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";   case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";          case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";    case 0x98: return "READONLY_BUFFER";
    default: return "unknown";
  }
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Structural UTF-8 check. Surrogates pass: Python pickles str with 'surrogatepass'.
bool valid_utf8(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

// Python 2 str payloads are bytes; keep them as text when they are UTF-8, else read as latin-1.
std::string bytes_to_text(const uint8_t* p, size_t n) {
  if (valid_utf8(p, n)) return std::string(reinterpret_cast<const char*>(p), n);
  std::string out;
  for (size_t i = 0; i < n; ++i) append_utf8(out, p[i]);
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---------------------------------------------------------------------------------------------
// The pickle machine. It only builds data: GLOBAL names a class, REDUCE/NEWOBJ either map a few
// known callables (OrderedDict, tensor rebuilds...) onto PyValue kinds or record an opaque object.

class Unpickler {
 public:
  // `label` prefixes error messages; `base` is added to reported byte offsets. `storages` is null
  // where persistent ids (tensor storages) are not allowed.
  Unpickler(const uint8_t* data, size_t size, std::string label, size_t base, Budget& budget,
            Storages* storages)
      : data_(data), size_(size), label_(std::move(label)), base_(base), budget_(budget),
        storages_(storages) {}

  PyValuePtr run();
  // Bytes consumed up to and including STOP.
  size_t consumed() const { return pos_; }

 private:
  // Bookkeeping for containers and names, keyed by address; `keep` pins that address.
  struct Meta {
    PyValuePtr keep;
    uint32_t height = 0;   // longest chain of containers below
    bool sealed = false;   // nested somewhere already: further mutation is refused
    bool global = false;   // a class/function name pushed by GLOBAL
    int64_t storage = -1;  // index into storages_->views for persistent storages
    std::unique_ptr<std::unordered_map<std::string, size_t>> keys;  // dict key -> item index
  };

  [[noreturn]] void fail(const std::string& what) const {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op_);
    throw FormatError(cat(label_, ": ", what, " (opcode ", opcode_name(op_), " ", hex,
                          " at byte ", base_ + op_pos_, ")"));
  }

  void charge(uint64_t units) {
    if (units > budget_.work) fail("pickle does more work than its size justifies");
    budget_.work -= units;
  }

  const uint8_t* take(size_t n) {
    if (n > size_ - pos_) fail(cat("truncated: needs ", n, " bytes, ", size_ - pos_, " left"));
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8() { return *take(1); }
  uint16_t u16() {
    const uint8_t* p = take(2);
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
  }
  uint32_t u32() {
    const uint8_t* p = take(4);
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
           (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
  }
  uint64_t u64() {
    const uint64_t lo = u32();
    return lo | (static_cast<uint64_t>(u32()) << 32);
  }
  std::string_view line() {
    const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (!nl) fail("unterminated text argument");
    const size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nl) - (data_ + pos_));
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n + 1;
    return s;
  }

  template <typename T>
  PyValuePtr make(T&& x) {
    if (++values_ > kMaxValues) fail(cat("more than ", kMaxValues, " objects"));
    auto v = std::make_shared<PyValue>();
    v->v = std::forward<T>(x);
    return v;
  }
  template <typename T>
  PyValuePtr make_container(T&& x) {
    PyValuePtr v = make(std::forward<T>(x));
    meta_[v.get()].keep = v;
    return v;
  }
  Meta* find_meta(const PyValue* v) {
    const auto it = meta_.find(v);
    return it == meta_.end() ? nullptr : &it->second;
  }

  void push(PyValuePtr v) {
    if (stack_.size() >= kMaxStack) fail("stack too deep");
    stack_.push_back(std::move(v));
  }
  size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  PyValuePtr pop() {
    if (stack_.size() <= fence()) fail("stack underflow");
    PyValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const PyValuePtr& top() const {
    if (stack_.size() <= fence()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<PyValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    charge(stack_.size() - m);
    std::vector<PyValuePtr> items(std::make_move_iterator(stack_.begin() + m),
                                  std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }

  // Records that `child` now lives inside `parent`. Only unsealed parents are ever mutated and
  // every adopted child gets sealed, so the object graph stays acyclic and heights stay exact.
  void adopt(const PyValuePtr& parent, const PyValuePtr& child) {
    if (parent == child) fail("object contains itself");
    Meta* cm = find_meta(child.get());
    const uint32_t h = cm ? cm->height + 1 : 1;
    if (h > kMaxDepth) fail(cat("objects nested more than ", kMaxDepth, " levels deep"));
    Meta& pm = meta_[parent.get()];
    if (!pm.keep) pm.keep = parent;
    pm.height = std::max(pm.height, h);
    if (cm) cm->sealed = true;
  }
  void check_mutable(const PyValuePtr& v) {
    const Meta* m = find_meta(v.get());
    if (m && m->sealed) fail(cat("modifying a ", type_name(*v), " after it was nested elsewhere"));
  }

  PyValuePtr make_list(std::vector<PyValuePtr> items, bool is_tuple) {
    PyValuePtr v = make_container(PyList{is_tuple, {}});
    for (const auto& item : items) adopt(v, item);
    std::get<PyList>(v->v).items = std::move(items);
    return v;
  }

  void dict_set(const PyValuePtr& dict, const PyValuePtr& key, const PyValuePtr& value) {
    adopt(dict, key);
    adopt(dict, value);
    if (const auto* t = std::get_if<TensorRecord>(&value->v)) {
      const uint64_t bytes = static_cast<uint64_t>(t->numel()) * dtype_size(t->dtype);
      if (bytes > budget_.refs) fail("tensors referenced more often than the file size justifies");
      budget_.refs -= bytes;
    }
    auto& items = std::get<PyDict>(dict->v).items;
    // Python keeps one entry per key; index the common key kinds to honour that.
    std::string hkey;
    if (const auto* s = std::get_if<std::string>(&key->v)) {
      if (s->size() <= kMaxIndexedKeyBytes) hkey = "s" + *s;
    } else if (const auto* i = std::get_if<int64_t>(&key->v)) {
      hkey = "i" + std::to_string(*i);
    } else if (const auto* b = std::get_if<bool>(&key->v)) {
      hkey = *b ? "i1" : "i0";
    }
    if (!hkey.empty()) {
      charge(hkey.size());
      auto& keys = meta_[dict.get()].keys;
      if (!keys) keys = std::make_unique<std::unordered_map<std::string, size_t>>();
      const auto [it, fresh] = keys->emplace(std::move(hkey), items.size());
      if (!fresh) {
        items[it->second].second = value;
        return;
      }
    }
    items.emplace_back(key, value);
  }

  int64_t as_int(const PyValuePtr& v, const char* what) const {
    if (const auto* i = std::get_if<int64_t>(&v->v)) return *i;
    fail(cat(what, " is a ", type_name(*v), ", expected an int"));
  }
  const std::vector<PyValuePtr>& as_seq(const PyValuePtr& v, const char* what) const {
    if (const auto* l = std::get_if<PyList>(&v->v)) return l->items;
    fail(cat(what, " is a ", type_name(*v), ", expected a tuple"));
  }
  const std::string& global_name(const PyValuePtr& v, const char* what) {
    const Meta* m = find_meta(v.get());
    if (!m || !m->global) fail(cat(what, " is a ", type_name(*v), ", not a class or function"));
    return std::get<PyObject>(v->v).cls;
  }

  void load_int_text(std::string_view s, bool is_long);
  int64_t read_long_bytes(size_t n);
  std::string decode_string_escape(std::string_view s);
  std::string decode_raw_unicode_escape(std::string_view s);
  void push_global(std::string module, std::string name);
  PyValuePtr persistent_load(const PyValuePtr& pid);
  PyValuePtr call(const PyValuePtr& callable, std::vector<PyValuePtr> args, int nesting);
  PyValuePtr rebuild_tensor(const std::string& fn, const std::vector<PyValuePtr>& args);
  PyValuePtr opaque(const std::string& cls, std::vector<PyValuePtr> args);
  void build(const PyValuePtr& target, const PyValuePtr& state);
  void extend(const PyValuePtr& target, std::vector<PyValuePtr> items, bool is_set);
  void set_items(const PyValuePtr& target, const std::vector<PyValuePtr>& items);
  void memo_put(uint64_t index) {
    memo_[index] = top();
  }
  void memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail(cat("memo entry ", index, " does not exist"));
    push(it->second);
  }

  const uint8_t* data_;
  size_t size_;
  std::string label_;
  size_t base_;
  Budget& budget_;
  Storages* storages_;

  size_t pos_ = 0;
  size_t op_pos_ = 0;
  uint8_t op_ = 0;
  uint64_t values_ = 0;
  std::vector<PyValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyValuePtr> memo_;
  std::unordered_map<const PyValue*, Meta> meta_;
};

void Unpickler::load_int_text(std::string_view s, bool is_long) {
  if (is_long && !s.empty() && s.back() == 'L') s.remove_suffix(1);
  if (!is_long && s == "01") return push(make(true));  // protocol 0 booleans
  if (!is_long && s == "00") return push(make(false));
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) fail("integer does not fit in 64 bits");
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    fail(cat("bad integer literal '", std::string(s.substr(0, 40)), "'"));
  push(make(v));
}

// Little-endian two's complement of n bytes (LONG1/LONG4), kept only if it fits in int64.
int64_t Unpickler::read_long_bytes(size_t n) {
  const uint8_t* p = take(n);
  if (n == 0) return 0;
  const bool negative = (p[n - 1] & 0x80) != 0;
  const uint8_t fill = negative ? 0xFF : 0x00;
  for (size_t i = 8; i < n; ++i)
    if (p[i] != fill) fail("integer does not fit in 64 bits");
  uint64_t u = negative ? ~uint64_t{0} : 0;
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    u &= ~(uint64_t{0xFF} << (8 * i));
    u |= static_cast<uint64_t>(p[i]) << (8 * i);
  }
  if (n > 8 && ((u >> 63) != 0) != negative) fail("integer does not fit in 64 bits");
  return static_cast<int64_t>(u);
}

// Body of a protocol-0 STRING: a Python repr in quotes with backslash escapes.
std::string Unpickler::decode_string_escape(std::string_view s) {
  if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') || s.back() != s.front())
    fail("STRING argument is not quoted");
  s = s.substr(1, s.size() - 2);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\\': case '\'': case '"': out += c; break;
      case '\n': break;
      case 'x': {
        const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
        const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) fail("bad \\x escape in STRING");
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          int v = c - '0';
          for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k)
            v = v * 8 + (s[++i] - '0');
          out += static_cast<char>(v & 0xFF);
        } else {
          out += '\\';  // unknown escapes stay as written, like Python
          out += c;
        }
    }
  }
  return bytes_to_text(reinterpret_cast<const uint8_t*>(out.data()), out.size());
}

// Body of a protocol-0 UNICODE: latin-1 text where only \uXXXX and \UXXXXXXXX are escapes.
std::string Unpickler::decode_raw_unicode_escape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
      const size_t digits = s[i + 1] == 'u' ? 4 : 8;
      if (s.size() - i - 2 < digits) fail("truncated \\u escape in UNICODE");
      uint32_t cp = 0;
      for (size_t k = 0; k < digits; ++k) {
        const int h = hex_value(s[i + 2 + k]);
        if (h < 0) fail("bad \\u escape in UNICODE");
        cp = cp * 16 + static_cast<uint32_t>(h);
      }
      if (cp > 0x10FFFF) fail("code point out of range in UNICODE");
      append_utf8(out, cp);
      i += 1 + digits;
    } else {
      append_utf8(out, c);
    }
  }
  return out;
}

void Unpickler::push_global(std::string module, std::string name) {
  PyValuePtr v = make_container(PyObject{module + "." + name, {}, nullptr});
  meta_[v.get()].global = true;
  push(std::move(v));
}

// torch's persistent ids: ('storage', storage_type, key, location, numel[, view_metadata]); the
// sixth item only exists in legacy files.
PyValuePtr Unpickler::persistent_load(const PyValuePtr& pid) {
  if (!storages_) fail("persistent id where none is allowed");
  const auto* tuple = std::get_if<PyList>(&pid->v);
  if (!tuple || tuple->items.empty())
    fail(cat("persistent id is a ", type_name(*pid), ", expected a tuple"));
  const auto& it = tuple->items;
  const auto* kind = std::get_if<std::string>(&it[0]->v);
  if (!kind) fail("persistent id does not start with a string");
  if (*kind == "module") return opaque("torch.nn.Module(persistent)", {});
  if (*kind != "storage") fail(cat("unsupported persistent id kind '", *kind, "'"));
  if (it.size() != 5 && it.size() != 6)
    fail(cat("storage persistent id has ", it.size(), " items, expected 5 or 6"));
  const std::string& type = global_name(it[1], "storage type");
  std::string key;
  if (const auto* s = std::get_if<std::string>(&it[2]->v))
    key = *s;
  else
    key = std::to_string(as_int(it[2], "storage key"));
  const int64_t numel = as_int(it[4], "storage size");
  if (numel < 0) fail(cat("storage '", key, "' has negative size ", numel));

  auto [rit, fresh] = storages_->root_by_key.emplace(key, storages_->roots.size());
  if (fresh) {
    StorageRoot root;
    root.key = key;
    root.type_name = type;
    root.dtype = storage_dtype(type, root.untyped);
    root.numel = static_cast<uint64_t>(numel);
    uint64_t bytes;
    if (!mul_ok(root.numel, root.elem_size(), bytes) || bytes > (uint64_t{1} << 62))
      fail(cat("storage '", key, "' claims an absurd size of ", numel, " elements"));
    storages_->roots.push_back(std::move(root));
  }
  const StorageRoot& root = storages_->roots[rit->second];
  StorageView view{rit->second, 0, root.numel};
  if (it.size() == 6 && !std::holds_alternative<PyNone>(it[5]->v)) {
    const auto& vm = as_seq(it[5], "storage view metadata");
    if (vm.size() != 3) fail("storage view metadata is not (key, offset, size)");
    const int64_t off = as_int(vm[1], "storage view offset");
    const int64_t n = as_int(vm[2], "storage view size");
    if (off < 0 || n < 0 || static_cast<uint64_t>(off) > root.numel ||
        static_cast<uint64_t>(n) > root.numel - static_cast<uint64_t>(off))
      fail(cat("storage view [", off, ", +", n, ") lies outside storage '", key, "' of ",
               root.numel, " elements"));
    view.offset = static_cast<uint64_t>(off);
    view.numel = static_cast<uint64_t>(n);
  }
  PyValuePtr v = make_container(PyObject{type, {}, nullptr});
  meta_[v.get()].storage = static_cast<int64_t>(storages_->views.size());
  storages_->views.push_back(view);
  return v;
}

PyValuePtr Unpickler::opaque(const std::string& cls, std::vector<PyValuePtr> args) {
  PyValuePtr v = make_container(PyObject{cls, {}, nullptr});
  for (const auto& a : args) adopt(v, a);
  std::get<PyObject>(v->v).args = std::move(args);
  return v;
}

// torch._utils._rebuild_tensor(storage, offset, size, stride),
// _rebuild_tensor_v2(..., requires_grad, backward_hooks[, metadata]) and
// _rebuild_tensor_v3(..., requires_grad, backward_hooks, dtype[, metadata]).
PyValuePtr Unpickler::rebuild_tensor(const std::string& fn, const std::vector<PyValuePtr>& args) {
  const bool v3 = fn == "torch._utils._rebuild_tensor_v3";
  const size_t min_args = fn == "torch._utils._rebuild_tensor" ? 4 : v3 ? 7 : 6;
  if (args.size() < min_args)
    fail(cat(fn, " expects at least ", min_args, " arguments, got ", args.size()));
  const Meta* sm = find_meta(args[0].get());
  if (!sm || sm->storage < 0)
    fail(cat("first argument of ", fn, " is a ", type_name(*args[0]), ", not a storage"));
  const StorageView& view = storages_->views[static_cast<size_t>(sm->storage)];
  const StorageRoot& root = storages_->roots[view.root];
  const int64_t offset = as_int(args[1], "tensor storage offset");
  const auto& size_items = as_seq(args[2], "tensor size");
  const auto& stride_items = as_seq(args[3], "tensor stride");
  if (size_items.size() != stride_items.size())
    fail(cat("tensor has ", size_items.size(), " sizes but ", stride_items.size(), " strides"));
  if (size_items.size() > kMaxDims) fail(cat("tensor has more than ", kMaxDims, " dimensions"));

  std::optional<DType> dtype;
  std::string why;
  if (v3) {
    const std::string& name = global_name(args[6], "tensor dtype");
    dtype = torch_dtype(name);
    if (!dtype) why = cat("dtype ", name, " is not supported");
  } else if (root.untyped) {
    why = "an untyped storage without a dtype";
  } else {
    dtype = root.dtype;
  }
  if (!root.untyped && !root.dtype) why = cat("storage type ", root.type_name, " is not supported");
  if (!why.empty()) {
    // Kept as an opaque object; pth_state_dict reports it if a state dict needs it.
    PyValuePtr v = opaque(fn, args);
    PyValuePtr reason = make(why);
    adopt(v, reason);
    std::get<PyObject>(v->v).state = reason;
    return v;
  }

  std::vector<int64_t> shape, stride;
  for (const auto& s : size_items) shape.push_back(as_int(s, "tensor size"));
  for (const auto& s : stride_items) stride.push_back(as_int(s, "tensor stride"));
  if (offset < 0) fail(cat("negative tensor storage offset ", offset));
  uint64_t numel = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0 || stride[d] < 0)
      fail(cat("negative size or stride in dimension ", d, " of a tensor"));
    if (!mul_ok(numel, static_cast<uint64_t>(shape[d]), numel))
      fail("tensor element count overflows");
  }
  const uint64_t esize = dtype_size(*dtype);
  uint64_t bytes;
  if (!mul_ok(numel, esize, bytes)) fail("tensor byte size overflows");
  if (numel > 0) {
    // The furthest element must lie inside the storage (or the legacy view of it).
    uint64_t last = static_cast<uint64_t>(offset), step, end;
    for (size_t d = 0; d < shape.size(); ++d)
      if (!mul_ok(static_cast<uint64_t>(shape[d] - 1), static_cast<uint64_t>(stride[d]), step) ||
          !add_ok(last, step, last))
        fail("tensor extent overflows");
    const uint64_t view_bytes = view.numel * root.elem_size();
    if (!add_ok(last, 1, end) || !mul_ok(end, esize, end) || end > view_bytes)
      fail(cat("tensor of ", numel, " ", dtype_name(*dtype), " elements (offset ", offset,
               ") reaches past the end of storage '", root.key, "' (", view_bytes, " bytes)"));
  }
  if (bytes > budget_.output) fail("tensors add up to more bytes than the file size justifies");
  budget_.output -= bytes;

  TensorRecord t;
  t.dtype = *dtype;
  t.shape = std::move(shape);
  PyValuePtr v = make(std::move(t));
  storages_->pending.push_back(
      {v, static_cast<size_t>(sm->storage), static_cast<uint64_t>(offset), std::move(stride)});
  return v;
}

PyValuePtr Unpickler::call(const PyValuePtr& callable, std::vector<PyValuePtr> args,
                           int nesting) {
  const std::string fn = global_name(callable, "callable");
  if (fn == "collections.OrderedDict" || fn == "builtins.dict" || fn == "__builtin__.dict" ||
      fn == "collections.defaultdict") {
    PyValuePtr d = make_container(PyDict{});
    if (fn == "collections.defaultdict" || args.empty()) return d;  // default factory dropped
    if (args.size() > 1) fail(cat(fn, " called with ", args.size(), " arguments"));
    if (const auto* src = std::get_if<PyDict>(&args[0]->v)) {
      charge(src->items.size());
      for (const auto& [k, v] : src->items) dict_set(d, k, v);
    } else {
      const auto& pairs = as_seq(args[0], "dict initializer");
      charge(pairs.size());
      for (const auto& p : pairs) {
        const auto& kv = as_seq(p, "dict initializer item");
        if (kv.size() != 2) fail("dict initializer item is not a pair");
        dict_set(d, kv[0], kv[1]);
      }
    }
    return d;
  }
  if (fn == "torch._utils._rebuild_tensor" || fn == "torch._utils._rebuild_tensor_v2" ||
      fn == "torch._utils._rebuild_tensor_v3") {
    if (!storages_) fail("tensor where none is allowed");
    return rebuild_tensor(fn, args);
  }
  if (fn == "torch._utils._rebuild_parameter" ||
      fn == "torch._utils._rebuild_parameter_with_state") {
    if (args.empty()) fail(cat(fn, " called without arguments"));
    return args[0];  // a Parameter is its tensor; requires_grad and hooks do not matter here
  }
  if (fn == "torch._tensor._rebuild_from_type_v2" || fn == "torch._tensor._rebuild_from_type") {
    // (func, new_type, args, state): the tensor subclass wrapper around another rebuild call.
    if (args.size() < 3) fail(cat(fn, " expects 4 arguments, got ", args.size()));
    if (nesting >= kMaxCallNesting) fail(cat(fn, " nested too deeply"));
    const auto& inner = as_seq(args[2], "rebuild arguments");
    charge(inner.size());
    return call(args[0], inner, nesting + 1);
  }
  if (fn == "torch.Size" || fn == "builtins.set" || fn == "builtins.frozenset" ||
      fn == "__builtin__.set" || fn == "__builtin__.frozenset") {
    std::vector<PyValuePtr> items;
    if (!args.empty()) items = as_seq(args[0], "sequence argument");
    charge(items.size());
    return make_list(std::move(items), fn == "torch.Size");  // sets become lists
  }
  if (fn == "_codecs.encode" && args.size() == 2) {
    // How protocol 2 spells Python 3 bytes: encode(latin-1 text, 'latin1').
    const auto* text = std::get_if<std::string>(&args[0]->v);
    const auto* enc = std::get_if<std::string>(&args[1]->v);
    if (text && enc && (*enc == "latin1" || *enc == "latin-1" || *enc == "iso-8859-1")) {
      charge(text->size());
      PyBytes b;
      const auto* p = reinterpret_cast<const uint8_t*>(text->data());
      for (size_t i = 0; i < text->size();) {
        uint32_t cp = p[i];
        size_t len = 1;
        if (cp >= 0xC0 && cp < 0xE0 && i + 1 < text->size()) {
          cp = ((cp & 0x1F) << 6) | (p[i + 1] & 0x3F);
          len = 2;
        } else if (cp >= 0x80) {
          fail("_codecs.encode text is not latin-1");
        }
        if (cp > 0xFF) fail("_codecs.encode text is not latin-1");
        b.data.push_back(static_cast<uint8_t>(cp));
        i += len;
      }
      return make(std::move(b));
    }
  }
  return opaque(fn, std::move(args));
}

void Unpickler::build(const PyValuePtr& target, const PyValuePtr& state) {
  if (auto* obj = std::get_if<PyObject>(&target->v)) {
    if (find_meta(target.get()) && find_meta(target.get())->global)
      fail(cat("BUILD on the class name ", obj->cls));
    check_mutable(target);
    adopt(target, state);
    obj->state = state;
    return;
  }
  // OrderedDict attributes (state_dict _metadata) and tensor state are not needed here.
  if (std::holds_alternative<PyDict>(target->v) || std::holds_alternative<TensorRecord>(target->v))
    return;
  fail(cat("BUILD on a ", type_name(*target)));
}

// APPEND(S)/ADDITEMS. Items added to opaque objects (list subclasses) are dropped: opaque objects
// keep only their constructor arguments and BUILD state.
void Unpickler::extend(const PyValuePtr& target, std::vector<PyValuePtr> items, bool is_set) {
  if (std::holds_alternative<PyObject>(target->v)) return;
  auto* list = std::get_if<PyList>(&target->v);
  if (!list || list->is_tuple)
    fail(cat(is_set ? "adding to a " : "appending to a ", type_name(*target)));
  check_mutable(target);
  for (const auto& item : items) adopt(target, item);
  list->items.insert(list->items.end(), std::make_move_iterator(items.begin()),
                     std::make_move_iterator(items.end()));
}

// SETITEM(S). As with extend, items given to opaque objects (dict subclasses) are dropped.
void Unpickler::set_items(const PyValuePtr& target, const std::vector<PyValuePtr>& items) {
  if (items.size() % 2) fail("SETITEMS with an odd number of items");
  if (std::holds_alternative<PyObject>(target->v)) return;
  if (!std::holds_alternative<PyDict>(target->v))
    fail(cat("setting items on a ", type_name(*target)));
  check_mutable(target);
  for (size_t i = 0; i < items.size(); i += 2) dict_set(target, items[i], items[i + 1]);
}

PyValuePtr Unpickler::run() {
  while (true) {
    if (pos_ >= size_) {
      op_pos_ = pos_;
      op_ = 0;
      fail("pickle ends without STOP (truncated?)");
    }
    op_pos_ = pos_;
    op_ = data_[pos_++];
    charge(1);
    switch (op_) {
      case 0x80: {  // PROTO
        const uint8_t proto = u8();
        if (proto > 5) fail(cat("unsupported pickle protocol ", int{proto}));
        break;
      }
      case 0x95: {  // FRAME: framing only groups opcodes; skip the length
        const uint64_t n = u64();
        if (n > size_ - pos_) fail(cat("frame of ", n, " bytes runs past the end"));
        break;
      }
      case '.': {  // STOP
        PyValuePtr result = pop();
        return result;
      }
      case '(':
        if (marks_.size() >= kMaxStack) fail("too many marks");
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP (a bare mark on top is discarded like CPython does)
        if (stack_.size() > fence())
          stack_.pop_back();
        else if (!marks_.empty())
          marks_.pop_back();
        else
          fail("stack underflow");
        break;
      case '1': pop_mark(); break;  // POP_MARK
      case '2': push(top()); break;  // DUP
      case 'N': push(make(PyNone{})); break;
      case 0x88: push(make(true)); break;
      case 0x89: push(make(false)); break;
      case 'I': load_int_text(line(), false); break;
      case 'L': load_int_text(line(), true); break;
      case 'J': push(make(static_cast<int64_t>(static_cast<int32_t>(u32())))); break;
      case 'K': push(make(static_cast<int64_t>(u8()))); break;
      case 'M': push(make(static_cast<int64_t>(u16()))); break;
      case 0x8a: {  // LONG1
        const size_t n = u8();
        push(make(read_long_bytes(n)));
        break;
      }
      case 0x8b: {  // LONG4
        const auto n = static_cast<int32_t>(u32());
        if (n < 0) fail("negative LONG4 length");
        push(make(read_long_bytes(static_cast<size_t>(n))));
        break;
      }
      case 'F': {
        const std::string_view s = line();
        double v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size()) fail("bad float literal");
        push(make(v));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
        double v;
        std::memcpy(&v, &bits, sizeof v);
        push(make(v));
        break;
      }
      case 'S': push(make(decode_string_escape(line()))); break;
      case 'V': push(make(decode_raw_unicode_escape(line()))); break;
      case 'T': case 'U': {  // BINSTRING, SHORT_BINSTRING (Python 2 str)
        const size_t n = op_ == 'U' ? u8() : u32();
        const uint8_t* p = take(n);
        push(make(bytes_to_text(p, n)));
        break;
      }
      case 'X': case 0x8c: case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        const uint64_t n = op_ == 'X' ? u32() : op_ == 0x8c ? u8() : u64();
        if (n > size_ - pos_) fail(cat("string of ", n, " bytes runs past the end"));
        const uint8_t* p = take(static_cast<size_t>(n));
        if (!valid_utf8(p, static_cast<size_t>(n))) fail("string is not valid UTF-8");
        push(make(std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n))));
        break;
      }
      case 'B': case 'C': case 0x8e: case 0x96: {  // BINBYTES, SHORT_BINBYTES, (BIN)BYTES(ARRAY)8
        const uint64_t n = op_ == 'B' ? u32() : op_ == 'C' ? u8() : u64();
        if (n > size_ - pos_) fail(cat("bytes of length ", n, " run past the end"));
        const uint8_t* p = take(static_cast<size_t>(n));
        push(make(PyBytes{std::vector<uint8_t>(p, p + n)}));
        break;
      }
      case ']': push(make_container(PyList{false, {}})); break;
      case ')': push(make_container(PyList{true, {}})); break;
      case '}': push(make_container(PyDict{})); break;
      case 0x8f: push(make_container(PyList{false, {}})); break;  // EMPTY_SET, as a list
      case 'l': push(make_list(pop_mark(), false)); break;
      case 't': push(make_list(pop_mark(), true)); break;
      case 0x91: push(make_list(pop_mark(), false)); break;  // FROZENSET
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        const size_t n = static_cast<size_t>(op_ - 0x84);
        if (stack_.size() < fence() + n) fail("stack underflow");
        std::vector<PyValuePtr> items(std::make_move_iterator(stack_.end() - n),
                                      std::make_move_iterator(stack_.end()));
        stack_.resize(stack_.size() - n);
        push(make_list(std::move(items), true));
        break;
      }
      case 'a': {  // APPEND
        PyValuePtr item = pop();
        extend(top(), {std::move(item)}, false);
        break;
      }
      case 'e': case 0x90: {  // APPENDS, ADDITEMS: the target sits below the mark
        std::vector<PyValuePtr> items = pop_mark();
        extend(top(), std::move(items), op_ == 0x90);
        break;
      }
      case 'd': {  // DICT
        std::vector<PyValuePtr> items = pop_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        PyValuePtr d = make_container(PyDict{});
        for (size_t i = 0; i < items.size(); i += 2) dict_set(d, items[i], items[i + 1]);
        push(std::move(d));
        break;
      }
      case 's': {  // SETITEM
        PyValuePtr value = pop();
        PyValuePtr key = pop();
        set_items(top(), {std::move(key), std::move(value)});
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<PyValuePtr> items = pop_mark();
        set_items(top(), items);
        break;
      }
      case 'c': {  // GLOBAL
        std::string module(line());
        std::string name(line());
        push_global(std::move(module), std::move(name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PyValuePtr name = pop();
        PyValuePtr module = pop();
        const auto* n = std::get_if<std::string>(&name->v);
        const auto* m = std::get_if<std::string>(&module->v);
        if (!n || !m) fail("STACK_GLOBAL needs two strings");
        push_global(*m, *n);
        break;
      }
      case 'R': {  // REDUCE
        PyValuePtr args = pop();
        PyValuePtr callable = pop();
        std::vector<PyValuePtr> items = as_seq(args, "REDUCE arguments");
        charge(items.size());
        push(call(callable, std::move(items), 0));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        PyValuePtr args = pop();
        PyValuePtr cls = pop();
        std::vector<PyValuePtr> items = as_seq(args, "NEWOBJ arguments");
        charge(items.size());
        push(call(cls, std::move(items), 0));
        break;
      }
      case 0x92: {  // NEWOBJ_EX (keyword arguments are dropped)
        pop();
        PyValuePtr args = pop();
        PyValuePtr cls = pop();
        std::vector<PyValuePtr> items = as_seq(args, "NEWOBJ_EX arguments");
        charge(items.size());
        push(call(cls, std::move(items), 0));
        break;
      }
      case 'i': {  // INST: protocol 0 instance, class named inline, arguments since the mark
        std::string module(line());
        std::string name(line());
        std::vector<PyValuePtr> items = pop_mark();
        push(opaque(module + "." + name, std::move(items)));
        break;
      }
      case 'o': {  // OBJ: class and arguments since the mark
        std::vector<PyValuePtr> items = pop_mark();
        if (items.empty()) fail("OBJ without a class");
        PyValuePtr cls = items.front();
        items.erase(items.begin());
        push(opaque(global_name(cls, "OBJ class"), std::move(items)));
        break;
      }
      case 'b': {  // BUILD
        PyValuePtr state = pop();
        build(top(), state);
        break;
      }
      case 'Q': {  // BINPERSID
        PyValuePtr pid = pop();
        push(persistent_load(pid));
        break;
      }
      case 'P': {  // PERSID: a text id, which torch never writes
        PyValuePtr pid = make(std::string(line()));
        push(persistent_load(pid));
        break;
      }
      case 'p': {  // PUT
        const std::string_view s = line();
        uint64_t idx = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), idx);
        if (ec != std::errc() || end != s.data() + s.size()) fail("bad PUT index");
        memo_put(idx);
        break;
      }
      case 'q': memo_put(u8()); break;
      case 'r': memo_put(u32()); break;
      case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
      case 'g': {  // GET
        const std::string_view s = line();
        uint64_t idx = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), idx);
        if (ec != std::errc() || end != s.data() + s.size()) fail("bad GET index");
        memo_get(idx);
        break;
      }
      case 'h': memo_get(u8()); break;
      case 'j': memo_get(u32()); break;
      default: fail("unsupported or invalid opcode");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Filling tensors from storage bytes.

// Returns the bytes of storage root `index`, already checked to hold all of its elements.
using RootLoader = std::function<ByteSpan(size_t index)>;

void materialize(Storages& st, const RootLoader& load, bool big_endian) {
  std::vector<std::optional<ByteSpan>> cache(st.roots.size());
  for (PendingTensor& p : st.pending) {
    const StorageView& view = st.views[p.view];
    const StorageRoot& root = st.roots[view.root];
    auto& t = std::get<TensorRecord>(p.value->v);
    const size_t es = dtype_size(t.dtype);
    const auto numel = static_cast<size_t>(t.numel());  // bounded by the output budget
    if (numel == 0) continue;
    if (!cache[view.root]) cache[view.root] = load(view.root);  // once per storage
    // rebuild_tensor proved offset + extent within view.numel, and the loader that the root
    // holds numel elements, so every read below stays inside the span.
    const uint8_t* base = cache[view.root]->data + view.offset * root.elem_size() + p.offset * es;
    t.data.resize(numel * es);
    uint8_t* dst = t.data.data();

    bool contiguous = true;
    int64_t expected = 1;
    for (size_t d = t.shape.size(); d-- > 0;) {
      if (t.shape[d] != 1 && p.stride[d] != expected) contiguous = false;
      expected *= t.shape[d];
    }
    if (contiguous) {
      std::memcpy(dst, base, numel * es);
    } else {
      // Odometer over the index space, advancing the source offset by strides.
      const size_t nd = t.shape.size();
      std::vector<int64_t> idx(nd, 0);
      int64_t src = 0;
      for (size_t n = 0; n < numel; ++n, dst += es) {
        std::memcpy(dst, base + static_cast<size_t>(src) * es, es);
        for (size_t d = nd; d-- > 0;) {
          if (++idx[d] < t.shape[d]) {
            src += p.stride[d];
            break;
          }
          src -= p.stride[d] * (t.shape[d] - 1);
          idx[d] = 0;
        }
      }
    }
    if (big_endian && es > 1)
      for (size_t i = 0; i < t.data.size(); i += es) std::reverse(&t.data[i], &t.data[i] + es);
  }
  st.pending.clear();
}

[[noreturn]] void fail_at(const std::string& source, const std::string& what) {
  throw FormatError(cat(source, ": ", what));
}

// ---------------------------------------------------------------------------------------------
// Containers.

PyValuePtr parse_zip(const uint8_t* data, size_t size, const std::string& source,
                     Budget& budget) {
  const ZipArchive zip(data, size, source);
  const ZipEntry* pkl = nullptr;
  const std::string suffix = "/data.pkl";
  for (const ZipEntry& e : zip.entries()) {
    const std::string& n = e.name;
    const bool is_pickle = n.size() > suffix.size() &&
                           n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (is_pickle && std::count(n.begin(), n.end(), '/') == 1) {
      if (pkl) fail_at(source, cat("several pickles ('", pkl->name, "', '", n, "') in archive"));
      pkl = &e;
    }
  }
  if (!pkl)
    fail_at(source, "zip archive has no '<folder>/data.pkl' record (not a torch.save file?)");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - suffix.size() + 1);

  bool big_endian = false;
  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    std::vector<uint8_t> scratch;
    const ByteSpan b = zip.read(*bo, scratch);
    std::string order(reinterpret_cast<const char*>(b.data), std::min<size_t>(b.size, 16));
    while (!order.empty() && std::isspace(static_cast<unsigned char>(order.back())))
      order.pop_back();
    if (order == "big")
      big_endian = true;
    else if (order != "little")
      fail_at(source, cat("unknown byte order '", order, "' in ", bo->name));
  }

  std::vector<uint8_t> pkl_scratch;
  const ByteSpan pk = zip.read(*pkl, pkl_scratch);
  Storages st;
  PyValuePtr root;
  {
    Unpickler u(pk.data, pk.size, cat(source, ": ", pkl->name), 0, budget, &st);
    root = u.run();
  }
  std::vector<std::vector<uint8_t>> scratch(st.roots.size());
  materialize(
      st,
      [&](size_t i) {
        const StorageRoot& r = st.roots[i];
        const std::string name = prefix + "data/" + r.key;
        const ZipEntry* e = zip.find(name);
        if (!e) fail_at(source, cat("storage record '", name, "' is missing"));
        const uint64_t need = r.numel * r.elem_size();
        if (e->size < need)
          fail_at(source, cat("storage record '", name, "' holds ", e->size, " bytes but its ",
                              r.numel, " elements of ", r.type_name, " need ", need));
        return zip.read(*e, scratch[i]);
      },
      big_endian);
  return root;
}

// Length of the magic-number pickle that opens a legacy torch.save file, 0 if there is none.
size_t legacy_magic_length(const uint8_t* d, size_t n) {
  static const uint8_t kLong1[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                   0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
  static const char kText[] = "L119547037146038801333356L\n.";
  size_t p = 0;
  if (n >= 2 && d[0] == 0x80) {
    p = 2;
    if (n >= p + 9 && d[p] == 0x95) p += 9;  // FRAME (protocol 4+)
  }
  if (n - p >= sizeof kLong1 && std::memcmp(d + p, kLong1, sizeof kLong1) == 0)
    return p + sizeof kLong1;
  if (n - p >= sizeof kText - 1 && std::memcmp(d + p, kText, sizeof kText - 1) == 0)
    return p + sizeof kText - 1;
  return 0;
}

// Pre-1.6 layout: magic, protocol version and sys_info pickles, the main pickle, the sorted list
// of storage keys, then per key an int64 element count and the raw elements.
PyValuePtr parse_legacy(const uint8_t* data, size_t size, size_t pos, const std::string& source,
                        Budget& budget) {
  auto next = [&](const char* what, Storages* st) {
    Unpickler u(data + pos, size - pos, cat(source, ": legacy ", what), pos, budget, st);
    PyValuePtr v = u.run();
    pos += u.consumed();
    return v;
  };
  const PyValuePtr proto = next("protocol version", nullptr);
  const auto* pv = std::get_if<int64_t>(&proto->v);
  if (!pv || *pv != 1001)
    fail_at(source, cat("legacy torch.save protocol version is not 1001 (a ", type_name(*proto),
                        pv ? cat(" ", *pv) : std::string(), ")"));
  const PyValuePtr sys_info = next("sys_info", nullptr);
  const auto* sys = std::get_if<PyDict>(&sys_info->v);
  if (!sys) fail_at(source, "legacy sys_info is not a dict");
  bool big_endian = false;
  for (const auto& [k, v] : sys->items) {
    const auto* ks = std::get_if<std::string>(&k->v);
    const auto* b = std::get_if<bool>(&v->v);
    if (ks && *ks == "little_endian" && b) big_endian = !*b;
  }

  Storages st;
  const PyValuePtr root = next("main pickle", &st);
  const PyValuePtr keys = next("storage key list", nullptr);
  const auto* key_list = std::get_if<PyList>(&keys->v);
  if (!key_list) fail_at(source, "legacy storage key list is not a list");

  std::vector<std::optional<ByteSpan>> blobs(st.roots.size());
  for (const PyValuePtr& k : key_list->items) {
    const auto* key = std::get_if<std::string>(&k->v);
    if (!key) fail_at(source, "legacy storage key is not a string");
    const auto it = st.root_by_key.find(*key);
    if (it == st.root_by_key.end())
      fail_at(source, cat("legacy storage '", *key, "' is not used by the main pickle"));
    if (blobs[it->second]) fail_at(source, cat("legacy storage '", *key, "' listed twice"));
    const StorageRoot& r = st.roots[it->second];
    if (size - pos < 8)
      fail_at(source, cat("legacy storage '", *key, "' header at byte ", pos, " is truncated"));
    uint64_t numel = 0;
    for (int i = 0; i < 8; ++i)
      numel |= static_cast<uint64_t>(data[pos + (big_endian ? 7 - i : i)]) << (8 * i);
    if (numel != r.numel)
      fail_at(source, cat("legacy storage '", *key, "' at byte ", pos, " has ", numel,
                          " elements, the pickle says ", r.numel));
    pos += 8;
    const uint64_t bytes = r.numel * r.elem_size();
    if (bytes > size - pos)
      fail_at(source, cat("legacy storage '", *key, "' (", bytes, " bytes at byte ", pos,
                          ") runs past the end of the ", size, "-byte file"));
    blobs[it->second] = ByteSpan{data + pos, static_cast<size_t>(bytes)};
    pos += static_cast<size_t>(bytes);
  }
  materialize(
      st,
      [&](size_t i) {
        if (!blobs[i])
          fail_at(source, cat("legacy storage '", st.roots[i].key, "' has no data in the file"));
        return *blobs[i];
      },
      big_endian);
  return root;
}

std::string describe_key(const PyValue& k) {
  if (const auto* s = std::get_if<std::string>(&k.v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&k.v)) return std::to_string(*i);
  return "<" + type_name(k) + ">";
}

bool has_tensor(const PyDict& d) {
  for (const auto& item : d.items)
    if (std::holds_alternative<TensorRecord>(item.second->v)) return true;
  return false;
}

// `steal` moves tensor bytes out of values nobody else references (the caller owns `root`).
TensorMap state_dict_of(const PyValuePtr& root, const std::string& source, std::string* wrapper,
                        bool steal) {
  if (!root) fail_at(source, "no checkpoint object");
  const auto* top = std::get_if<PyDict>(&root->v);
  if (!top) fail_at(source, cat("top-level object is a ", type_name(*root), ", not a dict"));
  const PyDict* chosen = top;
  std::string chosen_name;
  for (const char* name : {"model", "state_dict"}) {
    for (const auto& [k, v] : top->items) {
      const auto* ks = std::get_if<std::string>(&k->v);
      const auto* d = std::get_if<PyDict>(&v->v);
      if (ks && *ks == name && d && has_tensor(*d)) {
        chosen = d;
        chosen_name = name;
      }
    }
    if (!chosen_name.empty()) break;
  }

  TensorMap out;
  for (const auto& [k, v] : chosen->items) {
    const auto* ks = std::get_if<std::string>(&k->v);
    if (!ks) continue;
    if (auto* t = std::get_if<TensorRecord>(&v->v)) {
      if (steal && v.use_count() == 1)
        out.insert_or_assign(*ks, std::move(*t));
      else
        out.insert_or_assign(*ks, *t);
    } else if (const auto* o = std::get_if<PyObject>(&v->v);
               o && o->cls.rfind("torch._utils._rebuild_", 0) == 0) {
      const std::string* why = o->state ? std::get_if<std::string>(&o->state->v) : nullptr;
      fail_at(source, cat("tensor '", *ks, "' is stored with ", o->cls, ", which this reader ",
                          why ? "cannot handle: " + *why : std::string("does not support")));
    }
  }
  if (out.empty()) {
    std::string keys;
    for (size_t i = 0; i < top->items.size(); ++i) {
      if (i == kMaxListedKeys) {
        keys += cat(", ... (", top->items.size(), " in all)");
        break;
      }
      keys += (i ? ", " : "") + describe_key(*top->items[i].first);
    }
    fail_at(source, cat("no tensors found; top-level keys: ", keys.empty() ? "(none)" : keys));
  }
  if (wrapper) *wrapper = chosen_name;
  return out;
}

}  // namespace

PyValuePtr parse_pth(const uint8_t* data, size_t size, const std::string& source) {
  if (size == 0 || !data) fail_at(source, "empty file, not a torch.save checkpoint");
  Budget budget = Budget::for_input(size);
  if (size >= 4 && data[0] == 'P' && data[1] == 'K' &&
      ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6)))
    return parse_zip(data, size, source, budget);
  if (const size_t n = legacy_magic_length(data, size))
    return parse_legacy(data, size, n, source, budget);
  if (size >= 262 && std::memcmp(data + 257, "ustar", 5) == 0)
    fail_at(source, "tar-based torch.save format (torch < 0.4) is not supported");
  if (data[0] == 0x80)
    fail_at(source, "a pickle without the torch.save magic number, not a torch.save checkpoint");
  fail_at(source, "not a torch.save checkpoint (neither a zip archive nor a legacy pickle)");
}

PyValuePtr read_pth(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return parse_pth(bytes.data(), bytes.size(), path);
}

PyValuePtr parse_pickle(const uint8_t* data, size_t size, const std::string& source,
                        const std::map<std::string, std::vector<uint8_t>>& storages) {
  uint64_t total = size;
  for (const auto& [k, v] : storages) total += v.size();
  Budget budget = Budget::for_input(total);
  Storages st;
  PyValuePtr root;
  {
    Unpickler u(data, size, source, 0, budget, &st);
    root = u.run();
  }
  materialize(
      st,
      [&](size_t i) {
        const StorageRoot& r = st.roots[i];
        const auto it = storages.find(r.key);
        if (it == storages.end()) fail_at(source, cat("storage '", r.key, "' is missing"));
        if (it->second.size() < r.numel * r.elem_size())
          fail_at(source, cat("storage '", r.key, "' holds ", it->second.size(),
                              " bytes but its ", r.numel, " elements of ", r.type_name, " need ",
                              r.numel * r.elem_size()));
        return ByteSpan{it->second.data(), it->second.size()};
      },
      false);
  return root;
}

TensorMap pth_state_dict(const PyValuePtr& root, const std::string& source,
                         std::string* wrapper) {
  return state_dict_of(root, source, wrapper, false);
}

TensorMap read_pth_state_dict(const std::string& path, std::string* wrapper) {
  PyValuePtr root = read_pth(path);
  return state_dict_of(root, path, wrapper, true);
}

}  // namespace skd::io
