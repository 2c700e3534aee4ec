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

namespace skd::models {

// Folds the softmax scale into the weights: in every block with attention, the query rows of qkv
// (weight and bias: the q third) are multiplied by s·sqrt(a), where s is the block's current scale
// (attention_scale: the original head dim's, or the config's attn_scale) and a its stored attention
// width. The model is then marked attn_scale_folded and runs at the standard 1/sqrt(a) per block, so
// a runtime that only knows the default scale of a head of width a computes the same function.
// Logits are unchanged up to float rounding; a model already folded is left as it is.
void fold_attention_scale(ElasticModelImpl& model);

}  // namespace skd::models
