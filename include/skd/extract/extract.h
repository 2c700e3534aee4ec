// Extraction: a standalone sub-network (reduced parameter shapes, contiguous weights) sliced out of a
// super-network at a selection of its mask table (skd/extract/select.h), or out of any elastic model
// at given per-block widths, with the provenance its artifact records. The slicing is
// models::slice_model, the same helper the training forward's widths mean.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "skd/extract/select.h"
#include "skd/models/model.h"

namespace skd::extract {

// The file extracted from, as the provenance names it.
struct ExtractSource {
  std::string model_path;
  std::string model_sha256;
  std::string mask_table_path;  // the official mask_table.json the selection came from (empty: the manifest's)
};

struct ExtractOptions {
  // Fold each block's softmax scale into its query weights (models::fold_attention_scale): the
  // sub-network is then exact under the default 1/sqrt(head dim).
  bool fold_scale = false;
};

struct Extracted {
  models::ElasticModel model;
  // {extracted_from, source_sha256} and, for a selection, its budget fields, op_code and mask_table.
  nlohmann::json provenance;
};

// The sub-network of `supernet` that `selection` chose.
Extracted extract(const models::ElasticModelImpl& supernet, const Selection& selection, const ExtractSource& source,
                  const ExtractOptions& options = {});
// `model` sliced to `widths` (each within its stored widths; no mask table involved).
Extracted extract(const models::ElasticModelImpl& model, const models::Widths& widths, const ExtractSource& source,
                  const ExtractOptions& options = {});

// Writes the sub-network's artifact (weights + manifest with its provenance) atomically.
void save(const std::string& path, const Extracted& extracted);

}  // namespace skd::extract
