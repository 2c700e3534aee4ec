#include "skd/extract/latency_table.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/core/json_file.h"
#include "skd/extract/selection.h"

namespace skd::extract {

nlohmann::json LatencyTable::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : codes) {
    nlohmann::json w = nlohmann::json::array(), lat = nlohmann::json::array();
    for (const auto& b : r.widths) w.push_back({b.attn, b.mlp});
    for (const auto& l : r.latency)
      lat.push_back({{"batch_size", l.batch_size}, {"median_ms", l.median_ms}, {"p10_ms", l.p10_ms},
                     {"p90_ms", l.p90_ms}, {"images_per_s", l.images_per_s}});
    rows.push_back({{"code", r.code}, {"macs_paper", r.cost.macs_paper}, {"macs_full", r.cost.macs_full},
                    {"params", r.cost.params}, {"widths", w}, {"latency", lat}});
  }
  return {{"format", kLatencyTableFormat},
          {"format_version", kLatencyTableVersion},
          {"model", model},
          {"model_sha256", model_sha256},
          {"device", device},
          {"amp", amp},
          {"runtime", runtime},
          {"runtime_version", runtime_version},
          {"threads", threads},
          {"torch_version", torch_version},
          {"created", created},
          {"warmup", warmup},
          {"repeats", repeats},
          {"sweep_seconds", sweep_seconds},
          {"batch_sizes", batch_sizes},
          {"codes", rows}};
}

LatencyTable LatencyTable::from_json(const nlohmann::json& j, const std::string& source) {
  auto fail = [&](const std::string& what) { return FormatError(cat("latency table '", source, "': ", what)); };
  const auto format = j.is_object() ? j.find("format") : j.end();
  if (!j.is_object() || format == j.end() || !format->is_string() || *format != kLatencyTableFormat)
    throw fail(cat("not a latency table (expected an object with \"format\": \"", kLatencyTableFormat,
                   "\", written by a latency-table measurement)"));
  const auto version = j.find("format_version");
  if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() != kLatencyTableVersion)
    throw fail(cat("format_version ", version == j.end() ? std::string("(missing)") : version->dump(),
                   " is not supported (this build reads ", kLatencyTableVersion, ")"));
  // A count that must fit an int: nlohmann's get<int> would wrap a larger number silently.
  auto count = [&](const char* key, int64_t least) {
    const auto& v = j.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < least || v.get<int64_t>() > std::numeric_limits<int>::max())
      throw fail(cat("key '", key, "' is ", excerpt(v.dump()), ", expected an integer of at least ", least));
    return static_cast<int>(v.get<int64_t>());
  };
  LatencyTable t;
  try {
    t.model = j.at("model").get<std::string>();
    t.model_sha256 = j.at("model_sha256").get<std::string>();
    t.device = j.at("device").get<std::string>();
    t.amp = j.at("amp").get<std::string>();
    t.runtime = j.value("runtime", std::string("libtorch"));
    if (t.runtime != "libtorch" && t.runtime != "onnxruntime" && t.runtime != "openvino")
      throw fail(
          cat("key 'runtime' is '", excerpt(t.runtime), "', expected libtorch, onnxruntime or openvino"));
    t.runtime_version = j.value("runtime_version", std::string());
    t.threads = count("threads", 0);
    t.torch_version = j.value("torch_version", std::string());
    if (t.runtime == "libtorch" && t.runtime_version.empty()) t.runtime_version = t.torch_version;
    t.created = j.value("created", std::string());
    t.warmup = count("warmup", 0);
    t.repeats = count("repeats", 0);
    t.sweep_seconds = j.value("sweep_seconds", 0.0);
    t.batch_sizes = j.at("batch_sizes").get<std::vector<int64_t>>();
    for (const auto& r : j.at("codes")) {
      LatencyCodeRow row;
      row.code = r.at("code").get<int64_t>();
      row.cost.macs_paper = r.at("macs_paper").get<int64_t>();
      row.cost.macs_full = r.at("macs_full").get<int64_t>();
      row.cost.params = r.at("params").get<int64_t>();
      for (const auto& w : r.at("widths")) row.widths.push_back({w.at(0).get<int64_t>(), w.at(1).get<int64_t>()});
      for (const auto& l : r.at("latency")) {
        LatencyResult lr;
        lr.batch_size = l.at("batch_size").get<int64_t>();
        lr.median_ms = l.at("median_ms").get<double>();
        lr.p10_ms = l.at("p10_ms").get<double>();
        lr.p90_ms = l.at("p90_ms").get<double>();
        lr.images_per_s = l.value("images_per_s", 0.0);
        row.latency.push_back(lr);
      }
      if (row.code != static_cast<int64_t>(t.codes.size()))
        throw fail(cat("codes must be listed 0, 1, 2, ... in order; entry ", t.codes.size(), " has code ", row.code));
      if (row.latency.size() != t.batch_sizes.size())
        throw fail(cat("code ", row.code, " has ", row.latency.size(), " latency entries for ", t.batch_sizes.size(),
                       " batch sizes"));
      for (size_t b = 0; b < row.latency.size(); ++b) {
        if (row.latency[b].batch_size != t.batch_sizes[b])
          throw fail(cat("code ", row.code, " entry ", b, " is for batch ", row.latency[b].batch_size,
                         ", expected ", t.batch_sizes[b]));
        if (!(row.latency[b].median_ms > 0) || !std::isfinite(row.latency[b].median_ms))
          throw fail(cat("code ", row.code, " batch ", t.batch_sizes[b], ": median_ms must be a positive number"));
      }
      t.codes.push_back(std::move(row));
    }
  } catch (const nlohmann::json::exception& e) {
    throw fail(cat("missing or mistyped key: ", e.what()));
  }
  if (t.codes.empty()) throw fail("has no codes");
  return t;
}

