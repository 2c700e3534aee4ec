// Tests of the torch.save reader: timm fixtures against safetensors, synthetic and hostile input.
#include "skd/io/pth.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/io/zip.h"
#include "test_util.h"

namespace skd::io {
namespace {

using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------------------------
// Helpers: a local safetensors reader (independent of the library's), a stored/deflate zip
// writer and a pickle assembler, so tests can build archives byte by byte.

TensorMap read_safetensors_minimal(const std::string& path) {
  const Bytes b = read_file_bytes(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(b.at(i)) << (8 * i);
  const auto header = nlohmann::json::parse(b.begin() + 8, b.begin() + 8 + static_cast<long>(n));
  TensorMap out;
  for (const auto& [key, info] : header.items()) {
    if (key == "__metadata__") continue;
    TensorRecord t;
    t.dtype = dtype_from_name(info.at("dtype").get<std::string>()).value();
    t.shape = info.at("shape").get<std::vector<int64_t>>();
    const auto offs = info.at("data_offsets").get<std::vector<size_t>>();
    t.data.assign(b.begin() + 8 + n + offs.at(0), b.begin() + 8 + n + offs.at(1));
    out.emplace(key, std::move(t));
  }
  return out;
}

void put16(Bytes& b, uint32_t v) {
  b.push_back(v & 0xFF);
  b.push_back((v >> 8) & 0xFF);
}
void put32(Bytes& b, uint32_t v) {
  put16(b, v & 0xFFFF);
  put16(b, v >> 16);
}
void put64(Bytes& b, uint64_t v) {
  put32(b, static_cast<uint32_t>(v));
  put32(b, static_cast<uint32_t>(v >> 32));
}

Bytes raw_deflate(const Bytes& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&zs, in.size()) + 16);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

struct ZipFile {
  std::string name;
  Bytes data;
  bool deflate = false;
  uint64_t fake_size = 0;          // when set, the central directory claims this size for both
  uint64_t fake_uncompressed = 0;  // when set, claimed as the uncompressed size only
};

Bytes make_zip(const std::vector<ZipFile>& files, bool zip64 = false) {
  Bytes out, central;
  for (const ZipFile& f : files) {
    const Bytes payload = f.deflate ? raw_deflate(f.data) : f.data;
    const auto crc =
        static_cast<uint32_t>(crc32(0, f.data.data(), static_cast<uInt>(f.data.size())));
    const uint64_t offset = out.size();
    put32(out, 0x04034b50);
    put16(out, 20);
    put16(out, 0);
    put16(out, f.deflate ? 8 : 0);
    put32(out, 0);  // time, date
    put32(out, crc);
    put32(out, static_cast<uint32_t>(payload.size()));
    put32(out, static_cast<uint32_t>(f.data.size()));
    put16(out, static_cast<uint32_t>(f.name.size()));
    put16(out, 0);
    out.insert(out.end(), f.name.begin(), f.name.end());
    out.insert(out.end(), payload.begin(), payload.end());

    const bool big = zip64 || f.fake_size || f.fake_uncompressed;
    const uint64_t size = f.fake_size         ? f.fake_size
                          : f.fake_uncompressed ? f.fake_uncompressed
                                                : f.data.size();
    put32(central, 0x02014b50);
    put16(central, 45);
    put16(central, 45);
    put16(central, 0);
    put16(central, f.deflate ? 8 : 0);
    put32(central, 0);
    put32(central, crc);
    put32(central, big ? 0xFFFFFFFF : static_cast<uint32_t>(payload.size()));
    put32(central, big ? 0xFFFFFFFF : static_cast<uint32_t>(f.data.size()));
    put16(central, static_cast<uint32_t>(f.name.size()));
    put16(central, big ? 28 : 0);
    put16(central, 0);  // comment
    put16(central, 0);  // disk
    put16(central, 0);  // internal attributes
    put32(central, 0);  // external attributes
    put32(central, big ? 0xFFFFFFFF : static_cast<uint32_t>(offset));
    central.insert(central.end(), f.name.begin(), f.name.end());
    if (big) {
      put16(central, 1);
      put16(central, 24);
      put64(central, size);
      put64(central, f.fake_size ? f.fake_size : payload.size());
      put64(central, offset);
    }
  }
  const uint64_t cd_offset = out.size();
  out.insert(out.end(), central.begin(), central.end());
  if (zip64) {
    const uint64_t rec = out.size();
    put32(out, 0x06064b50);
    put64(out, 44);
    put16(out, 45);
    put16(out, 45);
    put32(out, 0);
    put32(out, 0);
    put64(out, files.size());
    put64(out, files.size());
    put64(out, central.size());
    put64(out, cd_offset);
    put32(out, 0x07064b50);
    put32(out, 0);
    put64(out, rec);
    put32(out, 1);
  }
  put32(out, 0x06054b50);
  put32(out, 0);
  put16(out, static_cast<uint32_t>(files.size()));
  put16(out, static_cast<uint32_t>(files.size()));
  put32(out, static_cast<uint32_t>(central.size()));
  put32(out, zip64 ? 0xFFFFFFFF : static_cast<uint32_t>(cd_offset));
  put16(out, 0);
  return out;
}

// Emits pickle opcodes; methods mirror what torch.save's pickler writes.
class Pickle {
 public:
  explicit Pickle(bool proto = true) {
    if (proto) b_ = {0x80, 2};
  }
  Pickle& op(uint8_t c) {
    b_.push_back(c);
    return *this;
  }
  Pickle& u32(uint32_t v) {
    put32(b_, v);
    return *this;
  }
  Pickle& raw(const std::string& s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Pickle& str(const std::string& s) {
    op('X');
    put32(b_, static_cast<uint32_t>(s.size()));
    return raw(s);
  }
  Pickle& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').op(static_cast<uint8_t>(v));
    if (v >= 0 && v < 65536) {
      op('M');
      put16(b_, static_cast<uint32_t>(v));
      return *this;
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put32(b_, static_cast<uint32_t>(static_cast<int32_t>(v)));
      return *this;
    }
    op(0x8a).op(8);
    put64(b_, static_cast<uint64_t>(v));
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    return op('c').raw(module + "\n" + name + "\n");
  }
  Pickle& mark() { return op('('); }
  Pickle& tuple() { return op('t'); }
  Pickle& ints(const std::vector<int64_t>& v) {
    mark();
    for (int64_t x : v) integer(x);
    return tuple();
  }
  // ('storage', torch.<type>, key, 'cpu', numel) as a persistent id.
  Pickle& storage(const std::string& type, const std::string& key, int64_t numel) {
    mark().str("storage").global("torch", type).str(key).str("cpu").integer(numel).tuple();
    return op('Q');
  }
  Pickle& empty_ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  Pickle& tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    storage(type, key, numel).integer(offset).ints(sizes).ints(strides).op(0x89);
    return empty_ordered_dict().tuple().op('R');
  }
  Pickle& stop() { return op('.'); }
  const Bytes& bytes() const { return b_; }

