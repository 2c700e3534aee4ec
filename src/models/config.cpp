#include "skd/models/config.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <set>
#include <tuple>

#include "skd/core/error.h"
#include "skd/core/json_file.h"

namespace skd::models {

const char* family_name(Family family) { return family == Family::VIT ? "vit" : "swin"; }

int64_t ModelConfig::num_blocks() const {
  if (family == Family::VIT) return depth;
  int64_t n = 0;
  for (int64_t d : depths) n += d;
  return n;
}

std::vector<BlockSpec> block_specs(const ModelConfig& c) {
  std::vector<BlockSpec> specs;
  if (c.family == Family::VIT) {
    const int64_t grid = c.img_size / c.patch_size;
    for (int64_t i = 0; i < c.depth; ++i) {
      BlockSpec s;
      s.index = i;
      s.dim = c.embed_dim;
      s.num_heads = c.num_heads;
      s.head_dim = c.embed_dim / c.num_heads;
      s.mlp_hidden = static_cast<int64_t>(c.embed_dim * c.mlp_ratio);
      s.tokens = 1 + grid * grid;
      specs.push_back(s);
    }
    for (auto& s : specs) s.total_blocks = static_cast<int64_t>(specs.size());
    return specs;
  }
  int64_t res = c.img_size / c.patch_size;
  int64_t index = 0;
  for (size_t st = 0; st < c.depths.size(); ++st) {
    if (st > 0) res /= 2;
    const int64_t dim = c.embed_dim << st;
    // timm: a window at least as large as the resolution is clamped to it, and then no shift.
    const int64_t window = std::min(c.window_size, res);
    for (int64_t b = 0; b < c.depths[st]; ++b) {
      BlockSpec s;
      s.index = index++;
      s.stage = static_cast<int64_t>(st);
      s.dim = dim;
      s.num_heads = c.stage_heads[st];
      s.head_dim = dim / s.num_heads;
      s.mlp_hidden = static_cast<int64_t>(dim * c.mlp_ratio);
      s.res_h = s.res_w = res;
      s.tokens = res * res;
      s.window = window;
      s.shift = (b % 2 == 1 && res > c.window_size) ? c.window_size / 2 : 0;
      specs.push_back(s);
    }
  }
  for (auto& s : specs) s.total_blocks = static_cast<int64_t>(specs.size());
  return specs;
}

std::string block_prefix(const ModelConfig& c, const BlockSpec& s) {
  if (c.family == Family::VIT) return cat("blocks.", s.index, ".");
  int64_t first = 0;
  for (int64_t st = 0; st < s.stage; ++st) first += c.depths[st];
  return cat("layers.", s.stage, ".blocks.", s.index - first, ".");
}

Widths full_widths(const ModelConfig& c) {
  Widths w;
  for (const auto& s : block_specs(c)) w.push_back(s.full());
  return w;
}

Widths stored_widths(const ModelConfig& c) { return c.widths.empty() ? full_widths(c) : c.widths; }

double attention_scale(const ModelConfig& c, const BlockSpec& spec) {
  if (c.attn_scale_folded) {
    const int64_t a = c.widths.empty() ? spec.head_dim : c.widths.at(static_cast<size_t>(spec.index)).attn;
    return 1.0 / std::sqrt(static_cast<double>(a > 0 ? a : spec.head_dim));
  }
  if (c.attn_scale > 0) return c.attn_scale;
  return 1.0 / std::sqrt(static_cast<double>(spec.head_dim));
}

namespace {

void require(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

}  // namespace

void validate_widths(const ModelConfig& c, const Widths& widths, const std::string& what) {
  const auto specs = block_specs(c);
  require(widths.size() == specs.size(),
          cat(what, ": ", widths.size(), " block widths given, the model has ", specs.size(),
              " blocks"));
  for (size_t i = 0; i < specs.size(); ++i) {
    require(widths[i].attn >= 0 && widths[i].attn <= specs[i].head_dim,
            cat(what, ": block ", i, " attention width ", widths[i].attn, " outside [0, ",
                specs[i].head_dim, "]"));
    require(widths[i].mlp >= 0 && widths[i].mlp <= specs[i].mlp_hidden,
            cat(what, ": block ", i, " MLP width ", widths[i].mlp, " outside [0, ",
                specs[i].mlp_hidden, "]"));
  }
}

void validate(const ModelConfig& c) {
  require(c.img_size > 0 && c.patch_size > 0 && c.img_size % c.patch_size == 0,
          cat("config: img_size ", c.img_size, " must be a positive multiple of patch_size ",
              c.patch_size));
  require(c.img_size <= kMaxImgSize, cat("config: img_size ", c.img_size, " exceeds the limit of ", kMaxImgSize));
  require(c.img_size / c.patch_size <= kMaxPatchGrid,
          cat("config: img_size / patch_size = ", c.img_size / c.patch_size, " patches per side exceeds the limit of ",
              kMaxPatchGrid));
  require(c.in_chans > 0 && c.in_chans <= kMaxInChans,
          cat("config: in_chans ", c.in_chans, " must be in [1, ", kMaxInChans, "]"));
  require(c.num_classes > 0 && c.num_classes <= kMaxNumClasses,
          cat("config: num_classes ", c.num_classes, " must be in [1, ", kMaxNumClasses, "]"));
  require(c.embed_dim > 0 && c.embed_dim <= kMaxWidth,
          cat("config: embed_dim ", c.embed_dim, " must be in [1, ", kMaxWidth, "]"));
  require(c.mlp_ratio > 0 && c.mlp_ratio <= kMaxMlpRatio,
          cat("config: mlp_ratio ", c.mlp_ratio, " must be in (0, ", kMaxMlpRatio, "]"));
  require(c.norm_eps > 0 && std::isfinite(c.norm_eps), "config: norm_eps must be positive and finite");
  require(c.attn_scale >= 0 && std::isfinite(c.attn_scale),
          "config: attn_scale must be >= 0 and finite (0 = head_dim^-0.5)");
  require(!(c.attn_scale_folded && c.attn_scale > 0),
          "config: attn_scale_folded excludes attn_scale (a folded model runs at 1/sqrt(a) per block)");
  if (c.family == Family::VIT) {
    require(c.depth > 0 && c.depth <= kMaxBlocks,
            cat("config: depth ", c.depth, " must be in [1, ", kMaxBlocks, "]"));
    require(c.num_heads > 0 && c.embed_dim % c.num_heads == 0,
            cat("config: embed_dim ", c.embed_dim, " must be divisible by num_heads ", c.num_heads));
  } else {
    require(!c.depths.empty(), "config: Swin needs 'depths'");
    require(c.depths.size() == c.stage_heads.size(),
            cat("config: 'depths' has ", c.depths.size(), " stages but 'num_heads' has ",
                c.stage_heads.size()));
    require(c.depths.size() <= kMaxStages,
            cat("config: 'depths' has ", c.depths.size(), " stages, the limit is ", kMaxStages));
    require(c.window_size > 0 && c.window_size <= kMaxPatchGrid,
            cat("config: window_size ", c.window_size, " must be in [1, ", kMaxPatchGrid, "]"));
    int64_t res = c.img_size / c.patch_size;
    int64_t blocks = 0;
    for (size_t st = 0; st < c.depths.size(); ++st) {
      if (st > 0) {
        require(res % 2 == 0, cat("config: stage ", st, " input resolution ", res,
                                  " is odd (patch merging needs an even grid)"));
        res /= 2;
      }
      require(c.depths[st] > 0 && c.depths[st] <= kMaxBlocks - blocks,
              cat("config: depths[", st, "] = ", c.depths[st], " must be positive and all stages together at most ",
                  kMaxBlocks, " blocks"));
      blocks += c.depths[st];
      const int64_t dim = c.embed_dim << st;  // no overflow: embed_dim and the stage count are capped
      require(dim <= kMaxWidth, cat("config: stage ", st, " width ", dim, " (embed_dim ", c.embed_dim, " doubled ", st,
                                    " times) exceeds the limit of ", kMaxWidth));
      require(c.stage_heads[st] > 0 && dim % c.stage_heads[st] == 0,
              cat("config: stage ", st, " width ", dim, " not divisible by num_heads[", st,
                  "] = ", c.stage_heads[st]));
      const int64_t window = std::min(c.window_size, res);
      require(res % window == 0, cat("config: stage ", st, " resolution ", res,
                                     " is not a multiple of the window ", window,
                                     " (padding is not supported)"));
    }
  }
  if (!c.widths.empty()) validate_widths(c, c.widths, "config 'widths'");
  if (c.family == Family::SWIN) {
    const int64_t bytes = swin_derived_buffer_bytes(c, stored_widths(c));
    require(bytes <= kMaxDerivedBufferBytes,
            cat("config: img_size ", c.img_size, " / patch_size ", c.patch_size, " with window_size ",
                c.window_size, " needs ", bytes,
                " bytes of precomputed masks and indices for the Swin windows, more than the limit of ",
                kMaxDerivedBufferBytes, " (", kMaxDerivedBufferBytes >> 20,
                " MiB); use a smaller window_size or img_size"));
  }
}

int64_t swin_derived_buffer_bytes(const ModelConfig& c, const Widths& widths) {
  if (c.family != Family::SWIN) return 0;
  std::set<int64_t> windows;
  std::set<std::tuple<int64_t, int64_t, int64_t>> masks;  // (res, window, shift)
  for (const auto& s : block_specs(c)) {
    if (widths.at(static_cast<size_t>(s.index)).attn <= 0) continue;
    windows.insert(s.window);
    if (s.shift > 0) masks.insert({s.res_h, s.window, s.shift});
  }
  // No overflow: window and resolution are at most kMaxPatchGrid = 2^8, so each term is below 2^36.
  int64_t bytes = 0;
  for (const int64_t w : windows) bytes += 8 * w * w * w * w;
  for (const auto& [r, w, s] : masks) bytes += 4 * r * r * w * w;
  return bytes;
}

namespace {

ModelConfig vit(const std::string& name, int64_t dim, int64_t depth, int64_t heads) {
  ModelConfig c;
  c.family = Family::VIT;
  c.name = name;
  c.embed_dim = dim;
  c.depth = depth;
  c.num_heads = heads;
  return c;
}

ModelConfig swin(const std::string& name, int64_t dim, std::vector<int64_t> depths,
                 std::vector<int64_t> heads) {
  ModelConfig c;
  c.family = Family::SWIN;
  c.name = name;
  c.patch_size = 4;
  c.embed_dim = dim;
  c.depths = std::move(depths);
  c.stage_heads = std::move(heads);
  c.window_size = 7;
  c.norm_eps = 1e-5;
  return c;
}

struct Named {
  const char* name;
  const char* aliases[2];
};

const Named kNamed[] = {
    {"deit_tiny", {"vit_tiny", "deit_tiny_patch16_224"}},
    {"deit_small", {"vit_small", "deit_small_patch16_224"}},
    {"deit_base", {"vit_base", "deit_base_patch16_224"}},
    {"swin_tiny", {"swin_tiny_patch4_window7_224", nullptr}},
    {"swin_small", {"swin_small_patch4_window7_224", nullptr}},
    {"swin_base", {"swin_base_patch4_window7_224", nullptr}},
    {"vit_micro_32", {nullptr, nullptr}},
    {"swin_micro_32", {nullptr, nullptr}},
};

ModelConfig build_named(const std::string& n) {
  if (n == "deit_tiny") return vit(n, 192, 12, 3);
  if (n == "deit_small") return vit(n, 384, 12, 6);
  if (n == "deit_base") return vit(n, 768, 12, 12);
  if (n == "swin_tiny") return swin(n, 96, {2, 2, 6, 2}, {3, 6, 12, 24});
  if (n == "swin_small") return swin(n, 96, {2, 2, 18, 2}, {3, 6, 12, 24});
  if (n == "swin_base") return swin(n, 128, {2, 2, 18, 2}, {4, 8, 16, 32});
  if (n == "vit_micro_32") {
    ModelConfig c = vit(n, 64, 4, 4);
    c.img_size = 32;
    c.patch_size = 4;
    c.num_classes = 10;
    return c;
  }
  if (n == "swin_micro_32") {
    ModelConfig c = swin(n, 32, {2, 2}, {2, 4});
    c.img_size = 32;
    c.patch_size = 2;
    c.window_size = 4;
    c.num_classes = 10;
    return c;
  }
  SKD_CHECK(false, "unhandled named config ", n);
  return {};
}

}  // namespace

std::vector<std::string> named_configs() {
  std::vector<std::string> out;
  for (const auto& n : kNamed) out.emplace_back(n.name);
  return out;
}

ModelConfig named_config(const std::string& name) {
  for (const auto& n : kNamed) {
    bool match = name == n.name;
    for (const char* a : n.aliases) match = match || (a && name == a);
    if (match) return build_named(n.name);
  }
  std::string known;
  for (const auto& n : kNamed) known += cat(known.empty() ? "" : ", ", n.name);
  throw std::invalid_argument(
      cat("unknown architecture '", name, "' (known: ", known, "; or a JSON config file)"));
}

namespace {

// The config the keys of `j` are applied to: a named config ("model_name"), a default of the family
// ("family", or timm's Swin keywords), else the ViT default; named as `j` says.
ModelConfig starting_config(
    const nlohmann::json& j,
    const std::function<std::invalid_argument(const std::string&, const std::string&)>& key_error) {
  ModelConfig c;
  bool family_set = false;
  if (j.contains("model_name")) {
    if (!j["model_name"].is_string()) throw key_error("model_name", "must be a string");
    c = named_config(j["model_name"].get<std::string>());
    family_set = true;
  }
  if (j.contains("family")) {
    const auto& f = j["family"];
    if (f == "vit" || f == "deit") {
      if (family_set && c.family != Family::VIT) throw key_error("family", "contradicts model_name");
      c.family = Family::VIT;
    } else if (f == "swin") {
      if (family_set && c.family != Family::SWIN) throw key_error("family", "contradicts model_name");
      if (!family_set) c = swin("custom", 96, {2, 2, 6, 2}, {3, 6, 12, 24});
      c.family = Family::SWIN;
    } else {
      throw key_error("family", "must be \"vit\" or \"swin\"");
    }
    family_set = true;
  } else if (!family_set) {
    // timm's Swin constructor is recognisable by its 'depths'/'window_size' keywords.
    if (j.contains("depths") || j.contains("window_size"))
      c = swin("custom", 96, {2, 2, 6, 2}, {3, 6, 12, 24});
  }
  if (!j.contains("model_name")) c.name = j.value("name", std::string("custom"));
  return c;
}

}  // namespace

ModelConfig config_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::invalid_argument(cat(source, ": architecture must be a JSON object"));
  auto key_error = [&](const std::string& key, const std::string& expected) {
    return std::invalid_argument(cat(source, ": key '", key, "' ", expected, ", got ", j.at(key).dump()));
  };
  auto get_int = [&](const std::string& key) -> int64_t {
    const auto& v = j.at(key);
    if (!v.is_number_integer()) throw key_error(key, "must be an integer");
    return v.get<int64_t>();
  };
  auto get_int_or_pair = [&](const std::string& key) -> int64_t {
    const auto& v = j.at(key);
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[0] == v[1])
      return v[0].get<int64_t>();
    if (!v.is_number_integer()) throw key_error(key, "must be an integer (or a square [n, n] pair)");
    return v.get<int64_t>();
  };
  auto get_int_list = [&](const std::string& key) {
    const auto& v = j.at(key);
    std::vector<int64_t> out;
    if (!v.is_array()) throw key_error(key, "must be a list of integers");
    for (const auto& e : v) {
      if (!e.is_number_integer()) throw key_error(key, "must be a list of integers");
      out.push_back(e.get<int64_t>());
    }
    return out;
  };

