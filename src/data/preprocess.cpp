// The "preprocess" manifest entry: defaults, strict JSON, overrides and their resolution.
#include "skd/data/preprocess.h"

#include <cmath>
#include <tuple>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/logging.h"
#include "skd/data/image_folder.h"

namespace skd::data {

namespace {

// Bounds of input_size, as models::validate has them (kMaxInChans, kMaxImgSize of models/config.h;
// data does not include models).
constexpr int64_t kMaxChannels = 64;
constexpr int64_t kMaxSize = 4096;
constexpr double kFashionMnistMean = 0.2860, kFashionMnistStd = 0.3530;

std::string list_text(const std::vector<double>& values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); ++i) s += cat(i ? ", " : "", shortest_text(values[i]));
  return s + "]";
}

[[noreturn]] void refuse(const std::string& source, const std::string& key, const std::string& what) {
  throw FormatError(cat(source, ": manifest key '", kPreprocessKey, ".", key, "' ", what));
}

// C finite numbers (and > 0 for a std).
std::vector<double> channel_values(const nlohmann::json& j, const std::string& source, const char* key,
                                   int64_t channels, bool positive) {
  const nlohmann::json& v = j.at(key);
  const std::string want = cat("a list of ", channels, " finite numbers", positive ? " > 0" : "",
                               " (one per channel of input_size)");
  if (!v.is_array() || static_cast<int64_t>(v.size()) != channels)
    refuse(source, key, cat("is ", excerpt(v.dump()), ", expected ", want));
  std::vector<double> out;
  for (const auto& x : v) {
    if (!x.is_number() || !std::isfinite(x.get<double>()) || (positive && !(x.get<double>() > 0)))
      refuse(source, key, cat("is ", excerpt(v.dump()), ", expected ", want));
    out.push_back(x.get<double>());
  }
  return out;
}

}  // namespace

std::optional<Preprocess> imagenet_preprocess(int64_t channels, int64_t size) {
  Preprocess p;
  p.channels = channels;
  p.size = size;
  if (channels == 3) {
    p.mean = {0.485, 0.456, 0.406};
    p.std = {0.229, 0.224, 0.225};
  } else if (channels == 1) {
    p.mean = {static_cast<double>(kGrayMean)};
    p.std = {static_cast<double>(kGrayStd)};
  } else {
    return std::nullopt;
  }
  return p;
}

Preprocess fashion_mnist_preprocess(int64_t channels, int64_t size) {
  Preprocess p;
  p.channels = channels;
  p.size = size;
  p.interpolation = Filter::BILINEAR;
  p.crop_pct = 1.0;
  p.mean.assign(static_cast<size_t>(channels), kFashionMnistMean);
  p.std.assign(static_cast<size_t>(channels), kFashionMnistStd);
  return p;
}

nlohmann::json preprocess_to_json(const Preprocess& p) {
  return {{"input_size", {p.channels, p.size, p.size}},
          {"interpolation", enum_name(p.interpolation, kInterpolationNames)},
          {"crop_pct", p.crop_pct},
          {"crop_mode", "center"},
          {"mean", p.mean},
          {"std", p.std}};
}

Preprocess preprocess_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object())
    throw FormatError(
        cat(source, ": manifest key '", kPreprocessKey, "' is ", excerpt(j.dump()), ", expected an object"));
  for (const auto& [key, value] : j.items())
    if (key != "input_size" && key != "interpolation" && key != "crop_pct" && key != "crop_mode" &&
        key != "mean" && key != "std")
      refuse(source, key,
             "is not a key of the entry (input_size, interpolation, crop_pct, crop_mode, mean, std)");
  for (const char* key : {"input_size", "interpolation", "crop_pct", "mean", "std"})
    if (!j.contains(key)) refuse(source, key, "is missing");
  Preprocess p;
  const auto& in = j.at("input_size");
  bool ok = in.is_array() && in.size() == 3;
  for (size_t i = 0; ok && i < 3; ++i) ok = in[i].is_number_integer() && in[i].get<int64_t>() >= 1;
  ok = ok && in[1].get<int64_t>() == in[2].get<int64_t>() && in[0].get<int64_t>() <= kMaxChannels &&
       in[1].get<int64_t>() <= kMaxSize;
  if (!ok)
    refuse(source, "input_size",
           cat("is ", excerpt(in.dump()), ", expected [channels, size, size]: integers, channels 1..",
               kMaxChannels, ", a square size 1..", kMaxSize));
  p.channels = in[0].get<int64_t>();
  p.size = in[1].get<int64_t>();
  const auto& interp = j.at("interpolation");
  const auto filter =
      interp.is_string() ? find_enum(interp.get<std::string>(), kInterpolationNames) : std::nullopt;
  if (!filter)
    refuse(source, "interpolation",
           cat("is ", excerpt(interp.dump()), ", expected one of ", enum_names(kInterpolationNames)));
  p.interpolation = *filter;
  const auto& crop = j.at("crop_pct");
  if (!crop.is_number() || !(crop.get<double>() >= kMinCropPct && crop.get<double>() <= kMaxCropPct))
    refuse(source, "crop_pct",
           cat("is ", excerpt(crop.dump()), ", expected a number in [", kMinCropPct, ", ", kMaxCropPct, "]"));
  p.crop_pct = crop.get<double>();
  if (j.contains("crop_mode") && j.at("crop_mode") != "center")
    refuse(source, "crop_mode", cat("is ", excerpt(j.at("crop_mode").dump()), ", expected \"center\""));
  p.mean = channel_values(j, source, "mean", p.channels, false);
  p.std = channel_values(j, source, "std", p.channels, true);
  return p;
}

