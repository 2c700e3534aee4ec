#include "skd/models/checkpoint.h"
#include "skd/core/clock.h"

#include <torch/version.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>

#include "skd/core/error.h"
#include "skd/io/json.h"
#include "skd/core/fs.h"
#include "skd/io/pth.h"
#include "skd/io/safetensors.h"
#include "skd/io/sha256.h"
#include "skd/models/macs.h"

namespace skd::models {

namespace {

torch::ScalarType scalar_type(io::DType d) {
  switch (d) {
    case io::DType::F64: return torch::kFloat64;
    case io::DType::F32: return torch::kFloat32;
    case io::DType::F16: return torch::kFloat16;
    case io::DType::BF16: return torch::kBFloat16;
    case io::DType::I64: return torch::kInt64;
    case io::DType::I32: return torch::kInt32;
    case io::DType::I16: return torch::kInt16;
    case io::DType::I8: return torch::kInt8;
    case io::DType::U8: return torch::kUInt8;
    case io::DType::Bool: return torch::kBool;
  }
  SKD_CHECK(false, "unknown dtype");
  return torch::kFloat32;
}

io::DType record_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return io::DType::F64;
    case torch::kFloat32: return io::DType::F32;
    case torch::kFloat16: return io::DType::F16;
    case torch::kBFloat16: return io::DType::BF16;
    case torch::kInt64: return io::DType::I64;
    case torch::kInt32: return io::DType::I32;
    case torch::kInt16: return io::DType::I16;
    case torch::kInt8: return io::DType::I8;
    case torch::kUInt8: return io::DType::U8;
    case torch::kBool: return io::DType::Bool;
    default: throw std::invalid_argument(cat("cannot store tensors of dtype ", t));
  }
}

