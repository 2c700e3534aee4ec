// Training-step benchmark of the library's trainer (train::train, the loop skd-train runs): images/s of
// plain steps (the full network) and of PIAD steps (a sub-network sampled per step from a mask table
// that shrinks every block uniformly in 12 codes down to a quarter of its widths), on random images
// held in memory, so that neither image decoding nor a file format is timed.
//
// Time per step = (t(W + N steps) - t(W steps)) / N, each t a fresh train() call: the difference
// leaves out model construction, the first steps' allocations and the loader's start.
//
// Usage: skd-bench-step --arch NAME|JSON [--batch 64] [--steps 20] [--warmup 5] [--threads 2]
//                       [--mode train|piad|both|none] [--mixup 0.8 --cutmix 1.0] [--drop-path 0.1]
//                       [--device cpu] [--amp bf16]
//                       [--wpac N] [--latency 1,64] [--distill none,frozen,full,progressive] [--sandwich]
// --distill times the PIAD step once per piad_distill mode (in-place distillation: its teacher
// forwards), --sandwich with the sandwich rule (three sub-networks per step).
// --wpac N also times wpac::convert with N proxy images (random, batch --batch) on --device;
// --latency times the eval forward (median of 20 after 5 warm-ups) at the given batch sizes.
// Prints one JSON line per measurement; "macs_full" is the forward MACs per image (both attention
// matmuls counted), so forward FLOPs = 2 x macs_full and a training step ~ 3 x that. With
// --mode both, a last line compares the PIAD step with the full one scaled by full / mean sampled
// MACs (the table's codes are sampled uniformly): "piad_vs_mac_proportional".
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <vector>

#include "skd/core/blas.h"
#include "skd/core/device.h"
#include "skd/core/enum_names.h"
#include "skd/core/memory.h"
#include "skd/models/config.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"
#include "skd/models/model.h"
#include "skd/piad/piad.h"
#include "skd/train/piad_training.h"
#include "skd/train/trainer.h"
#include "skd/wpac/wpac.h"

using namespace skd;

namespace {

// Random images held in memory. `device` cpu with whole_batch false: each batch is built image by
// image as a file-backed dataset would (clone, stack, pin: the loader's host path). On a GPU
// (--data device) the images live on the device and a batch is one index_select there, so the
// step is timed without the host loader in the way.
class RandomImages : public data::Dataset {
 public:
  RandomImages(int64_t n, int64_t channels, int64_t size, int64_t classes, torch::Device device = torch::kCPU,
               bool whole_batch = false)
      : classes_(classes), whole_batch_(whole_batch) {
    torch::manual_seed(0);
    images_ = torch::randn({n, channels, size, size}).to(device);
    labels_ = torch::randint(classes, {n}, torch::kLong).to(device);
    labels_cpu_ = labels_.cpu();
  }
  int64_t size() const override { return images_.size(0); }
  int64_t num_classes() const override { return classes_; }
  data::Sample get(int64_t i, data::Rng*) const override {
    return {images_[i].clone(), labels_cpu_[i].item<int64_t>()};
  }
  data::Batch get_batch(const std::vector<int64_t>& indices) const override {
    if (!whole_batch_) return data::Dataset::get_batch(indices);
    const auto idx = torch::tensor(indices, torch::kLong).to(images_.device());
    return {images_.index_select(0, idx), labels_.index_select(0, idx)};
  }
  std::string describe() const override { return "random images in memory"; }

