#include "skd/export/graph.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#ifdef SKD_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#endif

#include "skd/core/error.h"
#include "skd/core/options.h"
#include "skd/models/slice.h"
#include "skd/models/swin.h"

namespace skd::exporter {

bool onnx_available() {
#ifdef SKD_HAVE_ONNX
  return true;
#else
  return false;
#endif
}

int max_opset() {
#ifdef SKD_HAVE_ONNX
  const auto& m = ONNX_NAMESPACE::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  const auto it = m.find(ONNX_NAMESPACE::ONNX_DOMAIN);
  return it == m.end() ? 0 : it->second.second;
#else
  return 0;
#endif
}
namespace {

[[noreturn]] void no_onnx() {
  throw std::runtime_error(
      "this build has no ONNX export: it was configured without Debian's libonnx-dev (install libonnx-dev "
      "and "
      "libprotobuf-dev, e.g. with scripts/setup.sh, then reconfigure with -DSKD_WITH_ONNX=ON)");
}

#ifdef SKD_HAVE_ONNX

namespace onnx = ONNX_NAMESPACE;

struct Attr {
  std::string name;
  enum Kind { INT, FLOAT, INTS } kind;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;
};
Attr attr(const std::string& n, int64_t v) {
  return {n, Attr::INT, v, 0.f, {}};
}
Attr attr_f(const std::string& n, float v) {
  return {n, Attr::FLOAT, 0, v, {}};
}
Attr attr(const std::string& n, std::vector<int64_t> v) {
  return {n, Attr::INTS, 0, 0.f, std::move(v)};
}

// Builds the graph: named float32 initializers, int64/float constants (deduplicated), and nodes whose
// outputs get fresh names unless the caller names them.
class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto* g, int opset) : g_(g), opset_(opset) {}
  int opset() const { return opset_; }

  std::string op(const std::string& type, const std::vector<std::string>& inputs,
                 const std::vector<Attr>& attrs = {}, const std::string& out = "") {
    return ops(type, inputs, 1, attrs,
               out.empty() ? std::vector<std::string>{} : std::vector<std::string>{out})[0];
  }
  std::vector<std::string> ops(const std::string& type, const std::vector<std::string>& inputs, int outputs,
                               const std::vector<Attr>& attrs = {}, std::vector<std::string> names = {}) {
    auto* n = g_->add_node();
    n->set_op_type(type);
    n->set_name(cat(type, "_", nodes_++));
    for (const auto& i : inputs) n->add_input(i);
    if (names.empty())
      for (int k = 0; k < outputs; ++k) names.push_back(cat("t", values_++));
    for (const auto& o : names) n->add_output(o);
    for (const auto& a : attrs) {
      auto* p = n->add_attribute();
      p->set_name(a.name);
      if (a.kind == Attr::INT) {
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(a.i);
      } else if (a.kind == Attr::FLOAT) {
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(a.f);
      } else {
        p->set_type(onnx::AttributeProto::INTS);
        for (int64_t v : a.ints) p->add_ints(v);
      }
    }
    return names;
  }

  // A float32 initializer holding `t` (any float tensor; copied as contiguous float32).
  std::string weight(const std::string& name, const torch::Tensor& t) {
    SKD_CHECK(!names_.count(name), "duplicate initializer ", name);
    names_.insert(name);
    const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    auto* init = g_->add_initializer();
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : c.sizes()) init->add_dims(d);
    init->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float)));
    return name;
  }
  // 1-D int64 constant (shapes, axes, slice bounds); 0-d when `scalar`.
  std::string ints(const std::vector<int64_t>& v, bool scalar = false) {
    std::string key = scalar ? "i64s" : "i64";
    for (int64_t x : v) key += cat("_", x < 0 ? "m" : "", std::llabs(x));
    if (names_.insert(key).second) {
      auto* init = g_->add_initializer();
      init->set_name(key);
      init->set_data_type(onnx::TensorProto::INT64);
      if (!scalar) init->add_dims(static_cast<int64_t>(v.size()));
      for (int64_t x : v) init->add_int64_data(x);
    }
    return key;
  }
  // 0-d float32 constant.
  std::string scalar(float v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "f32_%a", static_cast<double>(v));
    std::string key = buf;
    if (names_.insert(key).second) {
      auto* init = g_->add_initializer();
      init->set_name(key);
      init->set_data_type(onnx::TensorProto::FLOAT);
      init->add_float_data(v);
    }
    return key;
  }

 private:
  onnx::GraphProto* g_;
  int opset_;
  int64_t nodes_ = 0, values_ = 0;
  std::set<std::string> names_;
};

