// skd-eval: accuracy on a dataset, outputs on given inputs, or a MACs/params summary.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "app_common.h"
#include "skd/core/device.h"
#include "skd/core/fs.h"
#include "skd/data/dataset.h"
#include "skd/eval/evaluate.h"
#include "skd/io/safetensors.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"

using namespace skd;

namespace {

struct EvalCli {
  std::string model, arch, data = "", split = "test", inputs, save_outputs, json;
  std::string class_index, device = "cpu", amp, on_bad_image = "skip", latency;
  double crop_pct = 0.875;
  int workers = 2, latency_repeats = 20;
  bool summary = false;
  int64_t batch_size = 256, limit = 0;
  int threads = app::default_threads();
  std::string log_level;
};

void write_json(const std::string& path, const nlohmann::json& j) {
  if (!path.empty()) write_file_atomic(path, j.dump(2) + "\n");
}

nlohmann::json cost_json(const models::ModelConfig& c) {
  const auto cost = models::macs_count(c);
  return {{"macs_paper", cost.macs_paper}, {"macs_full", cost.macs_full}, {"params", cost.params}};
}

int run_summary(const EvalCli& o) {
  models::ModelConfig config;
  if (!o.model.empty()) {
    const auto loaded = models::load_model(o.model, o.arch);
    config = loaded.model->config();
    config.widths = loaded.model->widths();
  } else {
    config = models::resolve_arch(o.arch);
  }
  const auto j = cost_json(config);
  std::printf("architecture   %s (%s)\n", config.name.c_str(), models::family_name(config.family));
  std::printf("params         %lld (%.2f M)\n", static_cast<long long>(j["params"].get<int64_t>()),
              j["params"].get<int64_t>() / 1e6);
  std::printf("MACs (paper)   %lld (%s)\n", static_cast<long long>(j["macs_paper"].get<int64_t>()),
              models::macs_format(j["macs_paper"]).c_str());
  std::printf("MACs (full)    %lld (%s)\n", static_cast<long long>(j["macs_full"].get<int64_t>()),
              models::macs_format(j["macs_full"]).c_str());
  auto out = j;
  out["model"] = o.model.empty() ? o.arch : o.model;
  out["config"] = models::config_to_json(config);
  write_json(o.json, out);
  return 0;
}

int run_inputs(const EvalCli& o, models::ElasticModelImpl& model) {
  const auto content = io::read_safetensors(o.inputs);
  auto it = content.tensors.find("input");
  if (it == content.tensors.end()) throw std::invalid_argument(cat("--inputs '", o.inputs, "' has no tensor 'input'"));
  const auto x = models::tensor_from_record(it->second).to(model.parameters().front().device(), torch::kFloat32);
  torch::NoGradGuard g;
  model.eval();
  const auto feats = model.forward_features(x);
  const auto pre = model.forward_head(feats, true);
  const auto logits = model.forward_head(feats, false);
  io::SafetensorsContent out;
  out.tensors["logits"] = models::record_from_tensor(logits);
  out.tensors["features"] = models::record_from_tensor(pre);
  out.tensors["forward_features"] = models::record_from_tensor(feats);
  out.metadata["model"] = o.model;
  io::write_safetensors(o.save_outputs, out);
  std::printf("wrote logits %s, features %s to %s\n", cat(logits.sizes()).c_str(), cat(pre.sizes()).c_str(),
              o.save_outputs.c_str());
  return 0;
}

std::vector<int64_t> parse_sizes(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stoll(item, &used));
      if (used != item.size() || out.back() <= 0) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw std::invalid_argument(cat("--latency '", text, "': expected positive batch sizes like 1,8,64"));
    }
  }
  return out;
}

int run_latency(const EvalCli& o, models::ElasticModelImpl& model, const torch::Device& device, Amp amp) {
  nlohmann::json rows = nlohmann::json::array();
  std::printf("%8s %12s %12s %12s %14s\n", "batch", "median ms", "p10 ms", "p90 ms", "images/s");
  for (int64_t b : parse_sizes(o.latency)) {
    const auto r = eval::measure_latency(model, b, device, amp, 5, o.latency_repeats);
    std::printf("%8lld %12.3f %12.3f %12.3f %14.1f\n", static_cast<long long>(b), r.median_ms, r.p10_ms, r.p90_ms,
                r.images_per_s);
    rows.push_back({{"batch_size", b}, {"median_ms", r.median_ms}, {"p10_ms", r.p10_ms}, {"p90_ms", r.p90_ms},
                    {"images_per_s", r.images_per_s}});
  }
  const auto cost = models::macs_count(model.config(), model.widths());
  write_json(o.json, {{"model", o.model}, {"device", device.str()}, {"amp", o.amp.empty() ? "none" : o.amp},
                      {"threads", o.threads}, {"latency", rows}, {"macs_paper", cost.macs_paper},
                      {"macs_full", cost.macs_full}, {"params", cost.params}});
  return 0;
}

