#include "skd/train/checkpointing.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "skd/core/error.h"
#include "skd/io/json.h"
#include "skd/core/fs.h"
#include "skd/io/safetensors.h"
#include "skd/models/checkpoint.h"

namespace skd::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kOptimizerPrefix = "train_state/optimizer/";
constexpr const char* kEmaPrefix = "train_state/ema/";
constexpr const char* kTeacherPrefix = "train_state/teacher/";

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

nlohmann::json progress_to_json(const TrainProgress& p) {
  return {{"epoch", p.epoch},           {"step_in_epoch", p.step_in_epoch}, {"global_step", p.global_step},
          {"best_top1", p.best_top1},   {"best_epoch", p.best_epoch},       {"world_size", p.world_size},
          {"global_batch", p.global_batch}};
}

TrainProgress progress_from_json(const nlohmann::json& j) {
  TrainProgress p;
  p.epoch = j.at("epoch").get<int64_t>();
  p.step_in_epoch = j.at("step_in_epoch").get<int64_t>();
  p.global_step = j.at("global_step").get<int64_t>();
  p.best_top1 = j.at("best_top1").get<double>();
  p.best_epoch = j.at("best_epoch").get<int64_t>();
  p.world_size = j.at("world_size").get<int>();
  p.global_batch = j.at("global_batch").get<int64_t>();
  return p;
}

}  // namespace

std::vector<uint8_t> serialize_training_checkpoint(const models::ElasticModelImpl& model,
                                                   const nlohmann::json& provenance, const TrainingState& state,
                                                   const nlohmann::json& extra) {
  io::SafetensorsContent content;
  content.tensors = models::state_dict(model);
  for (const auto& [key, t] : state.optimizer) content.tensors[kOptimizerPrefix + key] = models::record_from_tensor(t);
  for (const auto& [key, t] : state.ema) content.tensors[kEmaPrefix + key] = models::record_from_tensor(t);
  for (const auto& [key, rec] : state.teacher) content.tensors[kTeacherPrefix + key] = rec;
  content.metadata["format"] = "pt";
  content.metadata[models::kManifestKey] = models::make_manifest(model, provenance, extra).dump();
  nlohmann::json ts = {{"progress", progress_to_json(state.progress)},
                       {"config", state.config},
                       {"scaler", {{"scale", state.scaler_scale}, {"growth_tracker", state.scaler_growth_tracker}}},
                       {"has_ema", !state.ema.empty()}};
  content.metadata[kTrainStateKey] = ts.dump();
  return io::serialize_safetensors(content);
}

void save_training_checkpoint(const std::string& path, const models::ElasticModelImpl& model,
                              const nlohmann::json& provenance, const TrainingState& state,
                              const nlohmann::json& extra) {
  const auto bytes = serialize_training_checkpoint(model, provenance, state, extra);
  write_file_atomic(path, bytes.data(), bytes.size());
}

TrainingState read_training_state(const std::string& path) {
  auto content = io::read_safetensors(path);
  auto it = content.metadata.find(kTrainStateKey);
  if (it == content.metadata.end())
    throw ParameterFailure([=](const KeyNamer& name) {
      return cat("'", path, "' is not a training checkpoint (no '", kTrainStateKey,
                 "' metadata); to fine-tune a model use ", name("model"), " instead of ", name("resume"));
    });
  TrainingState st;
  try {
    const auto j = io::parse_json_bounded(it->second, cat(path, ": '", kTrainStateKey, "' metadata"));
    st.progress = progress_from_json(j.at("progress"));
    st.config = j.at("config");
    st.scaler_scale = j.at("scaler").at("scale").get<double>();
    st.scaler_growth_tracker = j.at("scaler").at("growth_tracker").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(cat(path, ": malformed '", kTrainStateKey, "' metadata: ", e.what()));
  }
  auto manifest = content.metadata.find(models::kManifestKey);
  if (manifest == content.metadata.end())
    throw std::runtime_error(cat(path, ": training checkpoint without the '", models::kManifestKey, "' manifest"));
  st.manifest = models::parse_manifest(manifest->second, path);
  for (auto& [key, rec] : content.tensors) {
    if (starts_with(key, kOptimizerPrefix))
      st.optimizer[key.substr(std::strlen(kOptimizerPrefix))] = models::tensor_from_record(rec);
    else if (starts_with(key, kEmaPrefix))
      st.ema[key.substr(std::strlen(kEmaPrefix))] = models::tensor_from_record(rec);
    else if (starts_with(key, kTeacherPrefix))
      st.teacher.emplace(key.substr(std::strlen(kTeacherPrefix)), std::move(rec));
    else if (!starts_with(key, kTrainStatePrefix))
      st.model.emplace(key, std::move(rec));
  }
  return st;
}

