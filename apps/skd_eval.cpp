// skd-eval: accuracy on a dataset, outputs on given inputs, or a MACs/params summary.
#include <fstream>

#include "app_common.h"
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
  const auto x = models::tensor_from_record(it->second).to(torch::kFloat32);
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

int run_dataset(const EvalCli& o, models::LoadedModel& loaded) {
  auto& model = *loaded.model;
  const auto& c = model.config();
  auto dataset = data::open_dataset(o.data, o.split, c.img_size, c.in_chans);
  log_info("evaluating ", o.model, " on ", dataset->describe());
  eval::EvalOptions eo;
  eo.batch_size = o.batch_size;
  eo.limit = o.limit;
  eo.keep_logits = !o.save_outputs.empty();
  const bool tty = isatty(fileno(stderr));
  const auto r = eval::evaluate(model, *dataset, eo, [&](int64_t done, int64_t total) {
    if (tty) std::fprintf(stderr, "\r%lld/%lld images", static_cast<long long>(done), static_cast<long long>(total));
  });
  if (tty) std::fprintf(stderr, "\n");
  const auto cost = models::macs_count(c, model.widths());
  std::printf("top-1 %.2f%%  top-5 %.2f%%  loss %.4f  images %lld  %.1f images/s\n", r.top1, r.top5, r.loss,
              static_cast<long long>(r.images), r.images_per_s);
  std::printf("MACs paper %s  full %s  params %.3f M\n", models::macs_format(cost.macs_paper).c_str(),
              models::macs_format(cost.macs_full).c_str(), cost.params / 1e6);
  write_json(o.json, {{"top1", r.top1}, {"top5", r.top5}, {"loss", r.loss}, {"images", r.images},
                      {"images_per_s", r.images_per_s}, {"macs_paper", cost.macs_paper},
                      {"macs_full", cost.macs_full}, {"params", cost.params}, {"bad_images", 0},
                      {"model", o.model}, {"data", dataset->describe()}});
  if (!o.save_outputs.empty()) {
    io::SafetensorsContent out;
    out.tensors["logits"] = models::record_from_tensor(r.logits);
    out.metadata["data"] = dataset->describe();
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
    if (o.inputs.empty() == o.data.empty()) throw std::invalid_argument("give exactly one of --data and --inputs");
    if (!o.inputs.empty() && o.save_outputs.empty()) throw std::invalid_argument("--inputs needs --save-outputs");
    auto loaded = models::load_model(o.model, o.arch);
    return o.inputs.empty() ? run_dataset(o, loaded) : run_inputs(o, *loaded.model);
  });
}