 private:
  Bytes b_;
};

Bytes floats(const std::vector<float>& v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<float> as_floats(const TensorRecord& t) {
  EXPECT_EQ(t.dtype, DType::F32);
  std::vector<float> v(t.data.size() / 4);
  std::memcpy(v.data(), t.data.data(), v.size() * 4);
  return v;
}

Bytes make_pth(const std::string& prefix, const Pickle& pickle,
               const std::map<std::string, Bytes>& storages, bool deflate = false,
               bool zip64 = false) {
  std::vector<ZipFile> files{{prefix + "/data.pkl", pickle.bytes(), deflate}};
  for (const auto& [k, v] : storages) files.push_back({prefix + "/data/" + k, v, deflate});
  files.push_back({prefix + "/version", {'3', '\n'}});
  return make_zip(files, zip64);
}

// Runs `f` and expects a FormatError whose message names `source` (and contains `needle`).
template <typename F>
void expect_format_error(F&& f, const std::string& source, const std::string& needle = "") {
  try {
    f();
    ADD_FAILURE() << "expected a FormatError for " << source;
  } catch (const FormatError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(source), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << "'" << needle << "' not in: " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a FormatError, got: " << e.what();
  }
}

PyValuePtr parse(const Bytes& b, const std::string& source) {
  return parse_pth(b.data(), b.size(), source);
}

const PyValuePtr* dict_get(const PyValuePtr& d, const std::string& key) {
  for (const auto& [k, v] : std::get<PyDict>(d->v).items)
    if (const auto* s = std::get_if<std::string>(&k->v); s && *s == key) return &v;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Fixtures: every .pth must hold exactly the tensors of its .safetensors twin.

class PthFixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PthFixtureTest, StateDictMatchesSafetensors) {
  const std::string pth = test::fixture("timm/" + GetParam() + ".pth");
  const std::string st = test::fixture("timm/" + GetParam() + ".safetensors");
  ASSERT_FALSE(pth.empty() || st.empty());
  std::string wrapper;
  const TensorMap got = read_pth_state_dict(pth, &wrapper);
  const TensorMap want = read_safetensors_minimal(st);
  EXPECT_EQ(wrapper, "model");
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, w] : want) {
    const auto it = got.find(key);
    ASSERT_NE(it, got.end()) << "missing " << key;
    EXPECT_EQ(it->second.dtype, w.dtype) << key;
    EXPECT_EQ(it->second.shape, w.shape) << key;
    EXPECT_TRUE(it->second.data == w.data) << "bytes differ for " << key;
  }
}

INSTANTIATE_TEST_SUITE_P(Timm, PthFixtureTest,
                         ::testing::Values("vit_micro_32", "swin_micro_32",
                                           "swin_micro_32.legacy", "deit_tiny_patch16_224"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '.') c = '_';
                           return n;
                         });

TEST(PthFixture, TreeAndInMemoryParse) {
  const std::string path = test::fixture("timm/vit_micro_32.pth");
  ASSERT_FALSE(path.empty());
  const Bytes b = read_file_bytes(path);
  const PyValuePtr root = parse(b, "vit.pth");
  ASSERT_TRUE(std::holds_alternative<PyDict>(root->v));
  const PyValuePtr* model = dict_get(root, "model");
  ASSERT_NE(model, nullptr);
  const auto& items = std::get<PyDict>((*model)->v).items;
  ASSERT_EQ(items.size(), 56u);
  EXPECT_EQ(std::get<std::string>(items[0].first->v), "cls_token");  // insertion order kept
  const auto& cls = std::get<TensorRecord>(items[0].second->v);
  EXPECT_EQ(cls.shape, (std::vector<int64_t>{1, 1, 64}));
  std::string wrapper;
  const TensorMap m = pth_state_dict(root, "vit.pth", &wrapper);
  EXPECT_EQ(wrapper, "model");
  EXPECT_EQ(m.size(), 56u);
  EXPECT_TRUE(m.at("cls_token").data == cls.data);
}