int run_dataset(const EvalCli& o, models::LoadedModel& loaded, const torch::Device& device, Amp amp) {
  auto& model = *loaded.model;
  const auto& c = model.config();
  data::DataSpec spec;
  spec.spec = o.data;
  spec.split = o.split;
  spec.img_size = c.img_size;
  spec.channels = c.in_chans;
  spec.crop_pct = o.crop_pct;
  spec.class_index = o.class_index;
  auto dataset = data::open_dataset(spec);
  log_info("evaluating ", o.model, " on ", dataset->describe());
  eval::EvalOptions eo;
  eo.batch_size = o.batch_size;
  eo.limit = o.limit;
  eo.workers = o.workers;
  eo.on_bad_image = data::parse_bad_image_policy(o.on_bad_image);
  eo.device = device;
  eo.amp = amp;
  eo.keep_logits = !o.save_outputs.empty();
  const bool tty = isatty(fileno(stderr));
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = eval::evaluate(model, *dataset, eo, [&](int64_t done, int64_t total) {
    if (!tty) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = done / std::max(el, 1e-9);
    const int width = 30, filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
    std::fprintf(stderr, "\r[%s%s] %lld/%lld  %.0f img/s  ETA %.0f s ", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total), rate, (total - done) / std::max(rate, 1e-9));
  });
  if (tty) std::fprintf(stderr, "\n");
  const auto cost = models::macs_count(c, model.widths());
  std::printf("top-1 %.2f%%  top-5 %.2f%%  loss %.4f  images %lld  %.1f images/s\n", r.top1, r.top5, r.loss,
              static_cast<long long>(r.images), r.images_per_s);
  if (r.bad_images > 0) {
    std::printf("skipped %lld unreadable image(s), e.g. %s\n", static_cast<long long>(r.bad_images),
                r.bad_paths.empty() ? "?" : r.bad_paths.front().c_str());
  }
  std::printf("MACs paper %s  full %s  params %.3f M\n", models::macs_format(cost.macs_paper).c_str(),
              models::macs_format(cost.macs_full).c_str(), cost.params / 1e6);
  write_json(o.json, {{"top1", r.top1}, {"top5", r.top5}, {"loss", r.loss}, {"images", r.images},
                      {"images_per_s", r.images_per_s}, {"macs_paper", cost.macs_paper},
                      {"macs_full", cost.macs_full}, {"params", cost.params}, {"bad_images", r.bad_images},
                      {"model", o.model}, {"data", dataset->describe()}});
  if (!o.save_outputs.empty()) {
    io::SafetensorsContent out;
    out.tensors["logits"] = models::record_from_tensor(r.logits);
    out.tensors["indices"] = models::record_from_tensor(torch::tensor(r.indices, torch::kLong));
    nlohmann::json paths = nlohmann::json::array();
    for (int64_t i : r.indices) paths.push_back(dataset->path(i));
    out.metadata["data"] = dataset->describe();
    out.metadata["paths"] = paths.dump();
    io::write_safetensors(o.save_outputs, out);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Evaluate a model: accuracy on a dataset, outputs on given inputs, or MACs/params.", "skd-eval"};
  EvalCli o;
  auto* g_model = app.add_option_group("Model");
  g_model->add_option("--model", o.model, "artifact, .pth or .safetensors checkpoint");
  g_model->add_option("--arch", o.arch, "named architecture (deit_small, swin_tiny, ...) or JSON config; needed "
                                        "for foreign checkpoints");
  auto* g_data = app.add_option_group("Data");
  g_data->add_option("--data", o.data, "'fashion-mnist' or a folder with its IDX files");
  g_data->add_option("--split", o.split, "dataset split (test|train)");
  g_data->add_option("--limit", o.limit, "evaluate only the first N images")->check(CLI::NonNegativeNumber);
  g_data->add_option("--batch-size", o.batch_size, "images per batch")->check(CLI::PositiveNumber);
  g_data->add_option("--inputs", o.inputs, "safetensors with a tensor 'input' [B,3,H,W] (already normalised)");
  g_data->add_option("--class-index", o.class_index, "image folders: class-index file (.txt or .json)");
  g_data->add_option("--crop-pct", o.crop_pct, "eval resize: shorter side to int(size / crop-pct), then crop")
      ->check(CLI::Range(0.05, 1.0));
  g_data->add_option("--workers", o.workers, "image decoding threads")->check(CLI::NonNegativeNumber);
  g_data->add_option("--on-bad-image", o.on_bad_image, "skip (and count) or fail on unreadable images");
  auto* g_run = app.add_option_group("Run");
  g_run->add_option("--device", o.device, "cpu | cuda | cuda:N");
  g_run->add_option("--amp", o.amp, "bf16 | fp16 autocast (CUDA only)");
  g_run->add_option("--latency", o.latency, "measure forward latency at these batch sizes (e.g. 1,8,64)");
  g_run->add_option("--latency-repeats", o.latency_repeats, "timed runs per batch size")
      ->check(CLI::PositiveNumber);
  auto* g_out = app.add_option_group("Output");
  g_out->add_flag("--summary", o.summary, "print params and MACs (both conventions); needs no weights");
  g_out->add_option("--json", o.json, "also write the results as JSON");
  g_out->add_option("--save-outputs", o.save_outputs, "write logits (and features for --inputs) as safetensors");
  app::add_common_options(app, o.threads, o.log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(o.threads, o.log_level);
    if (o.summary) {
      if (o.model.empty() && o.arch.empty()) throw std::invalid_argument("--summary needs --arch or --model");
      return run_summary(o);
    }
    if (o.model.empty()) throw std::invalid_argument("--model is required (or --summary with --arch)");
    const auto device = parse_device(o.device);
    const auto amp = parse_amp(o.amp, device);
    const int modes = !o.inputs.empty() + !o.data.empty() + !o.latency.empty();
    if (modes != 1) throw std::invalid_argument("give exactly one of --data, --inputs and --latency");
    if (!o.inputs.empty() && o.save_outputs.empty()) throw std::invalid_argument("--inputs needs --save-outputs");
    auto loaded = models::load_model(o.model, o.arch);
    loaded.model->to(device);
    if (!o.latency.empty()) return run_latency(o, *loaded.model, device, amp);
    return o.inputs.empty() ? run_dataset(o, loaded, device, amp) : run_inputs(o, *loaded.model);
  });
}
