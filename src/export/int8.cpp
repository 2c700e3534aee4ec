#include "skd/export/int8.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/data/dataset.h"
#include "skd/deploy/onnx_model.h"
#include "skd/deploy/process.h"

namespace skd::exporter {

namespace {

// `n` distinct indices of 0..size-1 drawn with `seed`, in increasing order (all when n >= size).
std::vector<int64_t> draw(int64_t size, int64_t n, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(size));
  std::iota(all.begin(), all.end(), 0);
  if (n < size) {
    std::mt19937_64 gen(seed);
    std::shuffle(all.begin(), all.end(), gen);
    all.resize(static_cast<size_t>(n));
    std::sort(all.begin(), all.end());
  }
  return all;
}

// The logits of `images` ([N, C, S, S]) through the loaded model, in batches of `batch` (`fixed`: the
// graph takes only that size, so the last batch is padded and the padding's rows dropped).
torch::Tensor run_all(deploy::RuntimeWorker& worker, const torch::Tensor& images, int64_t batch, bool fixed) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += batch) {
    const auto x = images.narrow(0, i, std::min(batch, images.size(0) - i));
    out.push_back(deploy::run_padded(worker, x, fixed ? batch : 0));
  }
  return torch::cat(out, 0);
}

}  // namespace

std::string Int8Result::line() const {
  char buf[256];
  std::string s =
      cat("int8: ", quantization.value("scheme", std::string("?")), "; calibrated on ", images, " images");
  if (bad_images > 0) s += cat(" (", bad_images, " unreadable skipped)");
  if (agreement) {
    std::snprintf(buf, sizeof buf,
                  "; top-1 agreement with fp32 %.2f%% on the calibration images, max |logit diff| %.3g",
                  *agreement, max_abs_diff);
    s += buf;
  }
  return s;
}

namespace {

struct Calibration {
  torch::Tensor images;  // [N, C, S, S] float32, through the eval transform
  int64_t drawn = 0, bad = 0;
  std::string transform;
};

// The calibration images: `samples` distinct images drawn with the seed from the calibration split, read
// through the eval transform (the loader's, without augmentation). skd::ParameterError naming
// calibration for data that cannot be opened, is empty, or has no readable drawn image.
Calibration calibration_images(const Int8Options& o, const models::ModelConfig& config) {
  data::DataSpec spec;
  spec.spec = o.calibration;
  spec.split = o.split;
  spec.img_size = config.img_size;
  spec.channels = config.in_chans;
  std::unique_ptr<data::Dataset> dataset;
  data::Preprocess preprocess;
  try {
    preprocess = o.preprocess ? *o.preprocess : data::data_preprocess(spec).values;
    spec.preprocess = deploy::graph_feed(preprocess, o.input);
    dataset = data::open_dataset(spec);
  } catch (const std::exception& e) {
    throw ParameterError("calibration", cat(" '", o.calibration, "' (split ", o.split, "): ", e.what()));
  }
  if (dataset->size() == 0)
    throw ParameterError("calibration", cat(" '", o.calibration, "' (split ", o.split, ") has no images"));
  data::LoaderOptions lo;
  lo.batch_size = 64;
  lo.workers = o.workers;
  lo.on_bad_image = o.on_bad_image;
  const auto order = draw(dataset->size(), o.samples, o.seed);
  data::Loader loader(*dataset, order, lo);
  std::vector<torch::Tensor> parts;
  data::LoadedBatch batch;
  while (loader.next(batch))
    parts.push_back(deploy::graph_pixels(batch.images.to(torch::kFloat32), o.input).contiguous());
  if (parts.empty())
    throw ParameterError(
        "calibration", cat(" '", o.calibration, "': none of its ", loader.bad_images(),
                           " drawn images could be read (e.g. '",
                           loader.bad_paths().empty() ? std::string("?") : loader.bad_paths().front(), "')"));
  return {torch::cat(parts, 0).contiguous(), static_cast<int64_t>(order.size()), loader.bad_images(),
          cat("eval: ", data::describe(preprocess), o.preprocess ? "" : " (the data's defaults)",
              o.input == data::GraphInput::NORMALIZED
                  ? ""
                  : cat("; fed as ", enum_name(o.input, data::kGraphInputNames)))};
}

// What the manifest records under "quantization".
nlohmann::json quantization_record(const Int8Options& o, const Calibration& c, const std::string& version) {
  return {{"scheme",
           cat("static int8 (QDQ): int8 weights per ", o.per_channel ? "output channel" : "tensor",
               o.reduce_range ? " (7-bit range)" : "", ", uint8 activations, ", o.method, " calibration")},
          {"library", cat("onnxruntime ", version, " quantize_static")},
          {"weights", "int8, symmetric"},
          {"activations", "uint8, asymmetric"},
          {"per_channel", o.per_channel},
          {"reduce_range", o.reduce_range},
          {"method", o.method},
          {"ops",
           "MatMul/Gemm with a weight (the Linear layers); attention's activation x activation MatMuls "
           "stay float32"},
          {"calibration",
           {{"data", o.calibration},
            {"split", o.split},
            {"images", c.images.size(0)},
            {"drawn", c.drawn},
            {"seed", o.seed},
            {"transform", c.transform}}}};
}

}  // namespace

