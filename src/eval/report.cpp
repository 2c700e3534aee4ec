#include "skd/eval/report.h"

#include "skd/core/error.h"
#include "skd/io/safetensors.h"
#include "skd/models/checkpoint.h"

namespace skd::eval {

std::string save_model_outputs(models::ElasticModelImpl& model, const std::string& inputs_path,
                               const std::string& out_path, const std::string& model_name) {
  const auto content = io::read_safetensors(inputs_path);
  auto it = content.tensors.find("input");
  if (it == content.tensors.end())
    throw ParameterError("inputs", cat(" '", inputs_path, "' has no tensor 'input'"));
  const auto device = model.parameters().front().device();
  const auto x = models::tensor_from_record(it->second).to(device, torch::kFloat32);
  torch::NoGradGuard g;
  model.eval();
  const auto feats = model.forward_features(x);
  const auto pre = model.forward_head(feats, true);
  const auto logits = model.forward_head(feats, false);
  io::SafetensorsContent out;
  out.tensors["logits"] = models::record_from_tensor(logits);
  out.tensors["features"] = models::record_from_tensor(pre);
  out.tensors["forward_features"] = models::record_from_tensor(feats);
  out.metadata["model"] = model_name;
  io::write_safetensors(out_path, out);
  return cat("wrote logits ", logits.sizes(), ", features ", pre.sizes(), " to ", out_path);
}

void save_dataset_outputs(const EvalResult& r, const data::Dataset& dataset, const std::string& out_path) {
  SKD_CHECK(r.logits.defined() || r.images == 0, "evaluation did not keep logits");
  io::SafetensorsContent out;
  if (r.logits.defined()) out.tensors["logits"] = models::record_from_tensor(r.logits);
  if (r.inputs.defined()) out.tensors["inputs"] = models::record_from_tensor(r.inputs);
  out.tensors["indices"] = models::record_from_tensor(torch::tensor(r.indices, torch::kLong));
  nlohmann::json paths = nlohmann::json::array();
  for (int64_t i : r.indices) paths.push_back(dataset.path(i));
  out.metadata["data"] = dataset.describe();
  out.metadata["paths"] = paths.dump();
  io::write_safetensors(out_path, out);
}

nlohmann::json cost_json(const models::ModelCost& c) {
  return {{"macs_paper", c.macs_paper}, {"macs_full", c.macs_full}, {"params", c.params}};
}

nlohmann::json accuracy_json(const EvalResult& r, const models::ModelCost& cost, const std::string& model,
                             const std::string& data) {
  auto j = cost_json(cost);
  j["top1"] = r.top1;
  j["top5"] = r.top5;
  j["loss"] = r.loss;
  j["images"] = r.images;
  j["images_per_s"] = r.images_per_s;
  j["bad_images"] = r.bad_images;
  j["model"] = model;
  j["data"] = data;
  return j;
}

nlohmann::json latency_json(const LatencyResult& r) {
  return {{"batch_size", r.batch_size}, {"median_ms", r.median_ms}, {"p10_ms", r.p10_ms},
          {"p90_ms", r.p90_ms}, {"images_per_s", r.images_per_s}};
}

}  // namespace skd::eval