std::string latency_table_path(const std::string& model_path, const std::string& runtime) {
  const std::string ext = ".safetensors";
  const std::string suffix =
      runtime.empty() || runtime == "libtorch" ? ".latency.json" : cat(".latency.", runtime, ".json");
  if (model_path.size() > ext.size() && model_path.compare(model_path.size() - ext.size(), ext.size(), ext) == 0)
    return model_path.substr(0, model_path.size() - ext.size()) + suffix;
  return model_path + suffix;
}

LatencyTable read_latency_table(const std::string& path, const std::string& measure) {
  const auto j =
      read_json_file(path, "latency table", measure.empty() ? "" : cat("measure one with ", measure));
  return LatencyTable::from_json(j, path);
}

void write_latency_table(const std::string& path, const LatencyTable& table) {
  write_file_atomic(path, table.to_json().dump(2) + "\n");
}

void check_latency_table_widths(const LatencyTable& t, const std::vector<models::Widths>& code_widths,
                                const std::string& table_path) {
  const size_t n = std::min(t.codes.size(), code_widths.size());
  for (size_t k = 0; k < n; ++k)
    if (t.codes[k].widths != code_widths[k])
      throw ParameterError(
          "latency_table",
          cat(" '", table_path, "' was measured for other sub-networks: its op code ", k, " has widths ",
              widths_text(t.codes[k].widths), ", the mask table in use gives ", widths_text(code_widths[k]),
              " (a table belongs to the mask table it timed; measure this one with ", kMeasureLatencyTable,
              ")"));
}

LatencySelection code_for_latency(const LatencyTable& t, double budget_ms, int64_t batch_size,
                                  const std::string& model_sha256, int64_t num_codes,
                                  const std::string& table_path) {
  if (t.model_sha256 != model_sha256)
    throw ParameterError(
        "latency_table",
        cat(" '", table_path, "' was measured for another model file ('", t.model, "', sha256 ",
            t.model_sha256.substr(0, 12), "...; this one has ", model_sha256.substr(0, 12),
            "...): measure this super-network with ", kMeasureLatencyTable));
  if (static_cast<int64_t>(t.codes.size()) != num_codes)
    throw ParameterError("latency_table", cat(" '", table_path, "' has ", t.codes.size(),
                                              " op codes, the super-network's mask table ", num_codes));
  size_t col = t.batch_sizes.size();
  std::string measured;
  for (size_t i = 0; i < t.batch_sizes.size(); ++i) {
    measured += cat(i ? ", " : "", t.batch_sizes[i]);
    if (t.batch_sizes[i] == batch_size) col = i;
  }
  if (col == t.batch_sizes.size())
    throw ParameterError([=](const KeyNamer& name) {
      return cat(name("batch"), " ", batch_size, ": ", name("latency_table"), " '", table_path,
                 "' was measured at batch size(s) ", measured, " only (measure with ", kMeasureLatencyTable,
                 " --batch-sizes ", batch_size, ")");
    });
  size_t fastest = 0;
  for (size_t k = 0; k < t.codes.size(); ++k) {
    const auto& l = t.codes[k].latency[col];
    if (l.median_ms <= budget_ms) return {t.codes[k].code, batch_size, l.median_ms, l.p10_ms, l.p90_ms};
    if (l.median_ms < t.codes[fastest].latency[col].median_ms) fastest = k;
  }
  const auto& f = t.codes[fastest];
  throw ParameterError(
      "latency", cat(" ", budget_ms, " ms is below the fastest sub-network in '", table_path, "': code ",
                     f.code, " at ", f.latency[col].median_ms, " ms (median, batch ", batch_size, ", ",
                     t.runtime, " ", t.runtime_version, " on ", t.device, ", ", t.threads, " threads)"));
}

}  // namespace skd::extract
