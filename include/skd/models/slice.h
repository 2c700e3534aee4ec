// Slicing an elastic model to smaller per-block widths: a standalone model whose parameters
// have the reduced shapes and whose forward equals the source's forward at those widths.
#pragma once

#include "skd/models/model.h"

namespace skd::models {

// New model holding copies of the leading slices of `model`'s parameters at `widths`
// (each <= the stored width; 0 removes a branch and its LayerNorm).
ElasticModel slice_model(const ElasticModelImpl& model, const Widths& widths);

}  // namespace skd::models