// The graph of one model: parameters by timm key, one method per module kind.
class ModelGraph {
 public:
  ModelGraph(GraphBuilder& b, const models::ElasticModelImpl& model)
      : b_(b), c_(model.config()), params_(model.named_parameters(true)), widths_(model.widths()) {}

  std::string build(const std::string& input, const std::string& output) {
    return c_.family == models::Family::VIT ? vit(input, output) : swin(input, output);
  }

 private:
  torch::Tensor param(const std::string& key) const {
    const auto* t = params_.find(key);
    SKD_CHECK(t != nullptr, "model has no parameter ", key);
    return *t;
  }
  bool has(const std::string& key) const { return params_.find(key) != nullptr; }

  std::string linear(const std::string& x, const std::string& key, const std::string& out = "") {
    std::string y = b_.op("MatMul", {x, b_.weight(key + ".weight.T", param(key + ".weight").t())});
    if (has(key + ".bias"))
      y = b_.op("Add", {y, b_.weight(key + ".bias", param(key + ".bias"))}, {}, out);
    else if (!out.empty())
      y = b_.op("Identity", {y}, {}, out);
    return y;
  }
  std::string layer_norm(const std::string& x, const std::string& key) {
    return b_.op("LayerNormalization",
                 {x, b_.weight(key + ".weight", param(key + ".weight")),
                  b_.weight(key + ".bias", param(key + ".bias"))},
                 {attr("axis", -1), attr_f("epsilon", static_cast<float>(c_.norm_eps))});
  }
  std::string reshape(const std::string& x, const std::vector<int64_t>& shape) {
    return b_.op("Reshape", {x, b_.ints(shape)});
  }
  std::string transpose(const std::string& x, std::vector<int64_t> perm) {
    return b_.op("Transpose", {x}, {attr("perm", std::move(perm))});
  }
  // torch.roll(x, shift, axis) for an axis of size n: out[i] = x[(i - shift) mod n].
  std::string roll(const std::string& x, int64_t shift, int64_t axis, int64_t n) {
    const int64_t r = ((shift % n) + n) % n;
    if (r == 0) return x;
    const auto ax = b_.ints({axis});
    auto tail = b_.op("Slice", {x, b_.ints({n - r}), b_.ints({n}), ax});
    auto head = b_.op("Slice", {x, b_.ints({0}), b_.ints({n - r}), ax});
    return b_.op("Concat", {tail, head}, {attr("axis", axis)});
  }
  // Exact GELU: (x * (1 + erf(x / sqrt(2)))) * 0.5, as torch::gelu's default, in the node order
  // Div -> Erf -> Add -> Mul -> Mul that onnxruntime's and OpenVINO's GELU fusions recognise (one fused
  // kernel instead of five element-wise passes; docs/benchmarks.md, issue 26).
  std::string gelu(const std::string& x) {
    auto e = b_.op("Erf", {b_.op("Div", {x, b_.scalar(static_cast<float>(M_SQRT2))})});
    return b_.op("Mul", {b_.op("Mul", {x, b_.op("Add", {e, b_.scalar(1.0f)})}), b_.scalar(0.5f)});
  }
  std::string mlp(const std::string& x, const std::string& p) {
    return linear(gelu(linear(layer_norm(x, p + "norm2"), p + "mlp.fc1")), p + "mlp.fc2");
  }