TEST(PthFixture, SwinLegacyKeepsIntegerBuffers) {
  const std::string path = test::fixture("timm/swin_micro_32.legacy.pth");
  ASSERT_FALSE(path.empty());
  const TensorMap m = read_pth_state_dict(path);
  const TensorRecord& idx = m.at("layers.0.blocks.0.attn.relative_position_index");
  EXPECT_EQ(idx.dtype, DType::I64);
  EXPECT_EQ(idx.shape, (std::vector<int64_t>{16, 16}));
  EXPECT_EQ(m.at("layers.0.blocks.1.attn_mask").dtype, DType::F32);
}

// ---------------------------------------------------------------------------------------------
// Synthetic archives.

TEST(PthSynthetic, NonContiguousStridesAreMadeContiguous) {
  // storage [0..11]; t = a 3x2 view with strides (1, 3) starting at element 1, i.e. the
  // transpose of rows [1 2 3] and [4 5 6]; z is empty, s a 0-dim scalar at element 11.
  Pickle p;
  p.op('}').mark();
  p.str("t").tensor("FloatStorage", "0", 12, 1, {3, 2}, {1, 3});
  p.str("z").tensor("FloatStorage", "0", 12, 0, {0, 5}, {5, 1});
  p.str("s").tensor("FloatStorage", "0", 12, 11, {}, {});
  p.str("b").tensor("FloatStorage", "0", 12, 0, {2, 2}, {0, 1});  // stride 0: broadcast rows
  p.op('u').stop();
  std::vector<float> storage(12);
  for (int i = 0; i < 12; ++i) storage[i] = static_cast<float>(i);
  const Bytes file = make_pth("weird name", p, {{"0", floats(storage)}});
  std::string wrapper = "unset";
  const TensorMap m = pth_state_dict(parse(file, "strided.pth"), "strided.pth", &wrapper);
  EXPECT_EQ(wrapper, "");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m.at("t").shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(as_floats(m.at("t")), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(m.at("z").shape, (std::vector<int64_t>{0, 5}));
  EXPECT_TRUE(m.at("z").data.empty());
  EXPECT_TRUE(m.at("s").shape.empty());
  EXPECT_EQ(as_floats(m.at("s")), (std::vector<float>{11}));
  EXPECT_EQ(as_floats(m.at("b")), (std::vector<float>{0, 1, 0, 1}));
}

TEST(PthSynthetic, WrapperSelection) {
  auto tensor_dict = [](Pickle& p) {
    p.op('}').mark().str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('u');
  };
  const std::map<std::string, Bytes> st{{"0", floats({1.5f, -2})}};
  {  // {'epoch': 3, 'state_dict': {'w': ...}}
    Pickle p;
    p.op('}').mark().str("epoch").integer(3).str("state_dict");
    tensor_dict(p);
    p.op('u').stop();
    std::string wrapper;
    const TensorMap m = pth_state_dict(parse(make_pth("a", p, st), "sd.pth"), "sd.pth", &wrapper);
    EXPECT_EQ(wrapper, "state_dict");
    EXPECT_EQ(as_floats(m.at("w")), (std::vector<float>{1.5f, -2}));
  }
  {  // 'model' wins over 'state_dict'; a 'model' without tensors does not count
    Pickle p;
    p.op('}').mark().str("state_dict");
    tensor_dict(p);
    p.str("model");
    tensor_dict(p);
    p.op('u').stop();
    std::string wrapper;
    pth_state_dict(parse(make_pth("a", p, st), "m.pth"), "m.pth", &wrapper);
    EXPECT_EQ(wrapper, "model");
    Pickle q;
    q.op('}').mark().str("model").op('}').str("w");  // {'model': {}, 'w': tensor}
    q.tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('u').stop();
    const TensorMap m = pth_state_dict(parse(make_pth("a", q, st), "m.pth"), "m.pth", &wrapper);
    EXPECT_EQ(wrapper, "");
    EXPECT_EQ(m.count("w"), 1u);
  }
  {  // no tensors anywhere: the message lists the top-level keys
    Pickle p;
    p.op('}').mark().str("epoch").integer(3).str("optimizer").op('}').op('u').stop();
    const PyValuePtr root = parse(make_pth("a", p, {}), "x.pth");
    expect_format_error([&] { pth_state_dict(root, "x.pth"); }, "x.pth",
                        "x.pth: no tensors found; top-level keys: epoch, optimizer");
  }
  {  // top level is not a dict
    Pickle p;
    p.op(']').stop();
    const PyValuePtr root = parse(make_pth("a", p, {}), "l.pth");
    expect_format_error([&] { pth_state_dict(root, "l.pth"); }, "l.pth", "not a dict");
  }
}

TEST(PthSynthetic, PickleOpcodes) {
  // A little of everything protocols 0-4 write; the expected tree is checked below.
  Pickle p;
  p.op('}').op(0x94);  // MEMOIZE -> memo 0
  p.mark();
  p.str("ints").mark().op('I').raw("-7\n").op('L').raw("12345678901L\n");
  p.op(0x8a).op(2).op(0x00).op(0x80);              // LONG1 -32768
  p.op(0x8b).u32(9);                               // LONG4 -1 (9 bytes, sign extension)
  for (int i = 0; i < 9; ++i) p.op(0xFF);
  p.integer(1LL << 40).op('J').u32(0xFFFFFFFE).op('l');  // BININT -2
  p.str("floats").op(']').mark().op('F').raw("0.25\n").op('G');
  for (uint8_t c : {0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18}) p.op(c);  // pi
  p.op('e');
  p.str("strs").mark().op('S').raw("'a\\x41\\n'\n").op('V').raw("\\u00e9z\n");
  p.op('U').op(2).raw("hi").op(0x8c).op(3).raw("abc").op('C').op(2).op(1).op(2).tuple();
  p.str("misc").op('N').op(0x88).op(0x89).op(0x87);  // TUPLE3
  p.str("set").op(0x8f).mark().integer(1).integer(2).op(0x90);
  p.str("enc").global("_codecs", "encode").str("\xc3\xbf" "A").str("latin1").op(0x86).op('R');
  p.str("ns").global("argparse", "Namespace").op(')').op(0x81).op('}').str("lr").integer(5);
  p.op('s').op('b');
  p.str("again").op('h').op(0).op(0x85);  // (root,): nests the root dict in a tuple...
  p.op('u').stop();
  // ...so the SETITEMS that follows would modify a nested dict (a cycle): refused.
  expect_format_error([&] { parse_pickle(p.bytes().data(), p.bytes().size(), "ops.pkl", {}); },
                      "ops.pkl", "nested elsewhere");

  // Same pickle without the self reference.
  Bytes b = p.bytes();
  const std::string tail = "again";
  const auto at = std::search(b.begin(), b.end(), tail.begin(), tail.end()) - 5;  // 'X' + len
  b.erase(at, b.end());
  b.push_back('u');
  b.push_back('.');
  const PyValuePtr root = parse_pickle(b.data(), b.size(), "ops.pkl", {});
  auto items = [&](const char* k) { return std::get<PyList>((*dict_get(root, k))->v).items; };
  const auto ints = items("ints");
  ASSERT_EQ(ints.size(), 6u);
  EXPECT_EQ(std::get<int64_t>(ints[0]->v), -7);
  EXPECT_EQ(std::get<int64_t>(ints[1]->v), 12345678901LL);
  EXPECT_EQ(std::get<int64_t>(ints[2]->v), -32768);
  EXPECT_EQ(std::get<int64_t>(ints[3]->v), -1);
  EXPECT_EQ(std::get<int64_t>(ints[4]->v), 1LL << 40);
  EXPECT_EQ(std::get<int64_t>(ints[5]->v), -2);
  const auto fl = items("floats");
  ASSERT_EQ(fl.size(), 2u);
  EXPECT_EQ(std::get<double>(fl[0]->v), 0.25);
  EXPECT_DOUBLE_EQ(std::get<double>(fl[1]->v), 3.141592653589793);
  const auto strs = items("strs");
  ASSERT_EQ(strs.size(), 5u);
  EXPECT_EQ(std::get<std::string>(strs[0]->v), "aA\n");
  EXPECT_EQ(std::get<std::string>(strs[1]->v), "\xc3\xa9z");
  EXPECT_EQ(std::get<std::string>(strs[2]->v), "hi");
  EXPECT_EQ(std::get<std::string>(strs[3]->v), "abc");
  EXPECT_EQ(std::get<PyBytes>(strs[4]->v).data, (Bytes{1, 2}));
  const auto misc = items("misc");
  ASSERT_EQ(misc.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<PyNone>(misc[0]->v));
  EXPECT_TRUE(std::get<bool>(misc[1]->v));
  EXPECT_FALSE(std::get<bool>(misc[2]->v));
  EXPECT_EQ(items("set").size(), 2u);
  EXPECT_EQ(std::get<PyBytes>((*dict_get(root, "enc"))->v).data, (Bytes{0xFF, 'A'}));
  const auto& ns = std::get<PyObject>((*dict_get(root, "ns"))->v);
  EXPECT_EQ(ns.cls, "argparse.Namespace");
  ASSERT_TRUE(ns.state);
  const PyValuePtr* lr = dict_get(ns.state, "lr");
  ASSERT_NE(lr, nullptr);
  EXPECT_EQ(std::get<int64_t>((*lr)->v), 5);
}

TEST(PthSynthetic, ParametersSubclassesAndV3) {
  Pickle p;
  p.op('}').mark();
  // _rebuild_parameter(tensor, requires_grad, hooks)
  p.str("param").global("torch._utils", "_rebuild_parameter").mark();
  p.tensor("FloatStorage", "0", 2, 0, {2}, {1}).op(0x88).empty_ordered_dict().tuple().op('R');
  // _rebuild_from_type_v2(_rebuild_tensor_v2, Parameter, (args...), state)
  p.str("sub").global("torch._tensor", "_rebuild_from_type_v2").mark();
  p.global("torch._utils", "_rebuild_tensor_v2").global("torch.nn", "Parameter").mark();
  p.storage("LongStorage", "1", 3).integer(1).ints({2}).ints({1}).op(0x89).empty_ordered_dict();
  p.tuple().op('}').tuple().op('R');
  // _rebuild_tensor_v3 over an untyped storage, dtype given explicitly (bf16, 2 elements)
  p.str("v3").global("torch._utils", "_rebuild_tensor_v3").mark();
  p.storage("UntypedStorage", "2", 4).integer(0).ints({2}).ints({1}).op(0x89);
  p.empty_ordered_dict().global("torch", "bfloat16").tuple().op('R');
  // torch.Size as the size argument, big-endian-free int32 storage
  p.str("size").global("torch._utils", "_rebuild_tensor_v2").mark();
  p.storage("IntStorage", "3", 2).integer(0).global("torch", "Size").mark().ints({2}).tuple();
  p.op('R').ints({1}).op(0x89).empty_ordered_dict().tuple().op('R');
  p.op('u').stop();
  const Bytes i64 = [] {
    Bytes b(24);
    const int64_t v[3] = {7, -8, 9};
    std::memcpy(b.data(), v, 24);
    return b;
  }();
  const Bytes i32 = {1, 0, 0, 0, 2, 0, 0, 0};
  const Bytes file = make_pth("p", p, {{"0", floats({1, 2})}, {"1", i64}, {"2", {1, 2, 3, 4}},
                                      {"3", i32}});
  const TensorMap m = pth_state_dict(parse(file, "p.pth"), "p.pth");
  EXPECT_EQ(as_floats(m.at("param")), (std::vector<float>{1, 2}));
  EXPECT_EQ(m.at("sub").dtype, DType::I64);
  EXPECT_EQ(m.at("sub").data, Bytes(i64.begin() + 8, i64.end()));
  EXPECT_EQ(m.at("v3").dtype, DType::BF16);
  EXPECT_EQ(m.at("v3").data, (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(m.at("size").dtype, DType::I32);
  EXPECT_EQ(m.at("size").data, i32);
}

TEST(PthSynthetic, UnsupportedStorageTypeIsReportedByKey) {
  Pickle p;
  p.op('}').str("c").tensor("ComplexFloatStorage", "0", 1, 0, {1}, {1}).op('s').stop();
  const PyValuePtr root = parse(make_pth("c", p, {{"0", Bytes(8)}}), "c.pth");
  expect_format_error([&] { pth_state_dict(root, "c.pth"); }, "c.pth", "ComplexFloatStorage");
}

TEST(PthSynthetic, DeflateZip64AndByteOrder) {
  Pickle p;
  p.op('}').str("w").tensor("ShortStorage", "0", 3, 0, {3}, {1}).op('s').stop();
  const Bytes le = {1, 0, 2, 0, 0xFF, 0xFF};
  const TensorMap m =
      pth_state_dict(parse(make_pth("z", p, {{"0", le}}, true, true), "z.pth"), "z.pth");
  EXPECT_EQ(m.at("w").data, le);

  std::vector<ZipFile> files{{"z/data.pkl", p.bytes()},
                             {"z/data/0", {0, 1, 0, 2, 0xFF, 0xFF}},
                             {"z/byteorder", {'b', 'i', 'g'}}};
  const TensorMap be = pth_state_dict(parse(make_zip(files), "be.pth"), "be.pth");
  EXPECT_EQ(be.at("w").data, le);
}

TEST(PthSynthetic, SharedStorageIsLoadedOnce) {
  Pickle p;
  p.op('}').mark();
  p.str("a").tensor("FloatStorage", "0", 4, 0, {2}, {1});
  p.str("b").tensor("FloatStorage", "0", 4, 2, {2}, {1});
  p.str("c").op('h').op(0);  // not memoized: BINGET of a missing entry
  p.op('u').stop();
  expect_format_error([&] { parse(make_pth("s", p, {{"0", floats({1, 2, 3, 4})}}), "s.pth"); },
                      "s.pth", "memo");
  Pickle q;
  q.op('}').mark();
  q.str("a").tensor("FloatStorage", "0", 4, 0, {2}, {1}).op('q').op(7);
  q.str("b").tensor("FloatStorage", "0", 4, 2, {2}, {1});
  q.str("c").op('h').op(7);
  q.op('u').stop();
  const TensorMap m =
      pth_state_dict(parse(make_pth("s", q, {{"0", floats({1, 2, 3, 4})}}), "s.pth"), "s.pth");
  EXPECT_EQ(as_floats(m.at("a")), (std::vector<float>{1, 2}));
  EXPECT_EQ(as_floats(m.at("b")), (std::vector<float>{3, 4}));
  EXPECT_EQ(as_floats(m.at("c")), (std::vector<float>{1, 2}));
}

// Builds a pre-1.6 file: magic, protocol, sys_info, main pickle, key list, storages.
Bytes make_legacy(const Pickle& main, const std::vector<std::pair<std::string, Bytes>>& storages,
                  const std::vector<uint64_t>& numels) {
  Bytes out = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
               0x20, 0x6a, 0xa8, 0x50, 0x19, '.', 0x80, 0x02, 'M', 0xe9, 0x03, '.'};
  Pickle sys;
  sys.op('}').mark().str("protocol_version").integer(1001).str("little_endian").op(0x88);
  sys.str("type_sizes").op('}').mark().str("short").integer(2).str("int").integer(4);
  sys.str("long").integer(4).op('u').op('u').stop();
  Pickle keys;
  keys.op(']').mark();
  for (const auto& s : storages) keys.str(s.first);
  keys.op('e').stop();
  for (const Bytes* b : {&sys.bytes(), &main.bytes(), &keys.bytes()})
    out.insert(out.end(), b->begin(), b->end());
  for (size_t i = 0; i < storages.size(); ++i) {
    put64(out, numels[i]);
    out.insert(out.end(), storages[i].second.begin(), storages[i].second.end());
  }
  return out;
}

TEST(PthLegacy, ReadsPre16Files) {
  // {'state_dict': {'v': view [2, +3) of storage 'k', 'w': 2x3 over all of it}}
  Pickle p;
  p.op('}').str("state_dict").op('}').mark();
  p.str("v").global("torch._utils", "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", "FloatStorage").str("k").str("cpu").integer(6);
  p.mark().str("k_view").integer(2).integer(3).tuple().tuple().op('Q');
  p.integer(0).ints({3}).ints({1}).op(0x89).empty_ordered_dict().tuple().op('R');
  p.str("w").global("torch._utils", "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", "FloatStorage").str("k").str("cpu").integer(6);
  p.op('N').tuple().op('Q');
  p.integer(0).ints({2, 3}).ints({3, 1}).op(0x89).empty_ordered_dict().tuple().op('R');
  p.op('u').op('s').stop();
  const Bytes file = make_legacy(p, {{"k", floats({0, 1, 2, 3, 4, 5})}}, {6});
  std::string wrapper;
  const TensorMap m = pth_state_dict(parse(file, "old.pth"), "old.pth", &wrapper);
  EXPECT_EQ(wrapper, "state_dict");
  EXPECT_EQ(as_floats(m.at("v")), (std::vector<float>{2, 3, 4}));
  EXPECT_EQ(as_floats(m.at("w")), (std::vector<float>{0, 1, 2, 3, 4, 5}));

  for (size_t cut : {size_t{5}, size_t{30}, file.size() / 2, file.size() - 1}) {
    const Bytes part(file.begin(), file.begin() + static_cast<long>(cut));
    expect_format_error([&] { parse(part, "old.pth"); }, "old.pth");
  }
  expect_format_error(
      [&] { parse(make_legacy(p, {{"k", floats({0, 1, 2, 3, 4, 5})}}, {5}), "n.pth"); }, "n.pth",
      "elements");
  expect_format_error([&] { parse(make_legacy(p, {}, {}), "m.pth"); }, "m.pth", "no data");
}

// ---------------------------------------------------------------------------------------------
// Hostile input: always a FormatError naming the source, never a crash or a huge allocation.

TEST(PthHostile, EmptyAndRandomBytes) {
  expect_format_error([] { parse_pth(nullptr, 0, "empty.pth"); }, "empty.pth", "empty");
  const std::string dir = test::scratch_dir("pth_hostile");
  const std::string path = dir + "/empty.pth";
  std::ofstream(path).close();
  expect_format_error([&] { read_pth(path); }, "empty.pth");

  std::mt19937 rng(1234);
  for (int trial = 0; trial < 300; ++trial) {
    Bytes b(1 + rng() % 3000);
    for (auto& c : b) c = static_cast<uint8_t>(rng());
    if (trial % 3 == 1 && b.size() >= 4) std::memcpy(b.data(), "PK\x03\x04", 4);
    if (trial % 3 == 2 && b.size() >= 2) b[0] = 0x80, b[1] = 2;
    expect_format_error([&] { parse(b, "random.pth"); }, "random.pth");
  }
}

TEST(PthHostile, TruncatedFixture) {
  const std::string path = test::fixture("timm/vit_micro_32.pth");
  ASSERT_FALSE(path.empty());
  const Bytes b = read_file_bytes(path);
  for (double frac : {0.0001, 0.1, 0.5, 0.9, 0.99, 0.9999}) {
    const Bytes part(b.begin(), b.begin() + static_cast<long>(b.size() * frac));
    expect_format_error([&] { parse(part, "cut.pth"); }, "cut.pth");
  }
  const Bytes minus_one(b.begin(), b.end() - 1);
  expect_format_error([&] { parse(minus_one, "cut.pth"); }, "cut.pth");
}

TEST(PthHostile, MissingPickleOrStorage) {
  expect_format_error([] { parse(make_zip({{"a/version", {'3'}}}), "nopkl.pth"); }, "nopkl.pth",
                      "data.pkl");
  expect_format_error([] { parse(make_zip({{"data.pkl", {0x80, 2, ']', '.'}}}), "flat.pth"); },
                      "flat.pth", "data.pkl");
  expect_format_error(
      [] {
        parse(make_zip({{"a/data.pkl", {0x80, 2, ']', '.'}}, {"b/data.pkl", {0x80, 2, ']', '.'}}}),
              "two.pth");
      },
      "two.pth", "several");
  Pickle p;
  p.op('}').str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('s').stop();
  expect_format_error([&] { parse(make_pth("a", p, {}), "nostorage.pth"); }, "nostorage.pth",
                      "a/data/0");
}

TEST(PthHostile, CorruptedPickleOpcode) {
  const std::string path = test::fixture("timm/vit_micro_32.pth");
  ASSERT_FALSE(path.empty());
  const Bytes b = read_file_bytes(path);
  const ZipArchive zip(b.data(), b.size(), "vit");
  std::vector<ZipFile> files;
  for (const ZipEntry& e : zip.entries()) {
    Bytes scratch;
    const ByteSpan s = zip.read(e, scratch);
    files.push_back({e.name, Bytes(s.data, s.data + s.size)});
  }
  ASSERT_EQ(files[0].name, "vit_micro_32/data.pkl");
  ASSERT_EQ(files[0].data[2], '}');
  EXPECT_NO_THROW(parse(make_zip(files), "rebuilt.pth"));  // the writer itself is sound
  files[0].data[2] = 0xFF;
  expect_format_error([&] { parse(make_zip(files), "badop.pth"); }, "badop.pth",
                      "opcode unknown 0xff at byte 2");
  // The same corruption without fixing the CRC is caught by the zip layer.
  Bytes raw = b;
  const auto at = std::search(raw.begin(), raw.end(), files[0].data.begin() + 3,
                              files[0].data.begin() + 20);
  ASSERT_NE(at, raw.end());
  *(at - 1) = 0xFF;
  expect_format_error([&] { parse(raw, "crc.pth"); }, "crc.pth", "CRC");
}

TEST(PthHostile, StorageTooSmallOrTensorOutOfBounds) {
  Pickle p;
  p.op('}').str("w").tensor("FloatStorage", "0", 100, 0, {100}, {1}).op('s').stop();
  expect_format_error([&] { parse(make_pth("a", p, {{"0", Bytes(8)}}), "small.pth"); },
                      "small.pth", "holds 8 bytes");
  Pickle q;
  q.op('}').str("w").tensor("FloatStorage", "0", 4, 2, {2, 2}, {2, 1}).op('s').stop();
  expect_format_error([&] { parse(make_pth("a", q, {{"0", Bytes(16)}}), "oob.pth"); }, "oob.pth",
                      "past the end of storage");
  Pickle r;
  r.op('}').str("w").tensor("FloatStorage", "0", 4, 0, {INT64_MAX, 4}, {1, 1}).op('s').stop();
  expect_format_error([&] { parse(make_pth("a", r, {{"0", Bytes(16)}}), "ovf.pth"); }, "ovf.pth");
  Pickle s;
  s.op('}').str("w").tensor("FloatStorage", "0", 4, 0, {2}, {-1}).op('s').stop();
  expect_format_error([&] { parse(make_pth("a", s, {{"0", Bytes(16)}}), "neg.pth"); }, "neg.pth",
                      "negative");
  // An overlapping view cannot be used to blow a small file up into gigabytes.
  Pickle t;
  t.op('}').str("w").tensor("FloatStorage", "0", 1, 0, {1 << 20, 1 << 20}, {0, 0}).op('s').stop();
  expect_format_error([&] { parse(make_pth("a", t, {{"0", Bytes(4)}}), "amp.pth"); }, "amp.pth",
                      "more bytes");
}

TEST(PthHostile, ZipEntriesLyingAboutTheirSize) {
  Pickle p;
  p.op('}').str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('s').stop();
  const uint64_t huge = uint64_t{100} << 30;  // 100 GB in a file of a few hundred bytes
  ZipFile lying{"a/data/0", floats({1, 2}), false, huge};
  expect_format_error([&] { parse(make_zip({{"a/data.pkl", p.bytes()}, lying}), "lie.pth"); },
                      "lie.pth", "claims");
  ZipFile lying_deflate{"a/data/0", floats({1, 2}), true, huge};
  expect_format_error(
      [&] { parse(make_zip({{"a/data.pkl", p.bytes()}, lying_deflate}), "lie8.pth"); },
      "lie8.pth");
  // Deflated entries: a claim beyond what deflate can expand to is refused before allocating;
  // a plausible claim that the stream then exceeds or falls short of is refused while inflating.
  ZipFile bomb{"a/data/0", Bytes(1000, 7), true, 0, huge};
  expect_format_error([&] { parse(make_zip({{"a/data.pkl", p.bytes()}, bomb}), "bomb.pth"); },
                      "bomb.pth", "compressed bytes");
  ZipFile more{"a/data/0", Bytes(1000, 7), true, 0, 500};
  expect_format_error([&] { parse(make_zip({{"a/data.pkl", p.bytes()}, more}), "more.pth"); },
                      "more.pth", "more than its 500 bytes");
  ZipFile fewer{"a/data/0", Bytes(1000, 7), true, 0, 2000};
  expect_format_error([&] { parse(make_zip({{"a/data.pkl", p.bytes()}, fewer}), "fewer.pth"); },
                      "fewer.pth", "inflates to 1000 bytes");
}

TEST(PthHostile, PickleMachineLimits) {
  auto run = [](const Bytes& b) { parse_pickle(b.data(), b.size(), "vm.pkl", {}); };
  expect_format_error([&] { run({0x80, 2, '.'}); }, "vm.pkl", "underflow");
  expect_format_error([&] { run({0x80, 2, ']'}); }, "vm.pkl", "without STOP");
  expect_format_error([&] { run({0x80, 9, 'N', '.'}); }, "vm.pkl", "protocol");
  expect_format_error([&] { run({0x80, 2, 'N', 'N', 'N', 's', '.'}); }, "vm.pkl", "setting items");
  expect_format_error([&] { run({0x80, 2, '(', 'N', 'a', '.'}); }, "vm.pkl", "underflow");
  expect_format_error([&] { run({0x80, 2, 'X', 0xFF, 0xFF, 0xFF, 0x7F, '.'}); }, "vm.pkl",
                      "past the end");
  expect_format_error([&] { run({0x80, 2, 'X', 1, 0, 0, 0, 0xC3, '.'}); }, "vm.pkl", "UTF-8");
  Bytes big = {0x80, 2, 0x8a, 9};
  for (int i = 0; i < 8; ++i) big.push_back(0);
  big.push_back(1);
  big.push_back('.');
  expect_format_error([&] { run(big); }, "vm.pkl", "64 bits");
  // Unknown callables become opaque objects; nothing is executed.
  Pickle os;
  os.global("os", "system").str("rm -rf /").op(0x85).op('R').stop();
  const PyValuePtr v = parse_pickle(os.bytes().data(), os.bytes().size(), "vm.pkl", {});
  EXPECT_EQ(std::get<PyObject>(v->v).cls, "os.system");
  Pickle pid;
  pid.tensor("FloatStorage", "0", 1, 0, {1}, {1}).stop();
  expect_format_error([&] { run(pid.bytes()); }, "vm.pkl", "storage '0' is missing");

  // Deep nesting (destructors recurse) and self-containing lists are refused.
  Bytes deep = {0x80, 2};
  for (int i = 0; i < 100000; ++i) deep.push_back(']');
  for (int i = 0; i < 100000; ++i) deep.push_back('a');
  deep.push_back('.');
  expect_format_error([&] { run(deep); }, "vm.pkl", "nested more than");
  expect_format_error([&] { run({0x80, 2, ']', '2', 'a', '.'}); }, "vm.pkl", "itself");
  expect_format_error([&] { run({0x80, 2, ']', 'q', 0, ']', 'h', 0, 'a', 'a', '.'}); }, "vm.pkl",
                      "nested elsewhere");  // a two-list cycle
  // Many references to one big string cannot multiply work without bound.
  Pickle amp;
  amp.global("_codecs", "encode").op('q').op(0);
  amp.str(std::string(100000, 'a')).str("latin1").op(0x86).op('q').op(1).op('0').op('0');
  amp.op(']');
  for (int i = 0; i < 20000; ++i) amp.op('h').op(0).op('h').op(1).op('R').op('a');
  amp.stop();
  expect_format_error([&] { run(amp.bytes()); }, "vm.pkl", "work");
}

// Random mutations of real input must end in success or a FormatError, nothing else.
TEST(PthHostile, MutatedInputsNeverCrash) {
  const std::string path = test::fixture("timm/vit_micro_32.pth");
  ASSERT_FALSE(path.empty());
  const Bytes file = read_file_bytes(path);
  const ZipArchive zip(file.data(), file.size(), "vit");
  Bytes pkl;
  std::map<std::string, Bytes> storages;
  for (const ZipEntry& e : zip.entries()) {
    Bytes scratch;
    const ByteSpan s = zip.read(e, scratch);
    const Bytes data(s.data, s.data + s.size);
    if (e.name == "vit_micro_32/data.pkl") pkl = data;
    if (e.name.rfind("vit_micro_32/data/", 0) == 0) storages[e.name.substr(18)] = data;
  }
  ASSERT_FALSE(pkl.empty());
  ASSERT_EQ(pth_state_dict(parse_pickle(pkl.data(), pkl.size(), "m.pkl", storages), "m").size(),
            56u);

  std::mt19937 rng(99);
  int rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    Bytes b = pkl;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    if (trial % 5 == 0) b.resize(rng() % b.size());
    try {
      pth_state_dict(parse_pickle(b.data(), b.size(), "m.pkl", storages), "m.pkl");
    } catch (const FormatError& e) {
      ++rejected;
      EXPECT_NE(std::string(e.what()).find("m.pkl"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "trial " << trial << ": unexpected exception " << e.what();
    }
  }
  EXPECT_GT(rejected, 0);
  // Whole-archive mutations of a small synthetic checkpoint (headers, directory, CRC...).
  Pickle p;
  p.op('}').str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('s').stop();
  for (bool deflate : {false, true}) {
    const Bytes z = make_pth("a", p, {{"0", floats({1, 2})}}, deflate, deflate);
    for (int trial = 0; trial < 400; ++trial) {
      Bytes b = z;
      b[rng() % b.size()] = static_cast<uint8_t>(rng());
      try {
        parse(b, "z.pth");
      } catch (const FormatError&) {
      } catch (const std::exception& e) {
        ADD_FAILURE() << "unexpected exception " << e.what();
      }
    }
  }
}

}  // namespace
}  // namespace skd::io
