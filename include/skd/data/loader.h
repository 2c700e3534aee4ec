// Batch loader: worker threads decode/transform whole batches in parallel, a bounded prefetch
// queue hands them out in order. Per-example randomness comes from (seed, epoch, index), so
// the batches are identical whatever the number of workers. Unreadable examples are skipped and
// counted, or fail the run, as asked.
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "skd/data/dataset.h"

namespace skd::data {

enum class BadImagePolicy { SKIP, FAIL };
inline constexpr std::pair<const char*, BadImagePolicy> kBadImagePolicyNames[] = {{"skip", BadImagePolicy::SKIP},
                                                                                 {"fail", BadImagePolicy::FAIL}};

struct LoaderOptions {
  int64_t batch_size = 256;
  int workers = 2;            // 0: load in the calling thread
  int prefetch = 2;           // batches in flight per worker
  bool drop_last = false;
  bool augment = false;       // training augmentation (per-example Rng)
  uint64_t seed = 0;
  int64_t epoch = 0;
  BadImagePolicy on_bad_image = BadImagePolicy::SKIP;
  bool pin_memory = false;    // page-locked batches (only when CUDA is available)
};

struct LoadedBatch {
  torch::Tensor images, labels;
  std::vector<int64_t> indices;  // dataset indices of the rows (bad examples left out)
};

// Deterministic per-example generator seed.
uint64_t example_seed(uint64_t seed, int64_t epoch, int64_t index);

class Loader {
 public:
  // Loads `order` (dataset indices, e.g. from a sampler) in batches.
  Loader(const Dataset& dataset, std::vector<int64_t> order, const LoaderOptions& options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Next batch in order; false at the end. Rethrows a worker's error for that batch.
  bool next(LoadedBatch& out);
  int64_t num_batches() const { return num_batches_; }
  // Examples skipped so far, and their paths (first 100).
  int64_t bad_images() const;
  std::vector<std::string> bad_paths() const;

 private:
  LoadedBatch load(int64_t b);
  void worker(int w);

  const Dataset& dataset_;
  std::vector<int64_t> order_;
  LoaderOptions opt_;
  int64_t num_batches_ = 0;
  int64_t next_ = 0;  // next batch handed out
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, LoadedBatch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
  bool stop_ = false;
  int64_t bad_ = 0;
  std::vector<std::string> bad_paths_;
  std::vector<std::thread> threads_;
};

}  // namespace skd::data