  // Multi-head attention on tokens x [N, T, C] at width a per head: the C++ AttentionImpl::forward.
  // Swin: `bias` [H, T, T] (relative position bias) and `mask` [nW, 1, T, T] (shifted windows).
  std::string attention(const std::string& x, const models::BlockSpec& s, int64_t a, const std::string& p,
                        const std::string& bias, const std::string& mask, int64_t windows) {
    const int64_t H = s.num_heads;
    auto qkv = linear(x, p + "attn.qkv");
    auto parts = b_.ops("Split", {qkv, b_.ints({H * a, H * a, H * a})}, 3, {attr("axis", -1)});
    auto heads = [&](const std::string& t, std::vector<int64_t> perm) {
      return transpose(reshape(t, {0, 0, H, a}), std::move(perm));
    };
    const float scale = static_cast<float>(models::attention_scale(c_, s));
    auto q = b_.op("Mul", {heads(parts[0], {0, 2, 1, 3}), b_.scalar(scale)});
    auto k = heads(parts[1], {0, 2, 3, 1});
    auto v = heads(parts[2], {0, 2, 1, 3});
    auto att = b_.op("MatMul", {q, k});
    if (!bias.empty()) att = b_.op("Add", {att, bias});
    if (!mask.empty()) {
      const int64_t tokens = s.window * s.window;
      att = reshape(b_.op("Add", {reshape(att, {-1, windows, H, tokens, tokens}), mask}),
                    {-1, H, tokens, tokens});
    }
    att = b_.op("Softmax", {att}, {attr("axis", -1)});
    auto o = reshape(transpose(b_.op("MatMul", {att, v}), {0, 2, 1, 3}), {0, 0, H * a});
    return linear(o, p + "attn.proj");
  }

  std::string vit(const std::string& input, const std::string& output) {
    const int64_t D = c_.embed_dim;
    auto t = b_.op("Conv",
                   {input, b_.weight("patch_embed.proj.weight", param("patch_embed.proj.weight")),
                    b_.weight("patch_embed.proj.bias", param("patch_embed.proj.bias"))},
                   {attr("kernel_shape", std::vector<int64_t>{c_.patch_size, c_.patch_size}),
                    attr("strides", std::vector<int64_t>{c_.patch_size, c_.patch_size})});
    t = transpose(reshape(t, {0, D, -1}), {0, 2, 1});  // token index = y * grid + x
    // The class token expanded to the (possibly dynamic) batch.
    auto batch = b_.op("Slice", {b_.op("Shape", {input}), b_.ints({0}), b_.ints({1})});
    auto cls_shape = b_.op("Concat", {batch, b_.ints({1, D})}, {attr("axis", 0)});
    auto cls = b_.op("Expand", {b_.weight("cls_token", param("cls_token")), cls_shape});
    t = b_.op("Add",
              {b_.op("Concat", {cls, t}, {attr("axis", 1)}), b_.weight("pos_embed", param("pos_embed"))});
    for (const auto& s : models::block_specs(c_)) {
      const auto w = widths_[static_cast<size_t>(s.index)];
      const std::string p = models::block_prefix(c_, s);
      if (w.attn > 0) t = b_.op("Add", {t, attention(layer_norm(t, p + "norm1"), s, w.attn, p, "", "", 0)});
      if (w.mlp > 0) t = b_.op("Add", {t, mlp(t, p)});
    }
    t = layer_norm(t, "norm");
    auto pooled = b_.op("Gather", {t, b_.ints({0}, true)}, {attr("axis", 1)});  // the class token
    return linear(pooled, "head", output);
  }

