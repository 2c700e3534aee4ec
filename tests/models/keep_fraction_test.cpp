// keep_fraction (skd/models/slice.h): the widths that skd-eval and skd-extract --attn-keep/--mlp-keep cut
// to, floored per block, removed branches kept removed, fractions outside (0, 1] or that keep nothing
// refused.
#include <gtest/gtest.h>

#include <stdexcept>

#include "skd/models/slice.h"

using namespace skd;

TEST(KeepFraction, FloorsAndRefusesEmptyBlocks) {
  const models::Widths w{{32, 256}, {0, 256}, {16, 0}};
  const auto q = models::keep_fraction(w, 0.25, 1.0);
  EXPECT_EQ(q[0], (models::BlockWidth{8, 256}));
  EXPECT_EQ(q[1], (models::BlockWidth{0, 256}));
  EXPECT_EQ(q[2], (models::BlockWidth{4, 0}));
  EXPECT_EQ(models::keep_fraction(w, 0.75, 0.5)[0], (models::BlockWidth{24, 128}));
  EXPECT_THROW(models::keep_fraction(w, 0.01, 1.0), std::invalid_argument);
  EXPECT_THROW(models::keep_fraction(w, 0.0, 1.0), std::invalid_argument);
  EXPECT_THROW(models::keep_fraction(w, 1.0, 1.5), std::invalid_argument);
}