RunDir::RunDir(std::string root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(checkpoint_dir(), ec);
  if (ec || !fs::is_directory(checkpoint_dir()))
    throw ParameterFailure("run_dir",
                           cat(" '", root_, "': cannot create ", checkpoint_dir(), ": ", ec.message()));
}

std::string RunDir::checkpoint_name(const TrainProgress& p) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-e%04lld-s%07lld.safetensors", static_cast<long long>(p.epoch),
                static_cast<long long>(p.step_in_epoch));
  return buf;
}

std::string RunDir::save(const std::vector<uint8_t>& bytes, const TrainProgress& progress, bool is_best,
                         int keep_last) {
  const std::string name = checkpoint_name(progress);
  const std::string path = checkpoint_dir() + "/" + name;
  write_file_atomic(path, bytes.data(), bytes.size());
  write_file_atomic(checkpoint_dir() + "/latest", name + "\n");
  if (is_best) {
    // A hard link costs no space or time; copy where links are not supported.
    const std::string tmp = best_path() + ".link.tmp";
    ::unlink(tmp.c_str());
    if (::link(path.c_str(), tmp.c_str()) == 0 && ::rename(tmp.c_str(), best_path().c_str()) == 0) {
      // done
    } else {
      ::unlink(tmp.c_str());
      write_file_atomic(best_path(), bytes.data(), bytes.size());
    }
  }
  std::vector<std::string> ckpts;
  for (const auto& e : fs::directory_iterator(checkpoint_dir())) {
    const auto n = e.path().filename().string();
    if (starts_with(n, "ckpt-e") && n.size() > 12 && n.substr(n.size() - 12) == ".safetensors") ckpts.push_back(n);
  }
  std::sort(ckpts.begin(), ckpts.end());
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < ckpts.size(); ++i)
    if (ckpts[i] != name) fs::remove(checkpoint_dir() + "/" + ckpts[i]);
  return path;
}

void RunDir::append_metrics(const nlohmann::json& record) const { append_line_synced(metrics_path(), record.dump()); }

int64_t trim_jsonl(const std::string& path, const std::function<bool(const nlohmann::json&)>& keep) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return 0;
  const auto bytes = read_file_bytes(path);
  const std::string text(bytes.begin(), bytes.end());
  std::string kept;
  int64_t dropped = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    const bool complete = end != std::string::npos;
    if (!complete) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.empty()) continue;
    nlohmann::json record;
    bool parsed = complete;
    if (parsed) {
      try {
        record = io::parse_json_bounded(line, path);
      } catch (const FormatError&) {
        parsed = false;
      }
    }
    if (!parsed && begin < text.size())
      throw std::runtime_error(cat(path, ": line '", line.substr(0, 80), "' is not JSON (a damaged run log; "
                                   "only a torn last line is repaired)"));
    if (parsed && keep(record)) {
      kept += line;
      kept += '\n';
    } else {
      ++dropped;
    }
  }
  if (dropped > 0) write_file_atomic(path, kept);
  return dropped;
}

std::string resolve_resume_path(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (!fs::is_directory(path, ec))
    throw ParameterError("resume", cat(" '", path, "': no such file or directory"));
  for (const auto& dir : {path + "/checkpoints", path}) {
    if (!fs::exists(dir + "/latest", ec)) continue;
    const auto bytes = read_file_bytes(dir + "/latest", 4096);  // refuses a FIFO or device (never blocks)
    std::string name(bytes.begin(), bytes.end());
    name = name.substr(0, name.find('\n'));
    const std::string file = dir + "/" + name;
    if (name.empty() || !fs::is_regular_file(file, ec))
      throw ParameterError("resume",
                           cat(" '", path, "': ", dir, "/latest names '", name, "', which does not exist"));
    return file;
  }
  throw ParameterError("resume", cat(" '", path,
                                     "': no checkpoints/latest in this directory (not a run "
                                     "directory of skd-train?)"));
}

}  // namespace skd::train