  std::string swin(const std::string& input, const std::string& output) {
    auto t = b_.op("Conv",
                   {input, b_.weight("patch_embed.proj.weight", param("patch_embed.proj.weight")),
                    b_.weight("patch_embed.proj.bias", param("patch_embed.proj.bias"))},
                   {attr("kernel_shape", std::vector<int64_t>{c_.patch_size, c_.patch_size}),
                    attr("strides", std::vector<int64_t>{c_.patch_size, c_.patch_size})});
    t = layer_norm(transpose(t, {0, 2, 3, 1}), "patch_embed.norm");  // NHWC
    int64_t stage = 0;
    for (const auto& s : models::block_specs(c_)) {
      const int64_t H = s.res_h, W = s.res_w, C = s.dim, w = s.window, sh = s.shift;
      if (s.stage != stage) {  // PatchMerging at the start of stages 1..: [B,2H,2W,C/2] -> [B,H,W,C]
        stage = s.stage;
        const std::string p = cat("layers.", stage, ".downsample.");
        t = reshape(transpose(reshape(t, {-1, H, 2, W, 2, C / 2}), {0, 1, 3, 4, 2, 5}), {-1, H, W, 2 * C});
        t = linear(layer_norm(t, p + "norm"), p + "reduction");
      }
      const auto bw = widths_[static_cast<size_t>(s.index)];
      const std::string p = models::block_prefix(c_, s);
      if (bw.attn > 0) {
        const int64_t T = w * w, windows = (H / w) * (W / w);
        auto h = layer_norm(t, p + "norm1");
        if (sh > 0) h = roll(roll(h, -sh, 1, H), -sh, 2, W);
        auto win =
            reshape(transpose(reshape(h, {-1, H / w, w, W / w, w, C}), {0, 1, 3, 2, 4, 5}), {-1, T, C});
        const auto index = models::swin_relative_position_index(w).view({-1});
        const auto bias = param(p + "attn.relative_position_bias_table")
                              .index_select(0, index)
                              .view({T, T, s.num_heads})
                              .permute({2, 0, 1});
        std::string mask;
        if (sh > 0)
          mask = b_.weight(p + "attn.attn_mask", models::swin_attention_mask(H, W, w, sh).unsqueeze(1));
        auto o =
            attention(win, s, bw.attn, p, b_.weight(p + "attn.relative_position_bias", bias), mask, windows);
        o = reshape(transpose(reshape(o, {-1, H / w, W / w, w, w, C}), {0, 1, 3, 2, 4, 5}), {-1, H, W, C});
        if (sh > 0) o = roll(roll(o, sh, 1, H), sh, 2, W);
        t = b_.op("Add", {t, o});
      }
      if (bw.mlp > 0) t = b_.op("Add", {t, mlp(t, p)});
    }
    t = layer_norm(t, "norm");
    std::string pooled;
    if (b_.opset() >= 18)
      pooled = b_.op("ReduceMean", {t, b_.ints({1, 2})}, {attr("keepdims", 0)});
    else
      pooled = b_.op("ReduceMean", {t}, {attr("axes", std::vector<int64_t>{1, 2}), attr("keepdims", 0)});
    return linear(pooled, "head.fc", output);
  }

  GraphBuilder& b_;
  const models::ModelConfig& c_;
  torch::OrderedDict<std::string, torch::Tensor> params_;
  models::Widths widths_;
};

void set_tensor_type(onnx::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& dims,
                     int64_t batch, int elem_type = onnx::TensorProto::FLOAT) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  auto* b = shape->add_dim();
  if (batch > 0)
    b->set_dim_value(batch);
  else
    b->set_dim_param("batch");
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// The eval transform's normalization in front of the model (GraphOptions::input UNIT or UINT8): uint8 is
// cast to float and divided by 255, then (x - mean) / std per channel, in the order of the C++ transform.
std::string normalize_input(GraphBuilder& b, const GraphOptions& o, const std::string& input) {
  std::string x = input;
  if (o.input == data::GraphInput::UINT8) {
    x = b.op("Cast", {x}, {attr("to", static_cast<int64_t>(onnx::TensorProto::FLOAT))});
    x = b.op("Div", {x, b.scalar(255.0f)});
  }
  SKD_CHECK(o.std.size() == o.mean.size(), "mean and std of different lengths");
  x = b.op("Sub", {x, b.weight("preprocess.mean", data::channel_tensor(o.mean))});
  return b.op("Div", {x, b.weight("preprocess.std", data::channel_tensor(o.std))});
}

