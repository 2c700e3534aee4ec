#include "skd/models/mask_table.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>

#include "skd/core/error.h"
#include "skd/io/json.h"
#include "skd/core/fs.h"

namespace skd::models {

MaskTable::MaskTable(const Widths& full) { codes_.push_back(full); }

const Widths& MaskTable::widths(int64_t code) const {
  if (codes_.empty()) throw std::invalid_argument("the mask table is empty");
  const int64_t k = last_code();
  if (code == -1) return codes_.back();
  if (code < 0 || code > k)
    throw std::invalid_argument(cat("op code ", code, " is not in the mask table (codes 0..", k, ", or -1 = ", k, ")"));
  return codes_[static_cast<size_t>(code)];
}

void MaskTable::append(const Widths& w) {
  SKD_CHECK(!codes_.empty(), "append to an empty mask table");
  const auto& last = codes_.back();
  if (w.size() != last.size())
    throw std::invalid_argument(cat("mask table: ", w.size(), " block widths given, the table has ", last.size()));
  for (size_t i = 0; i < w.size(); ++i)
    if (w[i].attn > last[i].attn || w[i].mlp > last[i].mlp || w[i].attn < 0 || w[i].mlp < 0)
      throw std::invalid_argument(cat("mask table: block ", i, " would grow from (", last[i].attn, ", ", last[i].mlp,
                                      ") to (", w[i].attn, ", ", w[i].mlp, ") at code ", codes_.size()));
  codes_.push_back(w);
}

nlohmann::ordered_json MaskTable::to_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (int64_t b = 0; b < blocks(); ++b) {
    for (const bool attn : {true, false}) {
      nlohmann::ordered_json m = nlohmann::ordered_json::object();
      auto width = [&](const Widths& w) { return attn ? w[static_cast<size_t>(b)].attn : w[static_cast<size_t>(b)].mlp; };
      m["0"] = width(codes_.front());
      m["-1"] = width(codes_.back());
      for (size_t c = 1; c < codes_.size(); ++c) m[std::to_string(c)] = width(codes_[c]);
      j[cat(b, attn ? ".attn" : ".mlp")] = m;
    }
  }
  return j;
}

MaskTable MaskTable::from_json(const nlohmann::json& j, const Widths& full, const std::string& source) {
  if (!j.is_object()) throw FormatError(cat(source, ": expected a JSON object of modules (\"0.attn\", ...)"));
  const size_t blocks = full.size();
  for (const auto& item : j.items()) {
    bool known = false;
    for (size_t b = 0; b < blocks && !known; ++b) known = item.key() == cat(b, ".attn") || item.key() == cat(b, ".mlp");
    if (!known)
      throw FormatError(cat(source, ": unexpected key '", item.key(), "' (the model has ", blocks,
                            " blocks: \"0.attn\" ... \"", blocks - 1, ".mlp\")"));
  }
  int64_t last = -1;
  std::vector<std::vector<int64_t>> columns;  // [module][code]
  for (size_t b = 0; b < blocks; ++b) {
    for (const bool attn : {true, false}) {
      const std::string key = cat(b, attn ? ".attn" : ".mlp");
      if (!j.contains(key)) throw FormatError(cat(source, ": module '", key, "' is missing"));
      const auto& m = j.at(key);
      if (!m.is_object() || m.empty())
        throw FormatError(cat(source, ": '", key, "' must map op codes to widths"));
      std::map<int64_t, int64_t> widths;
      for (const auto& e : m.items()) {
        size_t used = 0;
        int64_t code = 0;
        try {
          code = std::stoll(e.key(), &used);
        } catch (const std::exception&) {
          used = 0;
        }
        // Only the canonical spelling: stoll alone would also take " 1" or "+1", and two spellings
        // of one code would silently overwrite each other.
        if (used != e.key().size() || code < -1 || std::to_string(code) != e.key())
          throw FormatError(
              cat(source, ": '", key, "' has op code '", e.key(), "' (expected -1, 0, 1, ...)"));
        if (!e.value().is_number_integer())
          throw FormatError(cat(source, ": '", key, "'[\"", e.key(), "\"] is not an integer width"));
        widths[code] = e.value().get<int64_t>();
      }
      // A module with only "-1" has no code 0: refused here, before col.back() of an empty column and
      // before the next module's count is compared with it.
      const int64_t k = widths.rbegin()->first;
      if (k < 0) throw FormatError(cat(source, ": '", key, "' lacks op code 0"));
      if (!columns.empty() && k != last)
        throw FormatError(cat(source, ": '", key, "' has ", static_cast<uint64_t>(k) + 1,
                              " codes where module '0.attn' has ", static_cast<uint64_t>(last) + 1,
                              " (every module lists codes 0..K)"));
      last = k;
      std::vector<int64_t> col;
      const int64_t limit = attn ? full[b].attn : full[b].mlp;
      for (int64_t c = 0; c <= k; ++c) {
        auto it = widths.find(c);
        if (it == widths.end()) throw FormatError(cat(source, ": '", key, "' lacks op code ", c));
        if (it->second < 0 || it->second > limit)
          throw FormatError(
              cat(source, ": '", key, "'[\"", c, "\"] = ", it->second, " is outside [0, ", limit, "]"));
        if (c > 0 && it->second > col.back())
          throw FormatError(cat(source, ": '", key, "' grows from ", col.back(), " at code ", c - 1, " to ",
                                it->second, " at code ", c, " (widths must not increase with the code)"));
        col.push_back(it->second);
      }
      auto alias = widths.find(-1);
      if (alias != widths.end() && alias->second != col.back())
        throw FormatError(cat(source, ": '", key, "'[\"-1\"] = ", alias->second, " but the last code ", k,
                              " has ", col.back(), " (-1 must alias the last code)"));
      columns.push_back(std::move(col));
    }
  }
  MaskTable t;
  for (int64_t c = 0; c <= last; ++c) {
    Widths w(blocks);
    for (size_t b = 0; b < blocks; ++b) w[b] = {columns[2 * b][static_cast<size_t>(c)], columns[2 * b + 1][static_cast<size_t>(c)]};
    t.codes_.push_back(std::move(w));
  }
  return t;
}

