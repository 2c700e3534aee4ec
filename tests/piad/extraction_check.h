// Shared by the PIAD tests: the extraction invariants of a mask table on a model.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "skd/models/macs.h"
#include "skd/models/model.h"
#include "skd/models/slice.h"
#include "skd/models/mask_table.h"

namespace skd::test {

// For every code of `table`: the sliced standalone sub-network's logits on `x` equal the
// super-network's forward at that code's widths (1e-5), its MACs and params equal the code's table
// entry, and code 0 equals the full model exactly. Leaves `model` in eval mode.
inline void expect_every_code_extracts(models::ElasticModelImpl& model, const models::MaskTable& table,
                                       const torch::Tensor& x) {
  model.eval();
  torch::NoGradGuard g;
  const auto costs = models::code_costs(model.config(), table);
  for (int64_t c = 0; c <= table.last_code(); ++c) {
    const auto& w = table.widths(c);
    auto sub = models::slice_model(model, w);
    sub->eval();
    models::ForwardOptions fo;
    fo.widths = &w;
    EXPECT_LE((sub->forward(x) - model.forward(x, fo)).abs().max().item<double>(), 1e-5) << "code " << c;
    const auto cost = models::macs_count(sub->config());
    EXPECT_EQ(cost.macs_paper, costs[static_cast<size_t>(c)].macs_paper) << "code " << c;
    EXPECT_EQ(cost.params, costs[static_cast<size_t>(c)].params) << "code " << c;
    if (c == 0) { EXPECT_TRUE(torch::equal(sub->forward(x), model.forward(x))); }
  }
}

}  // namespace skd::test
