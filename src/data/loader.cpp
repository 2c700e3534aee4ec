#include "skd/data/loader.h"

#include "skd/core/error.h"

namespace skd::data {

uint64_t example_seed(uint64_t seed, int64_t epoch, int64_t index) {
  // splitmix64 over the three values: well-mixed, cheap, stable across platforms.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(index));
}

Loader::Loader(const Dataset& dataset, std::vector<int64_t> order, const LoaderOptions& o)
    : dataset_(dataset), order_(std::move(order)), opt_(o) {
  if (o.batch_size <= 0) throw ParameterError("batch_size", " must be positive");
  if (o.workers < 0) throw ParameterError("workers", " must be >= 0");
  if (o.prefetch <= 0) throw std::invalid_argument("prefetch must be positive");
  const auto n = static_cast<int64_t>(order_.size());
  num_batches_ = o.drop_last ? n / o.batch_size : (n + o.batch_size - 1) / o.batch_size;
  for (int w = 0; w < o.workers; ++w) threads_.emplace_back([this, w] { worker(w); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

LoadedBatch Loader::load(int64_t b) {
  const int64_t begin = b * opt_.batch_size;
  const int64_t end = std::min<int64_t>(begin + opt_.batch_size, static_cast<int64_t>(order_.size()));
  LoadedBatch out;
  auto pin = [&] {
    // A dataset may hand out batches already on the GPU (the step benchmark does): pin host memory only.
    if (opt_.pin_memory && out.images.device().is_cpu() && torch::cuda::is_available())
      out.images = out.images.pin_memory();
  };
  if (!opt_.augment) {
    // Whole-batch fast path (in-memory datasets vectorise it); per example only if one is bad.
    std::vector<int64_t> idx(order_.begin() + begin, order_.begin() + end);
    try {
      auto b = dataset_.get_batch(idx);
      out.images = std::move(b.images);
      out.labels = std::move(b.labels);
      out.indices = std::move(idx);
      pin();
      return out;
    } catch (const BadSampleError&) {
    }
  }
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (int64_t k = begin; k < end; ++k) {
    const int64_t idx = order_[static_cast<size_t>(k)];
    Sample s;
    try {
      if (opt_.augment) {
        Rng rng(example_seed(opt_.seed, opt_.epoch, idx));
        s = dataset_.get(idx, &rng);
      } else {
        s = dataset_.get(idx, nullptr);
      }
    } catch (const BadSampleError& e) {
      if (opt_.on_bad_image == BadImagePolicy::FAIL)
        throw ParameterFailure([what = std::string(e.what())](const KeyNamer& name) {
          return cat(what, " (use ", name("on_bad_image"), " skip to skip unreadable images)");
        });
      std::lock_guard<std::mutex> lock(mu_);
      ++bad_;
      if (bad_paths_.size() < 100) bad_paths_.push_back(dataset_.path(idx));
      continue;
    }
    images.push_back(std::move(s.image));
    labels.push_back(s.label);
    out.indices.push_back(idx);
  }
  if (!images.empty()) {
    out.images = torch::stack(images);
    out.labels = torch::tensor(labels, torch::kLong);
    pin();
  }
  return out;
}

void Loader::worker(int w) {
  for (int64_t b = w; b < num_batches_; b += opt_.workers) {
    {
      // Bounded prefetch: stay at most workers * prefetch batches ahead of the consumer.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || b < next_ + static_cast<int64_t>(opt_.workers) * opt_.prefetch; });
      if (stop_) return;
    }
    LoadedBatch batch;
    std::exception_ptr err;
    try {
      batch = load(b);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (err) {
        errors_[b] = err;
      } else {
        ready_[b] = std::move(batch);
      }
    }
    cv_.notify_all();
    if (err) return;
  }
}

bool Loader::next(LoadedBatch& out) {
  while (true) {
    if (next_ >= num_batches_) return false;
    if (opt_.workers == 0) {
      out = load(next_++);
    } else {
      std::unique_lock<std::mutex> lock(mu_);
      const int64_t b = next_;
      cv_.wait(lock, [&] { return ready_.count(b) || errors_.count(b); });
      if (auto e = errors_.find(b); e != errors_.end()) {
        next_ = num_batches_;  // the run is over: later calls end instead of waiting
        std::rethrow_exception(e->second);
      }
      out = std::move(ready_[b]);
      ready_.erase(b);
      ++next_;
      lock.unlock();
      cv_.notify_all();
    }
    if (out.images.defined()) return true;  // a batch made only of bad images is skipped
  }
}

int64_t Loader::bad_images() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bad_;
}

std::vector<std::string> Loader::bad_paths() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bad_paths_;
}

}  // namespace skd::data