 private:
  int64_t classes_;
  bool whole_batch_;
  torch::Tensor images_, labels_, labels_cpu_;
};

// Milliseconds the loader's side of one batch costs on its own: the dataset's batch and its move to
// the device, synchronised (median of 10).
double loader_ms_per_batch(const data::Dataset& ds, int64_t batch, torch::Device dev) {
  std::vector<double> ms;
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  for (int r = 0; r < 12; ++r) {
    for (int64_t k = 0; k < batch; ++k) idx[static_cast<size_t>(k)] = (r * batch + k) % ds.size();
    synchronize(dev);
    const auto t0 = std::chrono::steady_clock::now();
    auto b = ds.get_batch(idx);
    auto x = b.images.to(dev, /*non_blocking=*/false);
    synchronize(dev);
    if (r >= 2) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// The PIAD steps' mask table: codes 1..kTableCodes below the full network.
constexpr int64_t kTableCodes = 12;
models::MaskTable uniform_table(const models::ModelConfig& config, int64_t codes) {
  const auto full = models::stored_widths(config);
  models::MaskTable table(full);
  for (int64_t k = 1; k <= codes; ++k) {
    const double f = 1.0 - 0.75 * static_cast<double>(k) / static_cast<double>(codes);
    models::Widths w;
    for (const auto& b : full)
      w.push_back({std::max<int64_t>(1, static_cast<int64_t>(b.attn * f)), std::max<int64_t>(1, static_cast<int64_t>(b.mlp * f))});
    table.append(w);
  }
  return table;
}

double seconds_for(const models::ModelConfig& config, const data::Dataset& ds, const train::TrainConfig& cfg,
                   bool piad_mode, int64_t steps, piad::Distill distill = piad::Distill::NONE,
                   bool sandwich = false) {
  torch::manual_seed(1);
  auto model = models::create_model(config);
  train::TrainContext ctx;
  ctx.max_steps = steps;
  std::unique_ptr<piad::Piad> super;
  std::unique_ptr<train::PiadObserver> sampler;
  std::unique_ptr<train::PiadDistiller> distiller;
  if (piad_mode) {
    piad::PiadOptions po;
    po.progressive_epochs = 1;  // next update epoch 1 (below): the given table is used as it is
    po.distill = distill;
    po.sandwich = sandwich;
    super = std::make_unique<piad::Piad>(config, model->widths(), po, uniform_table(config, kTableCodes), 1);
    sampler = std::make_unique<train::PiadObserver>(*super, *model, ds, nullptr);  // sampling only
    ctx.observers.push_back(sampler.get());
    if (distill != piad::Distill::NONE) {
      distiller = std::make_unique<train::PiadDistiller>(*super, *model);
      ctx.distiller = distiller.get();
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  train::train(*model, ds, nullptr, cfg, ctx);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"training-step benchmark of train::train (plain and PIAD steps)"};
  std::string arch, mode = "both", device = "cpu", amp = "none";
  int64_t batch = 64, steps = 20, warmup = 5;
  int threads = 2;
  double mixup = 0.8, cutmix = 1.0, drop_path = 0.1;
  app.add_option("--arch", arch, "named config or JSON file")->required();
  app.add_option("--batch", batch);
  app.add_option("--steps", steps, "timed steps");
  app.add_option("--warmup", warmup, "steps before the timed ones");
  app.add_option("--threads", threads);
  app.add_option("--mode", mode, "train | piad | both");
  app.add_option("--mixup", mixup);
  app.add_option("--cutmix", cutmix);
  app.add_option("--drop-path", drop_path, "stochastic depth rate of the last block");
  app.add_option("--device", device);
  app.add_option("--amp", amp);
  int64_t wpac_samples = 0;
  std::string latency;
  app.add_option("--wpac", wpac_samples, "time WPAC with this many proxy images");
  app.add_option("--latency", latency, "batch sizes for eval-forward latency, e.g. 1,64");
  std::string data_mode = "host", op_codes = "0";
  int workers = 1;
  app.add_option("--data", data_mode, "host: batches built image by image on the host (the loader path) | "
                                      "device: images on --device, a batch is one index_select");
  app.add_option("--workers", workers, "loader worker threads");
  app.add_option("--op-codes", op_codes, "latency: op codes of a uniform 12-code table (0 = full network)");
  std::string attention = "fused", distill_modes = "none";
  bool sandwich = false;
  app.add_option("--distill", distill_modes,
                 "piad: piad_distill modes to time, e.g. none,frozen,full,progressive");
  app.add_flag("--sandwich", sandwich, "piad: the sandwich rule");
  app.add_option("--attention", attention, "latency: fused | explicit attention kernel");
  CLI11_PARSE(app, argc, argv);
  tune_host_allocator();  // as the apps do (skd/core/memory.h, skd/core/blas.h)
  torch::set_num_threads(threads);
  tune_blas_threads(threads);
  const auto config = models::resolve_arch(arch);
  const torch::Device dev = parse_device(device);
  const auto cost = models::macs_count(config);
  const int64_t n = batch * (warmup + steps + 1);
  if (data_mode != "host" && data_mode != "device") {
    std::fprintf(stderr, "--data: expected host or device, got '%s'\n", data_mode.c_str());
    return 2;
  }
  const bool on_device = data_mode == "device";
  RandomImages ds(n, config.in_chans, config.img_size, config.num_classes, on_device ? dev : torch::Device(torch::kCPU),
                  on_device);
  const double loader_ms = loader_ms_per_batch(ds, batch, dev);
  train::TrainConfig cfg;
  cfg.epochs = 1;
  cfg.batch_size = batch;
  cfg.workers = workers;
  cfg.augment = false;
  cfg.mixup = mixup;
  cfg.cutmix = cutmix;
  cfg.drop_path = drop_path;
  cfg.warmup_epochs = 0;
  cfg.log_every = 0;
  cfg.device = device;
  cfg.amp = parse_amp(amp, dev);
  std::vector<std::pair<std::string, piad::Distill>> runs;
  if (mode != "none") {
    if (mode == "both" || mode == "train") runs.emplace_back("train", piad::Distill::NONE);
    if (mode == "both" || mode == "piad") {
      std::stringstream dm(distill_modes);
      for (std::string d; std::getline(dm, d, ',');) {
        const auto parsed = find_enum(d, piad::kDistillNames);
        if (!parsed) {
          std::fprintf(stderr, "--distill: unknown mode '%s' (expected %s)\n", d.c_str(),
                       enum_names(piad::kDistillNames).c_str());
          return 2;
        }
        runs.emplace_back("piad", *parsed);
      }
    }
  }
  // The expected MACs of a PIAD step's sub-network: Piad samples its table's codes uniformly.
  const auto table = uniform_table(config, kTableCodes);
  double macs_sampled = 0;
  for (const auto& c : models::code_costs(config, table)) macs_sampled += static_cast<double>(c.macs_full);
  macs_sampled /= static_cast<double>(table.last_code() + 1);
  double full_ips = 0;
  for (const auto& [m, distill] : runs) {
    const bool piad_mode = m == "piad";
    // An untimed run first: the process's first steps pay one-time costs (allocator, thread pools,
    // kernel selection, CUDA context) that would land in only one of the two timed runs.
    (void)seconds_for(config, ds, cfg, piad_mode, 1, distill, sandwich);
    const double t_warm = seconds_for(config, ds, cfg, piad_mode, warmup, distill, sandwich);
    const double t_all = seconds_for(config, ds, cfg, piad_mode, warmup + steps, distill, sandwich);
    const double per_step = (t_all - t_warm) / static_cast<double>(steps);
    const double ips = static_cast<double>(batch) / per_step;
    std::printf(
        "{\"impl\": \"skd\", \"mode\": \"%s\", \"distill\": \"%s\", \"sandwich\": %s, \"arch\": \"%s\", "
        "\"torch\": \"%s\", \"threads\": %d, "
        "\"batch\": %lld, \"steps\": %lld, \"device\": \"%s\", \"amp\": \"%s\", \"macs_full\": %lld, "
        "\"data\": \"%s\", \"workers\": %d, \"loader_ms_per_batch\": %.3f, "
        "\"seconds_per_step\": %.5f, \"images_per_s\": %.2f}\n",
        m.c_str(), enum_name(distill, piad::kDistillNames), piad_mode && sandwich ? "true" : "false",
        arch.c_str(), TORCH_VERSION, threads, static_cast<long long>(batch), static_cast<long long>(steps),
        device.c_str(), amp.c_str(), static_cast<long long>(cost.macs_full), data_mode.c_str(), workers,
        loader_ms, per_step, ips);
    if (!piad_mode) full_ips = ips;
    // Issue 28's goal for sampled sub-networks: images/s >= 0.9 x the full network's images/s scaled
    // by full MACs / mean sampled MACs.
    if (piad_mode && distill == piad::Distill::NONE && !sandwich && full_ips > 0) {
      const double proportional = full_ips * static_cast<double>(cost.macs_full) / macs_sampled;
      std::printf(
          "{\"impl\": \"skd\", \"mode\": \"piad_vs_mac_proportional\", \"arch\": \"%s\", "
          "\"macs_full\": %lld, \"macs_mean_sampled\": %.0f, \"full_images_per_s\": %.2f, "
          "\"piad_images_per_s\": %.2f, \"mac_proportional_images_per_s\": %.2f, \"ratio\": %.3f}\n",
          arch.c_str(), static_cast<long long>(cost.macs_full), macs_sampled, full_ips, ips, proportional,
          ips / proportional);
    }
    std::fflush(stdout);
  }
  if (wpac_samples > 0) {
    RandomImages proxy(wpac_samples, config.in_chans, config.img_size, config.num_classes);
    torch::manual_seed(1);
    auto model = models::create_model(config);
    model->to(dev);
    wpac::ConvertOptions o;
    o.proxy.samples = wpac_samples;
    o.proxy.batch_size = batch;
    o.proxy.device = dev;
    synchronize(dev);
    const auto t0 = std::chrono::steady_clock::now();
    const auto report = wpac::convert(*model, &proxy, o);
    synchronize(dev);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"impl\": \"skd\", \"mode\": \"wpac\", \"arch\": \"%s\", \"device\": \"%s\", \"proxy_images\": %lld, "
                "\"batch\": %lld, \"seconds\": %.3f, \"report_seconds\": %s}\n",
                arch.c_str(), device.c_str(), static_cast<long long>(wpac_samples), static_cast<long long>(batch), secs,
                report.to_json().value("seconds", nlohmann::json::object()).dump().c_str());
    std::fflush(stdout);
  }
  if (!latency.empty()) {
    torch::manual_seed(1);
    auto model = models::create_model(config);
    model->to(dev);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto table = uniform_table(config, kTableCodes);
    std::stringstream ss(latency);
    std::string item;
    while (std::getline(ss, item, ',')) {
      const int64_t bs = std::stoll(item);
      const auto x = torch::randn({bs, config.in_chans, config.img_size, config.img_size}).to(dev);
      std::stringstream codes(op_codes);
      std::string code_item;
      while (std::getline(codes, code_item, ',')) {
        const int64_t code = std::stoll(code_item);
        std::vector<double> ms;
        for (int i = 0; i < 25; ++i) {
          synchronize(dev);
          const auto t0 = std::chrono::steady_clock::now();
          {
            AutocastGuard autocast(parse_amp(amp, dev));
            models::ForwardOptions fo;
            fo.widths = code == 0 ? nullptr : &table.widths(code);
            fo.attention = attention == "explicit" ? models::AttentionKernel::EXPLICIT : models::AttentionKernel::FUSED;
            (void)model->forward(x, fo);
          }
          synchronize(dev);
          if (i >= 5) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(ms.begin(), ms.end());
        std::printf("{\"impl\": \"skd\", \"mode\": \"latency\", \"attention\": \"%s\", \"arch\": \"%s\", \"device\": \"%s\", "
                    "\"amp\": \"%s\", \"op_code\": %lld, \"batch\": %lld, \"median_ms\": %.3f, \"p10_ms\": %.3f, "
                    "\"p90_ms\": %.3f, \"images_per_s\": %.1f}\n",
                    attention.c_str(), arch.c_str(), device.c_str(), amp.c_str(), static_cast<long long>(code),
                    static_cast<long long>(bs), ms[ms.size() / 2], ms[ms.size() / 10], ms[ms.size() * 9 / 10],
                    1000.0 * static_cast<double>(bs) / ms[ms.size() / 2]);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