void check_preprocess_fits(const Preprocess& p, int64_t channels, int64_t size, const std::string& source) {
  if (p.channels != channels || p.size != size)
    refuse(source, "input_size",
           cat("is [", p.channels, ", ", p.size, ", ", p.size, "] but the model takes [", channels, ", ",
               size, ", ", size, "]"));
}

std::string describe(const Preprocess& p) {
  return cat(p.channels, "x", p.size, "x", p.size, ", ", enum_name(p.interpolation, kInterpolationNames),
             ", crop_pct ", shortest_text(p.crop_pct), ", mean ", list_text(p.mean), ", std ",
             list_text(p.std));
}

torch::Tensor channel_tensor(const std::vector<double>& values) {
  return torch::tensor(values, torch::kDouble).to(torch::kFloat32).view({static_cast<int64_t>(values.size()), 1, 1});
}

EvalTransform eval_transform_of(const Preprocess& p) {
  if ((p.channels != 1 && p.channels != 3) || p.mean.size() != static_cast<size_t>(p.channels) ||
      p.std.size() != static_cast<size_t>(p.channels))
    throw std::invalid_argument(cat("eval transform: ", describe(p), ": images give 1 or 3 channels"));
  EvalTransform t;
  t.size = static_cast<int>(p.size);
  t.crop_pct = p.crop_pct;
  t.interpolation = p.interpolation;
  for (size_t c = 0; c < 3; ++c) {
    t.mean[c] = static_cast<float>(p.mean[p.channels == 1 ? 0 : c]);
    t.std[c] = static_cast<float>(p.std[p.channels == 1 ? 0 : c]);
  }
  return t;
}

ResolvedPreprocess resolve_preprocess(const std::optional<Preprocess>& artifact,
                                      const std::string& artifact_path, const ResolvedPreprocess& fallback,
                                      const PreprocessOverrides& o) {
  ResolvedPreprocess r = fallback;
  if (artifact) {
    r.from_artifact = true;
    r.values = *artifact;
    r.source = cat("the preprocess entry of '", artifact_path, "'");
  }
  std::vector<std::string> given;
  if (o.crop_pct) {
    if (!(*o.crop_pct >= kMinCropPct && *o.crop_pct <= kMaxCropPct))
      throw ParameterError("crop_pct",
                           cat(" must be in [", kMinCropPct, ", ", kMaxCropPct, "] (got ", *o.crop_pct, ")"));
    r.values.crop_pct = *o.crop_pct;
    given.push_back("crop_pct");
  }
  if (!o.interpolation.empty()) {
    r.values.interpolation = parse_enum(o.interpolation, kInterpolationNames, "interpolation");
    given.push_back("interpolation");
  }
  const auto channels = static_cast<size_t>(r.values.channels);
  for (const auto& [key, values, positive] :
       {std::tuple{"mean", &o.mean, false}, std::tuple{"std", &o.std, true}}) {
    if (!*values) continue;
    const auto& v = (*values)->values;
    bool ok = v.size() == channels;
    for (double x : v) ok = ok && (!positive || x > 0);
    if (!ok)
      throw ParameterError(key, cat(" must be ", channels, " number(s)", positive ? " > 0" : "",
                                    " (one per input channel; got ", (*values)->to_text(), ")"));
    (std::string(key) == "mean" ? r.values.mean : r.values.std) = v;
    given.push_back(key);
  }
  if (!given.empty()) {
    std::string flags;
    for (const auto& k : given) flags += cat(flags.empty() ? "" : ", ", log_key(k));
    r.source += cat("; ", flags, " given");
  }
  return r;
}

void log_preprocess(const std::string& what, const ResolvedPreprocess& p) {
  log_info(what, ": ", describe(p.values), " (from ", p.source, ")");
}

}  // namespace skd::data
