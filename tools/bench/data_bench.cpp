// skd-bench-data: images/s of decode and decode+transform (eval or DeiT train) over an image folder.
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "skd/data/augment.h"
#include "skd/data/eval_transform.h"
#include "skd/data/image.h"
#include "skd/data/mixup.h"

namespace fs = std::filesystem;
using namespace skd::data;

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string folder;
  std::string pipeline = "eval";
  int threads = 1;
  int repeat = 3;
  int warmup = 1;
  uint64_t seed = 0;
  bool profile = false;
};

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "error: " << error << "\n"
            << "usage: skd-bench-data --folder DIR [--pipeline eval|train] [--threads N] [--repeat R]\n"
            << "                      [--warmup W] [--seed S] [--profile]\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) usage(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  auto to_int = [&](const std::string& s, const char* name, int lo) {
    try {
      size_t end = 0;
      const int v = std::stoi(s, &end);
      if (end == s.size() && v >= lo) return v;
    } catch (const std::exception&) {
    }
    usage(std::string(name) + " must be an integer >= " + std::to_string(lo) + ", got '" + s + "'");
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--folder") o.folder = value(i);
    else if (a == "--pipeline") o.pipeline = value(i);
    else if (a == "--threads") o.threads = to_int(value(i), "--threads", 1);
    else if (a == "--repeat") o.repeat = to_int(value(i), "--repeat", 1);
    else if (a == "--warmup") o.warmup = to_int(value(i), "--warmup", 0);
    else if (a == "--seed") o.seed = static_cast<uint64_t>(to_int(value(i), "--seed", 0));
    else if (a == "--profile") o.profile = true;
    else if (a == "-h" || a == "--help") usage("help requested");
    else usage("unknown argument '" + a + "'");
  }
  if (o.folder.empty()) usage("--folder is required");
  if (o.pipeline != "eval" && o.pipeline != "train") usage("--pipeline must be eval or train");
  return o;
}

// Sorted so that the per-thread shares (and thus the RNG streams) do not depend on readdir order.
std::vector<std::string> list_images(const std::string& folder) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(folder)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Work done per image; returns a value derived from the output so nothing can be optimised away.
enum class Stage { DECODE, FULL };

double process(const std::string& path, Stage stage, bool train, const EvalTransform& et,
               const TrainTransform& tt, Rng& rng) {
  const Image img = decode_image_file(path);
  if (stage == Stage::DECODE) return img.pixels[img.pixels.size() / 2];
  const torch::Tensor x = train ? train_transform(img, tt, rng) : eval_transform(img, et);
  return x.data_ptr<float>()[x.numel() / 2];
}

struct Result {
  int64_t images = 0;
  double seconds = 0;
  std::vector<double> per_repeat;  // images/s of each timed pass
};

