// Extraction: a standalone sub-network (reduced parameter shapes, contiguous weights) sliced out of a
// model at what a selection chose (skd/extract/selection.h: a code of its mask table, or given
// per-block widths), with the provenance its artifact records. The slicing is models::slice_model, the
// same helper the training forward's widths mean. skd-extract saves the result, skd-export writes it
// as ONNX: both take it from extract(), with the same provenance.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "skd/data/preprocess.h"
#include "skd/extract/selection.h"
#include "skd/models/model.h"

namespace skd::extract {

// The file extracted from, as the provenance names it.
struct ExtractSource {
  std::string model_path;
  std::string model_sha256;
  std::string mask_table_path;  // the official mask_table.json the selection came from (empty: the manifest's)
  nlohmann::json provenance;    // the source artifact's own provenance (null: none)
  std::optional<data::Preprocess> preprocess;  // the source's preprocess entry, carried unchanged
};

struct ExtractOptions {
  // Fold each block's softmax scale into its query weights (models::fold_attention_scale): the
  // sub-network is then exact under the default 1/sqrt(head dim).
  bool fold_scale = false;
};

// The provenance vocabulary of skd-extract's artifacts and skd-export's ONNX manifests:
//   extracted_from, source_sha256   the file sliced (path as given, SHA-256 of its bytes)
//   source_provenance               that file's own provenance, when it has one
//   op_code, mask_table             a code of the mask table (mask_table: the file given, if any)
//   macs_budget, macs_convention, latency   the budget that chose the code (Selection::provenance)
// (ONNX files of skd-export before this vocabulary said "exported_from" and "tool"; nothing in the
// toolkit reads either back.)

struct Extracted {
  models::ElasticModel model;
  nlohmann::json provenance;  // the vocabulary above
  std::optional<data::Preprocess> preprocess;  // the source's (ExtractSource::preprocess)
};

// `model` sliced to the choice's widths (each within its stored widths), its scale folded if asked.
Extracted extract(const models::ElasticModelImpl& model, const SubnetChoice& choice,
                  const ExtractSource& source, const ExtractOptions& options = {});

// Writes the sub-network's artifact (weights + manifest with its provenance and preprocess entry) atomically.
void save(const std::string& path, const Extracted& extracted);

}  // namespace skd::extract