  ModelConfig c = starting_config(j, key_error);

  static const std::set<std::string> kKnown = {
      "model_name", "pretrained", "family", "name", "img_size", "patch_size", "in_chans",
      "num_classes", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias", "window_size",
      "depths", "class_token", "global_pool", "attn_scale", "attn_scale_folded", "widths", "norm_eps"};
  for (const auto& [key, value] : j.items()) {
    if (!kKnown.count(key))
      throw std::invalid_argument(cat(source, ": unsupported architecture key '", key, "'"));
  }
  if (j.contains("img_size")) c.img_size = get_int_or_pair("img_size");
  if (j.contains("patch_size")) c.patch_size = get_int_or_pair("patch_size");
  if (j.contains("in_chans")) c.in_chans = get_int("in_chans");
  if (j.contains("num_classes")) c.num_classes = get_int("num_classes");
  if (j.contains("embed_dim")) c.embed_dim = get_int("embed_dim");
  if (j.contains("mlp_ratio")) {
    if (!j["mlp_ratio"].is_number()) throw key_error("mlp_ratio", "must be a number");
    c.mlp_ratio = j["mlp_ratio"].get<double>();
  }
  if (j.contains("qkv_bias")) {
    if (!j["qkv_bias"].is_boolean()) throw key_error("qkv_bias", "must be true or false");
    c.qkv_bias = j["qkv_bias"].get<bool>();
  }
  if (j.contains("norm_eps")) {
    if (!j["norm_eps"].is_number()) throw key_error("norm_eps", "must be a number");
    c.norm_eps = j["norm_eps"].get<double>();
  }
  if (j.contains("attn_scale")) {
    if (!j["attn_scale"].is_number()) throw key_error("attn_scale", "must be a number");
    c.attn_scale = j["attn_scale"].get<double>();
  }
  if (j.contains("attn_scale_folded")) {
    if (!j["attn_scale_folded"].is_boolean()) throw key_error("attn_scale_folded", "must be true or false");
    c.attn_scale_folded = j["attn_scale_folded"].get<bool>();
  }
  if (c.family == Family::VIT) {
    if (j.contains("depth")) c.depth = get_int("depth");
    if (j.contains("num_heads")) c.num_heads = get_int("num_heads");
    if (j.contains("depths") || j.contains("window_size"))
      throw std::invalid_argument(cat(source, ": 'depths'/'window_size' are Swin keys but family is vit"));
    if (j.contains("class_token") && j["class_token"] != true)
      throw key_error("class_token", "is only supported as true");
    if (j.contains("global_pool") && j["global_pool"] != "token")
      throw key_error("global_pool", "is only supported as \"token\" for ViT");
  } else {
    if (j.contains("depths")) c.depths = get_int_list("depths");
    if (j.contains("num_heads")) c.stage_heads = get_int_list("num_heads");
    if (j.contains("window_size")) c.window_size = get_int_or_pair("window_size");
    if (j.contains("depth")) throw std::invalid_argument(cat(source, ": 'depth' is a ViT key; Swin uses 'depths'"));
    if (j.contains("global_pool") && j["global_pool"] != "avg")
      throw key_error("global_pool", "is only supported as \"avg\" for Swin");
    if (!j.contains("norm_eps")) c.norm_eps = 1e-5;
  }
  if (j.contains("widths")) {
    const auto& w = j["widths"];
    if (!w.is_array()) throw key_error("widths", "must be a list of [attn, mlp] pairs");
    c.widths.clear();
    for (const auto& e : w) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || !e[1].is_number_integer())
        throw key_error("widths", "must be a list of [attn, mlp] integer pairs");
      c.widths.push_back({e[0].get<int64_t>(), e[1].get<int64_t>()});
    }
  }
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(cat(source, ": ", e.what()));
  }
  return c;
}