bool is_float(io::DType d) {
  return d == io::DType::F64 || d == io::DType::F32 || d == io::DType::F16 || d == io::DType::BF16;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += cat(i ? ", " : "", s[i]);
  return out + "]";
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

torch::Tensor tensor_from_record(const io::TensorRecord& r) {
  auto opts = torch::TensorOptions().dtype(scalar_type(r.dtype));
  if (r.numel() == 0) return torch::empty(r.shape, opts);
  return torch::from_blob(const_cast<uint8_t*>(r.data.data()), r.shape, opts).clone();
}

io::TensorRecord record_from_tensor(const torch::Tensor& t) {
  io::TensorRecord r;
  auto c = t.detach().to(torch::kCPU).contiguous();
  r.dtype = record_dtype(c.scalar_type());
  r.shape = c.sizes().vec();
  r.data.resize(static_cast<size_t>(c.numel()) * c.element_size());
  if (!r.data.empty()) std::memcpy(r.data.data(), c.data_ptr(), r.data.size());
  return r;
}

nlohmann::json parse_manifest(const std::string& text, const std::string& path) {
  nlohmann::json manifest;
  manifest = io::parse_json_bounded(text, cat(path, ": __metadata__ key '", kManifestKey, "'"));
  // Typed checks before reading values: nlohmann's value() throws its own type_error for a field of
  // another type, and converts a float version to int unchecked.
  const auto format = manifest.is_object() ? manifest.find("format") : manifest.end();
  if (!manifest.is_object() || format == manifest.end() || !format->is_string() || *format != "skd-artifact")
    throw FormatError(cat(path, ": __metadata__ '", kManifestKey,
                          "' is not an skd-artifact manifest (expected an object with \"format\": \"skd-artifact\")"));
  const auto version = manifest.find("format_version");
  if (version == manifest.end() || !version->is_number_integer() || version->get<int64_t>() < 1 ||
      version->get<int64_t>() > kArtifactFormatVersion)
    throw FormatError(cat(path, ": artifact format_version ",
                          version == manifest.end() ? std::string("(missing)") : version->dump(),
                          " is not supported (this build reads integers 1..", kArtifactFormatVersion, ")"));
  // The structure readers rely on, checked here at the boundary so that a manifest with a string
  // where an object belongs is a FormatError naming the key, not nlohmann's type_error later.
  using Kind = nlohmann::json::value_t;
  static const std::pair<const char*, Kind> kShapes[] = {{"config", Kind::object},
                                                         {"provenance", Kind::object},
                                                         {"macs", Kind::object},
                                                         {"widths", Kind::array},
                                                         {"attn_scale", Kind::array},
                                                         {"family", Kind::string},
                                                         {"mask_table", Kind::object},
                                                         {"attn_scale_folded", Kind::boolean},
                                                         {data::kPreprocessKey, Kind::object},
                                                         {"graph_input", Kind::string}};
  for (const auto& [key, kind] : kShapes) {
    const auto it = manifest.find(key);
    if (it == manifest.end() || it->type() == kind) continue;
    const nlohmann::json expected(kind);
    throw FormatError(cat(path, ": manifest key '", key, "' is ", it->type_name(), " ", excerpt(it->dump()),
                          ", expected ", expected.type_name()));
  }
  return manifest;
}

std::optional<data::Preprocess> manifest_preprocess(const nlohmann::json& manifest, const ModelConfig& config,
                                                    const std::string& path) {
  if (!manifest.is_object() || !manifest.contains(data::kPreprocessKey)) return std::nullopt;
  auto p = data::preprocess_from_json(manifest.at(data::kPreprocessKey), path);
  data::check_preprocess_fits(p, config.in_chans, config.img_size, path);
  return p;
}

nlohmann::json preprocess_entry(const std::optional<data::Preprocess>& p) {
  if (!p) return nlohmann::json::object();
  return {{data::kPreprocessKey, data::preprocess_to_json(*p)}};
}

ModelConfig manifest_config(const nlohmann::json& manifest, const std::string& path) {
  if (!manifest.is_object() || !manifest.contains("config"))
    throw FormatError(cat(path, ": manifest has no 'config' (the architecture)"));
  try {
    return config_from_json(manifest.at("config"), path + " manifest");
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(cat(path, ": manifest has no valid 'config': ", e.what()));
  }
}

void check_params_fit(const ModelConfig& config, const io::TensorMap& tensors, const std::string& path) {
  int64_t held = 0;
  for (const auto& kv : tensors) held += kv.second.numel();  // bounded by the file size
  // Slack for files that are a little short (a missing key or two): those get built and then the
  // precise missing/shape errors of load_state_dict, at a cost bounded by the file's own size.
  const int64_t allowed = 2 * held + (int64_t{1} << 20);
  const int64_t needed = macs_count(config).params;
  if (needed > allowed)
    throw FormatError(cat(path, ": architecture '", config.name, "' needs ", needed,
                          " parameters, far more than the ", held,
                          " tensor elements the file holds (wrong architecture, or a manifest that does not match "
                          "the weights); refused before building the model"));
}

Checkpoint read_checkpoint(const std::string& path) {
  Checkpoint ck;
  ck.source = path;
  const auto bytes = read_file_bytes(path);
  // safetensors: u64 header length, then '{'. torch.save: a zip, or (pre-1.6) a bare pickle.
  const bool safetensors = bytes.size() >= 9 && bytes[8] == '{';
  const bool zip = bytes.size() >= 4 && std::memcmp(bytes.data(), "PK\x03\x04", 4) == 0;
  const bool pickle = !safetensors && !bytes.empty() && bytes[0] == 0x80;
  if (zip || pickle) {
    ck.format = "pth";
    ck.tensors = io::pth_state_dict(io::parse_pth(bytes.data(), bytes.size(), path), path, &ck.wrapper);
    return ck;
  }
  ck.format = "safetensors";
  auto content = io::parse_safetensors(bytes.data(), bytes.size(), path);
  ck.tensors = std::move(content.tensors);
  // Training checkpoints (skd-train) carry optimizer/EMA state next to the weights.
  if (content.metadata.count("skd_train_state")) {
    for (auto it = ck.tensors.begin(); it != ck.tensors.end();)
      it = it->first.compare(0, 12, "train_state/") == 0 ? ck.tensors.erase(it) : std::next(it);
  }
  if (auto it = content.metadata.find(kManifestKey); it != content.metadata.end())
    ck.manifest = parse_manifest(it->second, path);
  return ck;
}

namespace {

// The N of a legacy 'layers.N.downsample.*' key: digits only, written canonically (no sign, space or
// leading zero, so two spellings cannot map to one key) and below kMaxStages; std::stoll took " 1",
// "+1" and "1a" and threw std::invalid_argument / out_of_range on "" or a huge number.
int64_t legacy_stage(const std::string& digits, const std::string& key, const std::string& source) {
  bool ok = !digits.empty() && digits.size() <= 2 && (digits.size() == 1 || digits[0] != '0');
  for (const char ch : digits) ok = ok && ch >= '0' && ch <= '9';
  const int64_t n = ok ? std::stoll(digits) : -1;
  if (n < 0 || n >= static_cast<int64_t>(kMaxStages))
    throw FormatError(cat(source, ": key '", key, "': the stage number of a legacy Swin key must be 0..",
                          kMaxStages - 1, " in digits (layers.N.downsample.*)"));
  return n;
}

}  // namespace

std::vector<std::string> normalize_keys(const ModelConfig& c, io::TensorMap& t, const std::string& source) {
  std::vector<std::string> notes;
  if (!t.empty()) {
    bool all_module = true;
    for (const auto& kv : t) all_module = all_module && starts_with(kv.first, "module.");
    if (all_module) {
      io::TensorMap out;
      for (auto& kv : t) out.emplace(kv.first.substr(7), std::move(kv.second));
      t.swap(out);
      notes.push_back("stripped the DDP 'module.' prefix");
    }
  }
  if (c.family != Family::SWIN) return notes;
  size_t dropped = 0;
  for (auto it = t.begin(); it != t.end();) {
    if (it->first.find("relative_position_index") != std::string::npos ||
        it->first.find("attn_mask") != std::string::npos) {
      it = t.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  if (dropped) notes.push_back(cat("dropped ", dropped, " derived Swin buffers (recomputed)"));
  // Microsoft / timm < 0.9 layout: PatchMerging at the end of stage N, classifier 'head.'.
  const bool legacy = t.count("layers.0.downsample.reduction.weight") > 0 ||
                      (t.count("head.weight") > 0 && t.count("head.fc.weight") == 0);
  if (legacy) {
    io::TensorMap out;
    for (auto& kv : t) {
      std::string k = kv.first;
      if (starts_with(k, "layers.")) {
        const size_t dot = k.find('.', 7);
        if (dot != std::string::npos && k.compare(dot, 12, ".downsample.") == 0)
          k = cat("layers.", legacy_stage(k.substr(7, dot - 7), k, source) + 1, k.substr(dot));
      } else if (starts_with(k, "head.") && !starts_with(k, "head.fc.")) {
        k = "head.fc." + k.substr(5);
      }
      out.emplace(std::move(k), std::move(kv.second));
    }
    t.swap(out);
    notes.push_back("mapped legacy Swin keys (Microsoft / timm < 0.9 layout)");
  }
  return notes;
}

Widths infer_widths(const ModelConfig& c, const io::TensorMap& t, const std::string& source) {
  Widths w;
  for (const auto& s : block_specs(c)) {
    const std::string p = block_prefix(c, s);
    BlockWidth b{0, 0};
    if (auto it = t.find(p + "attn.qkv.weight"); it != t.end()) {
      const auto& shape = it->second.shape;
      if (shape.size() != 2 || shape[0] % (3 * s.num_heads) != 0 || shape[0] / (3 * s.num_heads) > s.head_dim)
        throw std::runtime_error(cat(source, ": key '", it->first, "' has shape ", shape_str(shape),
                                     ", expected [3*", s.num_heads, "*a, ", s.dim, "] with a <= ", s.head_dim,
                                     " (is the architecture right?)"));
      b.attn = shape[0] / (3 * s.num_heads);
    }
    if (auto it = t.find(p + "mlp.fc1.weight"); it != t.end()) {
      const auto& shape = it->second.shape;
      if (shape.size() != 2 || shape[0] > s.mlp_hidden)
        throw std::runtime_error(cat(source, ": key '", it->first, "' has shape ", shape_str(shape),
                                     ", expected [m, ", s.dim, "] with m <= ", s.mlp_hidden,
                                     " (is the architecture right?)"));
      b.mlp = shape[0];
    }
    w.push_back(b);
  }
  return w;
}

void load_state_dict(ElasticModelImpl& model, const io::TensorMap& tensors, const std::string& source) {
  const auto params = model.named_parameters(true);
  std::vector<std::string> missing, unexpected;
  std::set<std::string> known;
  for (const auto& p : params) {
    known.insert(p.key());
    if (!tensors.count(p.key())) missing.push_back(p.key());
  }
  for (const auto& kv : tensors)
    if (!known.count(kv.first)) unexpected.push_back(kv.first);
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size() && i < 8; ++i) out += cat(i ? ", " : "", "'", v[i], "'");
    if (v.size() > 8) out += cat(", ... (", v.size() - 8, " more)");
    return out;
  };
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = cat(source, ": checkpoint does not match architecture '", model.config().name, "'");
    if (!missing.empty()) msg += cat("; missing keys (", missing.size(), "): ", list(missing));
    if (!unexpected.empty()) msg += cat("; unexpected keys (", unexpected.size(), "): ", list(unexpected));
    throw std::runtime_error(msg);
  }
  torch::NoGradGuard guard;
  for (const auto& p : params) {
    const auto& rec = tensors.at(p.key());
    auto value = p.value();
    if (rec.shape != value.sizes().vec())
      throw std::runtime_error(cat(source, ": key '", p.key(), "' has shape ", shape_str(rec.shape),
                                   ", the model expects ", shape_str(value.sizes().vec())));
    if (!is_float(rec.dtype))
      throw std::runtime_error(cat(source, ": key '", p.key(), "' has dtype ", io::dtype_name(rec.dtype),
                                   ", expected a floating-point tensor (F32/F16/BF16/F64)"));
    auto t = tensor_from_record(rec).to(torch::kFloat32);
    const int64_t bad = t.numel() - torch::isfinite(t).sum().item<int64_t>();
    if (bad > 0)
      throw std::runtime_error(cat(source, ": key '", p.key(), "' contains ", bad, " non-finite values (NaN/Inf)"));
    value.copy_(t);
  }
}

