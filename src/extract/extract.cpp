#include "skd/extract/extract.h"

#include "skd/models/checkpoint.h"
#include "skd/models/slice.h"

namespace skd::extract {

namespace {

nlohmann::json source_provenance(const ExtractSource& source) {
  return {{"extracted_from", source.model_path}, {"source_sha256", source.model_sha256}};
}

}  // namespace

Extracted extract(const models::ElasticModelImpl& supernet, const Selection& selection, const ExtractSource& source,
                  const ExtractOptions& options) {
  Extracted e = extract(supernet, selection.widths, source, options);
  for (const auto& [key, value] : selection.provenance.items()) e.provenance[key] = value;
  e.provenance["op_code"] = selection.code;
  if (!source.mask_table_path.empty()) e.provenance["mask_table"] = source.mask_table_path;
  return e;
}

Extracted extract(const models::ElasticModelImpl& model, const models::Widths& widths, const ExtractSource& source,
                  const ExtractOptions& options) {
  Extracted e{models::slice_model(model, widths), source_provenance(source)};
  if (options.fold_scale) models::fold_attention_scale(*e.model);
  return e;
}

void save(const std::string& path, const Extracted& extracted) {
  models::save_artifact(path, *extracted.model, extracted.provenance);
}

}  // namespace skd::extract