std::vector<ModelCost> code_costs(const ModelConfig& config, const MaskTable& table) {
  std::vector<ModelCost> out;
  for (int64_t c = 0; c <= table.last_code(); ++c) out.push_back(macs_count(config, table.widths(c)));
  return out;
}

nlohmann::json supernet_manifest_entries(const ModelConfig& config, const MaskTable& table) {
  nlohmann::json codes = nlohmann::json::array();
  const auto costs = code_costs(config, table);
  for (size_t c = 0; c < costs.size(); ++c)
    codes.push_back({{"code", c}, {"macs_paper", costs[c].macs_paper}, {"macs_full", costs[c].macs_full},
                     {"params", costs[c].params}});
  return {{"mask_table", io::parse_json_bounded(table.to_json().dump(), "mask table")}, {"op_codes", codes}};
}

void check_op_codes(const nlohmann::json& op_codes, const std::vector<ModelCost>& costs, const std::string& source) {
  if (!op_codes.is_array() || op_codes.size() != costs.size())
    throw FormatError(cat(source, ": op_codes must list the ", costs.size(), " codes of the mask table (0..",
                          costs.size() - 1, "), found ",
                          op_codes.is_array() ? cat(op_codes.size(), " entries") : op_codes.dump()));
  for (size_t c = 0; c < costs.size(); ++c) {
    const auto& e = op_codes[c];
    const std::pair<const char*, int64_t> fields[] = {{"code", static_cast<int64_t>(c)},
                                                      {"macs_paper", costs[c].macs_paper},
                                                      {"macs_full", costs[c].macs_full},
                                                      {"params", costs[c].params}};
    for (const auto& [field, want] : fields) {
      const auto it = e.is_object() ? e.find(field) : e.end();
      if (it == e.end() || !it->is_number_integer())
        throw FormatError(cat(source, ": op_codes entry ", c, " has no integer \"", field, "\""));
      if (it->get<int64_t>() != want)
        throw FormatError(cat(source, ": op_codes code ", c, ": ", field, " = ", it->get<int64_t>(),
                              ", but the mask table and the architecture give ", want,
                              " (the manifest was edited, or written by another cost model)"));
    }
  }
}

MaskTable load_mask_table(const nlohmann::json& manifest, const std::string& mask_table_path,
                          const ModelConfig& config, const Widths& full, const std::string& model_path,
                          const std::string& path_name) {
  if (!mask_table_path.empty()) {
    // A file that cannot be opened is bad usage; content that is not JSON or does not fit this model is
    // a format error of the file (both name the parameter `path_name` by its config key).
    std::error_code ec;  // a FIFO or device would block or feed the read: refused before opening
    if (std::filesystem::exists(mask_table_path, ec)) check_input_file(mask_table_path, path_name);
    std::ifstream in(mask_table_path, std::ios::binary);
    if (!in) throw ParameterError(path_name, cat(": cannot open '", mask_table_path, "'"));
    std::ostringstream text;
    text << in.rdbuf();
    nlohmann::json j;
    try {
      j = io::parse_json_bounded(text.str(), "");
    } catch (const io::JsonError& e) {
      throw ParameterFormatError(path_name, cat(" '", mask_table_path, "' ", e.detail()));
    }
    try {
      return MaskTable::from_json(j, full, cat("'", mask_table_path, "'"));
    } catch (const FormatError& e) {
      throw ParameterFormatError(path_name, cat(" ", e.what()));
    }
  }
  if (manifest.is_object() && manifest.contains("mask_table")) {
    auto table = MaskTable::from_json(manifest.at("mask_table"), full, cat(model_path, " manifest mask_table"));
    if (manifest.contains("op_codes"))
      check_op_codes(manifest.at("op_codes"), code_costs(config, table), cat(model_path, " manifest"));
    return table;
  }
  throw ParameterError([=](const KeyNamer& name) {
    return cat("'", model_path, "' is not a super-network (its manifest has no mask table, and no ",
               name(path_name), " file was given)");
  });
}

void write_mask_table(const std::string& path, const MaskTable& table) {
  write_file_atomic(path, table.to_json().dump(4) + "\n");
}

}  // namespace skd::models