io::TensorMap state_dict(const ElasticModelImpl& model) {
  io::TensorMap out;
  for (const auto& p : model.named_parameters(true))
    out.emplace(p.key(), record_from_tensor(p.value().to(torch::kFloat32)));
  return out;
}

nlohmann::json make_manifest(const ElasticModelImpl& model, const nlohmann::json& provenance,
                             const nlohmann::json& extra) {
  const auto& c = model.config();
  ModelConfig full = c;
  full.widths = model.widths();
  nlohmann::json m;
  m["format"] = "skd-artifact";
  m["format_version"] = kArtifactFormatVersion;
  m["family"] = family_name(c.family);
  m["config"] = config_to_json(full);
  nlohmann::json widths = nlohmann::json::array(), scales = nlohmann::json::array();
  for (const auto& s : block_specs(c)) scales.push_back(attention_scale(c, s));
  for (const auto& w : full.widths) widths.push_back({w.attn, w.mlp});
  m["widths"] = widths;
  m["attn_scale"] = scales;
  if (c.attn_scale_folded) m["attn_scale_folded"] = true;
  const auto cost = macs_count(full);
  m["macs"] = {{"paper", cost.macs_paper}, {"full", cost.macs_full}, {"params", cost.params}};
  nlohmann::json prov = provenance.is_object() ? provenance : nlohmann::json::object();
  prov["skd_version"] = SKD_VERSION;
  prov["torch_version"] = TORCH_VERSION;
  if (!prov.contains("created")) prov["created"] = utc_now();
  m["provenance"] = prov;
  if (extra.is_object()) {
    for (const auto& e : extra.items()) {
      SKD_CHECK(!m.contains(e.key()), "manifest extra key '", e.key(), "' would replace a core key");
      m[e.key()] = e.value();
    }
  }
  return m;
}

