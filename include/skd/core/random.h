// The project's unbiased integer draw from a 64-bit engine, written once: std::uniform_int_distribution's
// algorithm is unspecified, so a seeded proxy set, a random criterion's order or a sampled op code
// would differ between standard libraries.
//
// data::rng_int (skd/data/augment.h) is a second, deliberately different draw: rejection on the
// smallest covering power of two, as Python's random.randint, for the augmentations' streams. Both
// are exact; each keeps its own sequence, which seeded runs and the demo's numbers depend on.
#pragma once

#include <cstdint>
#include <limits>
#include <random>

namespace skd {

// Uniform in {0, ..., n - 1} (n >= 1): rejection of the engine's top 2^64 mod n values, then r mod n.
inline uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t r;
  do r = rng();
  while (r >= limit);
  return r % n;
}

}  // namespace skd
