// The mask table of the extract tests: 4 blocks of vit_micro_32 (head dim 16, MLP 256); the costs of its
// op codes strictly decrease with the code.
#pragma once

#include "skd/models/mask_table.h"

namespace skd::test {

inline models::MaskTable micro_table() {
  models::MaskTable t(models::Widths(4, {16, 256}));
  t.append({{16, 256}, {16, 256}, {16, 256}, {16, 192}});
  t.append({{16, 256}, {16, 256}, {16, 256}, {8, 192}});
  t.append({{16, 0}, {16, 256}, {16, 256}, {8, 192}});
  t.append({{16, 0}, {16, 128}, {0, 256}, {8, 192}});
  return t;
}

}  // namespace skd::test
