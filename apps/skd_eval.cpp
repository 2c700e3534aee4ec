// skd-eval: accuracy on a dataset, outputs on given inputs, or a MACs/params summary.

#include "app_common.h"
#include "skd/core/device.h"
#include "skd/core/fs.h"
#include "skd/data/dataset.h"
#include "skd/eval/evaluate.h"
#include "skd/eval/latency_table.h"
#include "skd/eval/report.h"
#include "skd/extract/latency_table.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/slice.h"
#include "skd/models/mask_table.h"

using namespace skd;

namespace {

struct EvalCli {
  std::string model, arch, data = "", split = "test", inputs, save_outputs, json;
  std::string class_index, device = "cpu", amp, on_bad_image = "skip", latency;
  std::string batch_sizes = "1", out;
  bool latency_table = false;
  double crop_pct = 0.875, attn_keep = 1.0, mlp_keep = 1.0;
  int workers = 2, latency_repeats = 20;
  bool summary = false;
  int64_t batch_size = 256, limit = 0;
  int threads = app::kAutoThreads;  // common options (not config keys)
  std::string log_level;

  template <typename V>
  void visit(V&& v) {
    v("model", model); v("arch", arch); v("attn_keep", attn_keep); v("mlp_keep", mlp_keep);
    v("data", data); v("split", split); v("limit", limit); v("batch_size", batch_size); v("inputs", inputs);
    v("class_index", class_index); v("crop_pct", crop_pct); v("workers", workers); v("on_bad_image", on_bad_image);
    v("device", device); v("amp", amp); v("latency", latency); v("latency_repeats", latency_repeats);
    v("latency_table", latency_table); v("batch_sizes", batch_sizes);
    v("summary", summary); v("json", json); v("save_outputs", save_outputs); v("out", out);
  }
};

void write_json(const std::string& path, const nlohmann::json& j) {
  if (!path.empty()) write_file_atomic(path, j.dump(2) + "\n");
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
  config.widths = models::keep_fraction(models::stored_widths(config), o.attn_keep, o.mlp_keep);
  const auto j = eval::cost_json(models::macs_count(config));
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

int run_latency(const EvalCli& o, models::ElasticModelImpl& model, const torch::Device& device, Amp amp) {
  nlohmann::json rows = nlohmann::json::array();
  std::printf("%8s %12s %12s %12s %14s\n", "batch", "median ms", "p10 ms", "p90 ms", "images/s");
  for (int64_t b : app::parse_positive_list(o.latency, "--latency")) {
    const auto r = eval::measure_latency(model, b, device, amp, 5, o.latency_repeats);
    std::printf("%8lld %12.3f %12.3f %12.3f %14.1f\n", static_cast<long long>(b), r.median_ms, r.p10_ms, r.p90_ms,
                r.images_per_s);
    rows.push_back(eval::latency_json(r));
  }
  auto j = eval::cost_json(models::macs_count(model.config(), model.widths()));
  j.update({{"model", o.model}, {"device", device.str()}, {"amp", o.amp.empty() ? "none" : o.amp},
            {"threads", o.threads}, {"latency", rows}});
  write_json(o.json, j);
  return 0;
}

// Every op code of a super-network, timed as the standalone sub-network skd-extract would write.
int run_latency_table(const EvalCli& o, models::LoadedModel& loaded, const torch::Device& device, Amp amp) {
  const auto table = models::load_mask_table(loaded.manifest, "", loaded.model->config(), loaded.model->widths(), o.model);
  std::vector<models::Widths> codes;
  for (int64_t k = 0; k <= table.last_code(); ++k) codes.push_back(table.widths(k));
  eval::LatencyTableOptions lo;
  lo.batch_sizes = app::parse_positive_list(o.batch_sizes, "--batch-sizes");
  lo.device = device;
  lo.amp = amp;
  lo.repeats = o.latency_repeats;
  const std::string out = o.out.empty() ? extract::latency_table_path(o.model) : o.out;
  log_info("timing ", codes.size(), " op codes x ", lo.batch_sizes.size(), " batch size(s) on ", device.str(), ", ",
           o.threads, " thread(s)");
  ProgressBar bar("runs");
  const auto t = eval::measure_latency_table(*loaded.model, codes, lo, o.model, models::file_sha256(o.model),
                                             [&](int64_t done, int64_t total) { bar.update(done, total); });
  bar.finish();
  std::printf("%6s %14s %12s", "code", "MACs paper", "params");
  for (int64_t b : t.batch_sizes) std::printf("  %28s", cat("batch ", b, ": median [p10, p90] ms").c_str());
  std::printf("\n");
  for (const auto& r : t.codes) {
    std::printf("%6lld %14s %11.3fM", static_cast<long long>(r.code), models::macs_format(r.cost.macs_paper).c_str(),
                r.cost.params / 1e6);
    for (const auto& l : r.latency) std::printf("  %10.3f [%7.3f, %7.3f]", l.median_ms, l.p10_ms, l.p90_ms);
    std::printf("\n");
  }
  extract::write_latency_table(out, t);
  std::printf("wrote %s (%zu codes, %s, %d threads, sweep %.1f s)\n", out.c_str(), t.codes.size(), t.device.c_str(),
              t.threads, t.sweep_seconds);
  write_json(o.json, t.to_json());
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
  ProgressBar bar("images");
  const auto r = eval::evaluate(model, *dataset, eo, [&](int64_t done, int64_t total) { bar.update(done, total); });
  bar.finish();
  const auto cost = models::macs_count(c, model.widths());
  std::printf("top-1 %.2f%%  top-5 %.2f%%  loss %.4f  images %lld  %.1f images/s\n", r.top1, r.top5, r.loss,
              static_cast<long long>(r.images), r.images_per_s);
  if (r.bad_images > 0) {
    std::printf("skipped %lld unreadable image(s), e.g. %s\n", static_cast<long long>(r.bad_images),
                r.bad_paths.empty() ? "?" : r.bad_paths.front().c_str());
  }
  std::printf("MACs paper %s  full %s  params %.3f M\n", models::macs_format(cost.macs_paper).c_str(),
              models::macs_format(cost.macs_full).c_str(), cost.params / 1e6);
  write_json(o.json, eval::accuracy_json(r, cost, o.model, dataset->describe()));
  if (!o.save_outputs.empty()) eval::save_dataset_outputs(r, *dataset, o.save_outputs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Evaluate a model: accuracy on a dataset, outputs on given inputs, or MACs/params.", "skd-eval"};
  EvalCli cli;
  app::OptionBinder<EvalCli> b(cli);
  auto* g_model = app.add_option_group("Model");
  b.add(g_model, "model", "artifact, .pth or .safetensors checkpoint");
  b.add(g_model, "arch", "named architecture (deit_small, swin_tiny, ...) or JSON config; needed "
                         "for foreign checkpoints");
  b.add(g_model, "attn_keep", "run with only the leading floor(a * F) q/k/v dims of every head "
                              "(MLP untouched unless --mlp-keep)");
  b.add(g_model, "mlp_keep", "run with only the leading floor(m * F) hidden units of every MLP");
  auto* g_data = app.add_option_group("Data");
  b.add(g_data, "data", "'fashion-mnist' or a folder with its IDX files");
  b.add(g_data, "split", "dataset split (test|train)");
  b.add(g_data, "limit", "evaluate only the first N images")->check(app::non_negative());
  b.add(g_data, "batch_size", "images per batch")->check(app::positive());
  b.add(g_data, "inputs", "safetensors with a tensor 'input' [B,3,H,W] (already normalised)");
  b.add(g_data, "class_index", "image folders: class-index file (.txt or .json)");
  b.add(g_data, "crop_pct", "eval resize: shorter side to int(size / crop-pct), then crop")
      ->check(CLI::Range(0.05, 1.0));
  b.add(g_data, "workers", "image decoding threads")->check(app::non_negative());
  b.add(g_data, "on_bad_image", "skip (and count) or fail on unreadable images");
  auto* g_run = app.add_option_group("Run");
  b.add(g_run, "device", "cpu | cuda | cuda:N");
  b.add(g_run, "amp", "bf16 | fp16 autocast (CUDA only)");
  b.add(g_run, "latency", "measure forward latency at these batch sizes (e.g. 1,8,64)");
  b.add(g_run, "latency_repeats", "timed runs per batch size")->check(app::positive());
  b.add(g_run, "latency_table", "super-networks: time every op code (the sub-network skd-extract "
                                "would write) and write the table skd-extract --latency reads");
  b.add(g_run, "batch_sizes", "--latency-table: batch sizes to time (e.g. 1,64)");
  auto* g_out = app.add_option_group("Output");
  b.add(g_out, "summary", "print params and MACs (both conventions); needs no weights");
  b.add(g_out, "json", "also write the results as JSON");
  b.add(g_out, "save_outputs", "write logits (and features for --inputs) as safetensors");
  b.add(g_out, "out", "--latency-table: the table file (default <model>.latency.json)");
  app::add_common_options(app, cli.threads, cli.log_level);
  b.add_config_options(&app, "evaluation");
  return app::run(app, argc, argv, [&] {
    EvalCli o = b.resolve();
    if (b.dump_config()) {
      std::printf("%s\n", options::to_json(o).dump(2).c_str());
      return 0;
    }
    o.threads = cli.threads;
    o.log_level = cli.log_level;
    app::apply_common_options(o.threads, o.log_level);
    if (o.summary) {
      if (o.model.empty() && o.arch.empty()) throw std::invalid_argument("--summary needs --arch or --model");
      return run_summary(o);
    }
    if (o.model.empty()) throw std::invalid_argument("--model is required (or --summary with --arch)");
    const auto device = parse_device(o.device);
    const auto amp = parse_amp(o.amp, device);
    const int modes = !o.inputs.empty() + !o.data.empty() + !o.latency.empty() + o.latency_table;
    if (modes != 1) throw std::invalid_argument("give exactly one of --data, --inputs, --latency and --latency-table");
    if (!o.out.empty() && !o.latency_table) throw std::invalid_argument("--out is for --latency-table");
    if (o.latency_table && (o.attn_keep != 1.0 || o.mlp_keep != 1.0))
      throw std::invalid_argument("--latency-table times the super-network's own op codes; drop --attn-keep/--mlp-keep");
    if (!o.inputs.empty() && o.save_outputs.empty()) throw std::invalid_argument("--inputs needs --save-outputs");
    auto loaded = models::load_model(o.model, o.arch);
    if (o.attn_keep != 1.0 || o.mlp_keep != 1.0) {
      const auto widths = models::keep_fraction(loaded.model->widths(), o.attn_keep, o.mlp_keep);
      loaded.model = models::slice_model(*loaded.model, widths);
      log_info("running at attention ", widths.front().attn, " dims per head, MLP ", widths.front().mlp,
               " units (first block; --attn-keep ", o.attn_keep, ", --mlp-keep ", o.mlp_keep, ")");
    }
    loaded.model->to(device);
    if (!o.latency.empty()) return run_latency(o, *loaded.model, device, amp);
    if (o.latency_table) return run_latency_table(o, loaded, device, amp);
    if (!o.inputs.empty()) {
      std::printf("%s\n", eval::save_model_outputs(*loaded.model, o.inputs, o.save_outputs, o.model).c_str());
      return 0;
    }
    return run_dataset(o, loaded, device, amp);
  });
}
