// DistributedSampler and DeiT's RASampler index orders (see sampler.h).
#include "skd/data/sampler.h"

#include <random>
#include <stdexcept>
#include <utility>

#include "skd/core/error.h"
#include "skd/data/augment.h"  // rng_int, the project's unbiased draw

namespace skd::data {

namespace {

void check_rank(int rank, int world, const char* fn) {
  if (world < 1) throw std::invalid_argument(cat(fn, ": world size must be >= 1, got ", world));
  if (rank < 0 || rank >= world)
    throw std::invalid_argument(cat(fn, ": rank must be in [0, ", world, "), got ", rank));
}

// Every world-th element of `order` from position rank, after padding it by cycling its start to
// num_samples * world elements; the first `keep` of them.
std::vector<int64_t> stride(const std::vector<int64_t>& order, int rank, int world, int64_t num_samples,
                            int64_t keep) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(keep));
  const auto n = static_cast<int64_t>(order.size());
  for (int64_t k = 0; k < keep; ++k) {
    const int64_t pos = rank + k * world;  // < num_samples * world
    SKD_CHECK(pos < num_samples * world && n > 0);
    out.push_back(order[static_cast<size_t>(pos % n)]);
  }
  return out;
}

}  // namespace

std::vector<int64_t> epoch_order(int64_t size, int64_t epoch, uint64_t seed, bool shuffle) {
  if (size < 0) throw std::invalid_argument(cat("epoch_order: dataset size must be >= 0, got ", size));
  std::vector<int64_t> order(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle || size < 2) return order;
  // seed_seq's mixing is specified by the standard, so the order is the same on every platform.
  const auto e = static_cast<uint64_t>(epoch);
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(e),
                    static_cast<uint32_t>(e >> 32)};
  Rng rng(seq);
  for (int64_t i = size - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[rng_int(rng, 0, i)]);
  return order;
}

int64_t distributed_length(int64_t size, int world, const DistributedSamplerOptions& options) {
  check_rank(0, world, "distributed_length");
  if (size < 0) throw std::invalid_argument(cat("distributed_length: dataset size must be >= 0, got ", size));
  // torch: ceil((size - world) / world) with drop_last and a remainder, which is floor(size / world).
  if (options.drop_last && size % world != 0) return size / world;
  return (size + world - 1) / world;
}

std::vector<int64_t> distributed_indices(int64_t size, int rank, int world, int64_t epoch, uint64_t seed,
                                         const DistributedSamplerOptions& options) {
  check_rank(rank, world, "distributed_indices");
  const int64_t num_samples = distributed_length(size, world, options);
  if (num_samples == 0) return {};
  return stride(epoch_order(size, epoch, seed, options.shuffle), rank, world, num_samples, num_samples);
}

int64_t repeated_aug_length(int64_t size, int world, const RepeatedAugOptions& options) {
  check_rank(0, world, "repeated_aug_length");
  if (size < 1) throw std::invalid_argument(cat("repeated_aug: dataset size must be >= 1, got ", size));
  if (options.num_repeats < 1)
    throw std::invalid_argument(cat("repeated_aug: num_repeats must be >= 1, got ", options.num_repeats));
  if (options.round_down_to < 0)
    throw std::invalid_argument(cat("repeated_aug: round_down_to must be >= 0, got ", options.round_down_to));
  const int64_t num_samples = (size * options.num_repeats + world - 1) / world;
  if (options.round_down_to == 0) return num_samples;
  const int64_t r = options.round_down_to;
  const int64_t length = size / r * r / world;
  if (length == 0)
    throw std::invalid_argument(cat("repeated_aug: DeiT's epoch length floor(", size, " / ", r, ") * ", r,
                                    " / ", world, " is 0; use round_down_to = 0 for datasets this small"));
  return length;
}

std::vector<int64_t> repeated_aug_indices(int64_t size, int rank, int world, int64_t epoch, uint64_t seed,
                                          const RepeatedAugOptions& options) {
  check_rank(rank, world, "repeated_aug_indices");
  const int64_t length = repeated_aug_length(size, world, options);
  const int64_t num_samples = (size * options.num_repeats + world - 1) / world;
  const std::vector<int64_t> order = epoch_order(size, epoch, seed, options.shuffle);
  std::vector<int64_t> repeated;
  repeated.reserve(order.size() * options.num_repeats);
  for (int64_t i : order)
    for (int k = 0; k < options.num_repeats; ++k) repeated.push_back(i);
  return stride(repeated, rank, world, num_samples, length);
}

}  // namespace skd::data
