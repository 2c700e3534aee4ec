// Slicing an elastic model to smaller per-block widths: a standalone model whose parameters
// have the reduced shapes and whose forward equals the source's forward at those widths.
#pragma once

#include "skd/models/model.h"

namespace skd::models {

// New model holding copies of the leading slices of `model`'s parameters at `widths`
// (each <= the stored width; 0 removes a branch and its LayerNorm).
ElasticModel slice_model(const ElasticModelImpl& model, const Widths& widths);

// `stored` with every attention branch cut to floor(a · attn_keep) leading dims per head and every
// MLP to floor(m · mlp_keep) leading units (fractions in (0, 1]; removed branches stay removed).
// Throws std::invalid_argument naming --attn-keep / --mlp-keep when a fraction is out of range or
// keeps nothing of some block.
Widths keep_fraction(const Widths& stored, double attn_keep, double mlp_keep);

}  // namespace skd::models
