#include "skd/extract/extract.h"

#include "skd/models/checkpoint.h"
#include "skd/models/slice.h"

namespace skd::extract {

Extracted extract(const models::ElasticModelImpl& model, const SubnetChoice& choice,
                  const ExtractSource& source, const ExtractOptions& options) {
  Extracted e{models::slice_model(model, choice.widths),
              {{"extracted_from", source.model_path}, {"source_sha256", source.model_sha256}},
              source.preprocess};
  if (!source.provenance.is_null()) e.provenance["source_provenance"] = source.provenance;
  if (choice.selection) {
    for (const auto& [key, value] : choice.selection->provenance.items()) e.provenance[key] = value;
    e.provenance["op_code"] = choice.selection->code;
    if (!source.mask_table_path.empty()) e.provenance["mask_table"] = source.mask_table_path;
  }
  if (options.fold_scale) models::fold_attention_scale(*e.model);
  return e;
}

void save(const std::string& path, const Extracted& extracted) {
  models::save_artifact(path, *extracted.model, extracted.provenance,
                        models::preprocess_entry(extracted.preprocess));
}

}  // namespace skd::extract