#endif  // SKD_HAVE_ONNX

}  // namespace

void check_graph_options(const GraphOptions& o) {
  if (!onnx_available()) no_onnx();
  if (o.opset < kDefaultOpset || o.opset > max_opset())
    throw ParameterError(
        "opset", cat(" ", o.opset, ": this build writes opsets ", kDefaultOpset, "..", max_opset(),
                     " (LayerNormalization needs 17; the ONNX library knows up to ", max_opset(), ")"));
  if (o.batch < 0)
    throw ParameterError("batch", cat(" ", o.batch, ": expected 'dynamic' or a positive size"));
  if (o.input != data::GraphInput::NORMALIZED) {
    bool ok = !o.mean.empty() && o.mean.size() == o.std.size();
    for (double v : o.std) ok = ok && v > 0 && std::isfinite(v);
    for (double v : o.mean) ok = ok && std::isfinite(v);
    if (!ok)
      throw ParameterError("embed_normalize", cat(" needs one finite mean and one std > 0 per channel (got ",
                                                  o.mean.size(), " means, ", o.std.size(), " stds)"));
  }
}

std::string onnx_model_bytes(const models::ElasticModelImpl& model, const nlohmann::json& manifest,
                             const GraphOptions& options) {
  check_graph_options(options);
#ifdef SKD_HAVE_ONNX
  const auto& c = model.config();
  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("skd-export");
  proto.set_producer_version(SKD_VERSION);
  proto.set_doc_string(cat("SKD ", models::family_name(c.family), " '", c.name, "' at its stored widths"));
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  auto* meta = proto.add_metadata_props();
  meta->set_key(kOnnxManifestKey);
  meta->set_value(manifest.dump());
  auto* g = proto.mutable_graph();
  g->set_name(c.name);
  set_tensor_type(
      g->add_input(), "pixel_values", {c.in_chans, c.img_size, c.img_size}, options.batch,
      options.input == data::GraphInput::UINT8 ? onnx::TensorProto::UINT8 : onnx::TensorProto::FLOAT);
  set_tensor_type(g->add_output(), "logits", {c.num_classes}, options.batch);
  GraphBuilder builder(g, options.opset);
  if (options.input != data::GraphInput::NORMALIZED &&
      static_cast<int64_t>(options.mean.size()) != c.in_chans)
    throw ParameterError("embed_normalize", cat(": ", options.mean.size(), " means for a model of ",
                                                c.in_chans, " input channels"));
  const std::string input = options.input == data::GraphInput::NORMALIZED
                                ? std::string("pixel_values")
                                : normalize_input(builder, options, "pixel_values");
  ModelGraph(builder, model).build(input, "logits");
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        cat("the ONNX checker refused the exported graph of '", c.name, "': ", e.what()));
  }
  if (proto.ByteSizeLong() >= (size_t{1} << 31))
    throw std::runtime_error(cat("the ONNX model of '", c.name, "' is ", proto.ByteSizeLong(),
                                 " bytes; protobuf files are limited to 2 GiB"));
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw std::runtime_error("cannot serialize the ONNX model");
  return bytes;
#else
  (void)model;
  (void)manifest;
  no_onnx();
#endif
}

int64_t parse_graph_batch(const std::string& text, const std::string& key) {
  if (text == "dynamic") return 0;
  const auto [batch, used] = options::leading_number<int64_t>(text);
  if (used == 0 || used != text.size() || batch <= 0)
    throw ParameterError(key, cat(" '", text, "': expected 'dynamic' or a positive integer"));
  return batch;
}

}  // namespace skd::exporter