void save_artifact(const std::string& path, const ElasticModelImpl& model, const nlohmann::json& provenance,
                   const nlohmann::json& extra) {
  io::SafetensorsContent content;
  content.tensors = state_dict(model);
  content.metadata["format"] = "pt";
  content.metadata[kManifestKey] = make_manifest(model, provenance, extra).dump();
  io::write_safetensors(path, content);
}

std::string file_sha256(const std::string& path) { return io::sha256_file(path); }

LoadedModel load_model(const std::string& path, const std::string& arch) {
  Checkpoint ck = read_checkpoint(path);
  ModelConfig config;
  if (ck.manifest) {
    config = manifest_config(*ck.manifest, path);
    if (!arch.empty()) {
      const ModelConfig given = resolve_arch(arch);
      const auto a = config_to_json(given), b = config_to_json(config);
      for (const char* key : {"family", "embed_dim", "depth", "depths", "num_heads", "num_classes", "img_size",
                              "patch_size"}) {
        if (a.value(key, nlohmann::json()) != b.value(key, nlohmann::json()))
          throw ParameterError([=, given = a.value(key, nlohmann::json()).dump(),
                                stored = b.value(key, nlohmann::json()).dump()](const KeyNamer& name) {
            return cat(name("arch"), " ", arch, " disagrees with the manifest of '", path, "' on '", key, "' (", given,
                       " vs ", stored, "); drop ", name("arch"), " for artifacts");
          });
      }
    }
  } else {
    if (arch.empty())
      throw ParameterError([=](const KeyNamer& name) {
        return cat("'", path, "' carries no architecture (no skd manifest); pass ", name("arch"),
                   " with a named config (e.g. deit_small) or a JSON config file");
      });
    config = resolve_arch(arch);
  }
  LoadedModel out;
  if (ck.manifest) out.preprocess = manifest_preprocess(*ck.manifest, config, path);
  const auto notes = normalize_keys(config, ck.tensors, path);
  if (config.widths.empty()) {
    const Widths w = infer_widths(config, ck.tensors, path);
    if (w != full_widths(config)) config.widths = w;
  }
  check_params_fit(config, ck.tensors, path);
  out.source = path;
  out.model = create_model(config);
  load_state_dict(*out.model, ck.tensors, path);
  if (ck.manifest) {
    out.manifest = *ck.manifest;
  } else {
    nlohmann::json prov = {{"source", path}, {"source_format", ck.format}};
    if (!ck.wrapper.empty()) prov["source_wrapper"] = ck.wrapper;
    if (!notes.empty()) prov["key_mapping"] = notes;
    out.manifest = make_manifest(*out.model, prov);
  }
  return out;
}

}  // namespace skd::models