// One pass: thread t takes files t, t + T, t + 2T, ... (interleaved so that each share has a similar
// mix of classes and sizes). Each thread keeps its own Rng across passes.
double run_pass(const std::vector<std::string>& files, Stage stage, const Options& o, std::vector<Rng>& rngs,
                double& sink) {
  const bool train = o.pipeline == "train";
  const EvalTransform et;
  const TrainTransform tt;
  std::vector<double> sinks(o.threads, 0.0);
  std::vector<std::exception_ptr> errors(o.threads);
  const auto t0 = Clock::now();
  auto work = [&](int t) {
    try {
      for (size_t i = t; i < files.size(); i += o.threads)
        sinks[t] += process(files[i], stage, train, et, tt, rngs[t]);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  if (o.threads == 1) {
    work(0);  // no thread start-up in the single-core figure
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < o.threads; ++t) pool.emplace_back(work, t);
    for (auto& th : pool) th.join();
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (double s : sinks) sink += s;
  return secs;
}

Result measure(const std::vector<std::string>& files, Stage stage, const Options& o, double& sink) {
  std::vector<Rng> rngs;
  for (int t = 0; t < o.threads; ++t) rngs.emplace_back(o.seed * 1000003u + static_cast<uint64_t>(t));
  for (int w = 0; w < o.warmup; ++w) run_pass(files, stage, o, rngs, sink);
  Result r;
  for (int k = 0; k < o.repeat; ++k) {
    const double s = run_pass(files, stage, o, rngs, sink);
    r.images += static_cast<int64_t>(files.size());
    r.seconds += s;
    r.per_repeat.push_back(static_cast<double>(files.size()) / s);
  }
  return r;
}

// Single-threaded split of the same work into the library's public steps, to see where time goes.
// The steps are exactly those train_transform/eval_transform chain (inputs here are all RGB).
struct Profile {
  std::vector<std::pair<std::string, double>> steps;
  void add(const std::string& name, double s) {
    for (auto& [n, v] : steps)
      if (n == name) {
        v += s;
        return;
      }
    steps.emplace_back(name, s);
  }
};

Profile profile_steps(const std::vector<std::string>& files, const Options& o, double& sink) {
  const bool train = o.pipeline == "train";
  const EvalTransform et;
  const TrainTransform tt;
  Rng rng(o.seed * 1000003u);
  Profile p;
  auto timed = [&](const char* name, auto&& fn) {
    const auto t0 = Clock::now();
    fn();
    p.add(name, std::chrono::duration<double>(Clock::now() - t0).count());
  };
  for (int k = 0; k < o.warmup + o.repeat; ++k) {
    const bool record = k >= o.warmup;
    Profile keep = p;
    for (const auto& f : files) {
      Image img, crop;
      torch::Tensor x;
      timed("decode", [&] { img = decode_image_file(f); });
      if (train) {
        timed("random_resized_crop", [&] { crop = random_resized_crop(img, tt.crop, rng); });
        timed("hflip", [&] { random_flip_horizontal(crop, tt.hflip, rng); });
        timed("rand_augment", [&] { rand_augment(crop, tt.rand_augment, rng); });
        timed("to_tensor_normalize", [&] { x = to_normalized_tensor(crop, tt.mean, tt.std); });
        timed("random_erasing", [&] { random_erasing(x, tt.erasing, rng); });
      } else {
        timed("resize_center_crop", [&] { crop = eval_crop(img, et); });
        timed("to_tensor_normalize", [&] { x = to_normalized_tensor(crop, et.mean, et.std); });
      }
      sink += x.data_ptr<float>()[0];
    }
    if (!record) p = keep;
  }
  return p;
}

// Each RandAugment op alone at magnitude 9 (DeiT's m9 without the noise) on the 224x224 crops, to see
// which ops dominate the rand_augment step.
Profile profile_augment_ops(const std::vector<std::string>& files, const Options& o, double& sink) {
  const TrainTransform tt;
  Rng rng(o.seed * 1000003u + 1);
  std::vector<Image> crops;
  for (const auto& f : files) crops.push_back(random_resized_crop(decode_image_file(f), tt.crop, rng));
  Profile p;
  for (AugmentOp op : rand_augment_ops(tt.rand_augment.increasing)) {
    for (int k = 0; k < o.warmup + o.repeat; ++k) {
      const auto t0 = Clock::now();
      for (const auto& c : crops) sink += apply_augment_op(c, op, 9.0, tt.rand_augment, rng).pixels[0];
      if (k >= o.warmup) p.add(augment_op_name(op), std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  return p;
}

std::string json_result(const Result& r) {
  std::ostringstream os;
  os.precision(6);
  os << "{\"images\": " << r.images << ", \"seconds\": " << r.seconds
     << ", \"images_per_s\": " << (r.seconds > 0 ? r.images / r.seconds : 0.0)
     << ", \"per_repeat_images_per_s\": [";
  for (size_t i = 0; i < r.per_repeat.size(); ++i) os << (i ? ", " : "") << r.per_repeat[i];
  os << "]}";
  return os.str();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  try {
    torch::set_num_threads(o.threads);
    const std::vector<std::string> files = list_images(o.folder);
    if (files.empty()) usage("no .jpg/.jpeg/.png files under '" + o.folder + "'");
    double sink = 0;
    const Result dec = measure(files, Stage::DECODE, o, sink);
    const Result full = measure(files, Stage::FULL, o, sink);
    std::ostringstream os;
    os.precision(6);
    os << "{\"impl\": \"cpp\", \"pipeline\": \"" << o.pipeline << "\", \"threads\": " << o.threads
       << ", \"files\": " << files.size() << ", \"repeat\": " << o.repeat << ", \"warmup\": " << o.warmup
       << ",\n \"decode\": " << json_result(dec) << ",\n \"decode_transform\": " << json_result(full);
    if (o.profile) {
      const Profile p = profile_steps(files, o, sink);
      const double n = static_cast<double>(files.size()) * o.repeat;
      os << ",\n \"profile_ms_per_image\": {";
      for (size_t i = 0; i < p.steps.size(); ++i)
        os << (i ? ", " : "") << "\"" << p.steps[i].first << "\": " << 1e3 * p.steps[i].second / n;
      os << "}";
      if (o.pipeline == "train") {
        const Profile ops = profile_augment_ops(files, o, sink);
        os << ",\n \"augment_op_ms_per_image\": {";
        for (size_t i = 0; i < ops.steps.size(); ++i)
          os << (i ? ", " : "") << "\"" << ops.steps[i].first << "\": " << 1e3 * ops.steps[i].second / n;
        os << "}";
      }
    }
    os << ",\n \"checksum\": " << sink << "}\n";
    std::cout << os.str();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