nlohmann::json config_to_json(const ModelConfig& c) {
  nlohmann::json j;
  j["family"] = family_name(c.family);
  j["name"] = c.name;
  j["img_size"] = c.img_size;
  j["patch_size"] = c.patch_size;
  j["in_chans"] = c.in_chans;
  j["num_classes"] = c.num_classes;
  j["embed_dim"] = c.embed_dim;
  j["mlp_ratio"] = c.mlp_ratio;
  j["qkv_bias"] = c.qkv_bias;
  j["norm_eps"] = c.norm_eps;
  if (c.family == Family::VIT) {
    j["depth"] = c.depth;
    j["num_heads"] = c.num_heads;
  } else {
    j["depths"] = c.depths;
    j["num_heads"] = c.stage_heads;
    j["window_size"] = c.window_size;
  }
  if (c.attn_scale > 0) j["attn_scale"] = c.attn_scale;
  if (c.attn_scale_folded) j["attn_scale_folded"] = true;
  if (!c.widths.empty()) {
    nlohmann::json w = nlohmann::json::array();
    for (const auto& b : c.widths) w.push_back({b.attn, b.mlp});
    j["widths"] = w;
  }
  return j;
}

ModelConfig resolve_arch(const std::string& arch) {
  if (arch.empty()) throw ParameterError("arch", ": empty architecture name");
  const bool looks_like_file = arch.find('/') != std::string::npos ||
                               (arch.size() > 5 && arch.substr(arch.size() - 5) == ".json");
  if (!looks_like_file) return named_config(arch);
  // A file that cannot be opened is bad usage (skd::ParameterError); content that is not JSON or not an
  // architecture is a format error of the file (skd::FormatError), as for every file the user names.
  const nlohmann::json j = read_json_file_of("arch", arch, ": architecture file");
  try {
    if (j.is_object() && j.contains("create_kwargs")) return config_from_json(j["create_kwargs"], arch);
    if (j.is_object() && j.contains("config") && j["config"].is_object())
      return config_from_json(j["config"], arch);
    return config_from_json(j, arch);
  } catch (const std::invalid_argument& e) {
    throw FormatError(e.what());
  }
}

}  // namespace skd::models
