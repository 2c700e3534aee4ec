// What skd-eval writes: model outputs on given inputs or a dataset (safetensors), and the JSON
// reports (the keys are a contract for scripts; see README).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "skd/data/dataset.h"
#include "skd/eval/evaluate.h"
#include "skd/models/macs.h"
#include "skd/models/model.h"

namespace skd::eval {

// Runs the model on the tensor 'input' of `inputs_path` ([B, C, H, W], already normalised) and
// writes 'logits', 'features' (pre-logits) and 'forward_features'. Returns a one-line summary.
std::string save_model_outputs(models::ElasticModelImpl& model, const std::string& inputs_path,
                               const std::string& out_path, const std::string& model_name);

// Writes the logits of an evaluation (keep_logits) with their dataset indices and file paths.
void save_dataset_outputs(const EvalResult& result, const data::Dataset& dataset, const std::string& out_path);

// {top1, top5, loss, images, images_per_s, macs_paper, macs_full, params, bad_images, model, data}
nlohmann::json accuracy_json(const EvalResult& result, const models::ModelCost& cost, const std::string& model,
                             const std::string& data);
nlohmann::json latency_json(const LatencyResult& result);
nlohmann::json cost_json(const models::ModelCost& cost);

}  // namespace skd::eval
