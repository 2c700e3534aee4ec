// Per-rank, per-epoch index orders for training: torch's DistributedSampler and DeiT's RASampler
// (repeated augmentation), shuffled from (seed, epoch) so every rank agrees without communication.
#pragma once

#include <cstdint>
#include <vector>

namespace skd::data {

// The dataset order of one epoch: a permutation of 0..size-1 drawn from (seed, epoch) (identity
// when shuffle is off). The same on every rank; not torch.randperm's stream.
std::vector<int64_t> epoch_order(int64_t size, int64_t epoch, uint64_t seed, bool shuffle);

struct DistributedSamplerOptions {
  bool shuffle = true;
  bool drop_last = false;  // drop the tail instead of padding to a multiple of world
};

// torch.utils.data.DistributedSampler: the epoch order, padded by repeating its start (or cut
// with drop_last) to a multiple of world, then every world-th index from position rank.
std::vector<int64_t> distributed_indices(int64_t size, int rank, int world, int64_t epoch, uint64_t seed,
                                         const DistributedSamplerOptions& options = {});
// Length of distributed_indices for every rank.
int64_t distributed_length(int64_t size, int world, const DistributedSamplerOptions& options = {});

struct RepeatedAugOptions {
  bool shuffle = true;
  int num_repeats = 3;
  // DeiT keeps floor(size / 256) * 256 / world indices per rank (an epoch covers about size / 3
  // distinct images). 0 keeps all ceil(size * num_repeats / world).
  int64_t round_down_to = 256;
};

// DeiT's RASampler: the epoch order with each index repeated num_repeats times in a row, padded
// by repeating its start to num_samples * world (num_samples = ceil(size * repeats / world)),
// every world-th index from position rank, cut to repeated_aug_length. The repeats of an image
// land on consecutive ranks, so each rank sees different augmentations of the same images.
// Throws std::invalid_argument for bad arguments, and when the DeiT length would be 0 (fewer than
// round_down_to images, or fewer than world after rounding): use round_down_to = 0 for such data.
std::vector<int64_t> repeated_aug_indices(int64_t size, int rank, int world, int64_t epoch, uint64_t seed,
                                          const RepeatedAugOptions& options = {});
int64_t repeated_aug_length(int64_t size, int world, const RepeatedAugOptions& options = {});

}  // namespace skd::data