Int8Result quantize_int8(const std::string& fp32_bytes, const models::ModelConfig& config,
                         nlohmann::json manifest, const Int8Options& o,
                         const deploy::WorkerOptions& worker_options) {
  if (o.calibration.empty())
    throw ParameterError("calibration", " is required for int8 (the images to calibrate on)");
  if (o.samples <= 0)
    throw ParameterError("calibration_samples", cat(" must be positive (got ", o.samples, ")"));
  if (o.method != "minmax" && o.method != "percentile" && o.method != "entropy")
    throw ParameterError("calibration_method", cat(": unknown value '", o.method,
                                                   "' (expected one of minmax, percentile, entropy)"));
  const auto calib = calibration_images(o, config);
  deploy::RuntimeWorker worker(deploy::Runtime::ONNXRUNTIME, worker_options);
  Int8Result r;
  r.images = calib.images.size(0);
  r.bad_images = calib.bad;
  r.quantization = quantization_record(o, calib, worker.version());
  manifest["quantization"] = r.quantization;

  deploy::TempDir dir;
  const std::string fp32 = dir.file("fp32.onnx"), int8 = dir.file("int8.onnx"),
                    calib_path = dir.file("calibration.f32");
  const auto& x = calib.images;
  write_file_atomic(fp32, fp32_bytes.data(), fp32_bytes.size());
  write_file_atomic(calib_path, x.data_ptr(), static_cast<size_t>(x.numel()) * sizeof(float));
  worker.quantize({{"model", fp32},
                   {"out", int8},
                   {"calibration", calib_path},
                   {"shape", x.sizes().vec()},
                   {"per_channel", o.per_channel},
                   {"reduce_range", o.reduce_range},
                   {"method", o.method},
                   {"batch", o.graph_batch > 0 ? o.graph_batch : 32},
                   {"fixed_batch", o.graph_batch > 0},
                   {"metadata", {{"skd_manifest", manifest.dump()}}}});
  r.bytes = deploy::read_text(int8);
  if (r.bytes.empty()) throw std::runtime_error("onnxruntime's quantization wrote no model");
  if (o.verify) {
    const int64_t batch = o.graph_batch > 0 ? o.graph_batch : 64;
    worker.load(fp32);
    const auto y32 = run_all(worker, x, batch, o.graph_batch > 0);
    worker.load(int8);
    const auto y8 = run_all(worker, x, batch, o.graph_batch > 0);
    if (!torch::isfinite(y8).all().item<bool>())
      throw std::runtime_error("the int8 model produced non-finite logits on the calibration images");
    r.agreement = 100.0 * y32.argmax(1).eq(y8.argmax(1)).to(torch::kFloat64).mean().item<double>();
    r.max_abs_diff = (y32 - y8).abs().max().item<double>();
  }
  return r;
}

}  // namespace skd::exporter
