// skd-convert: bring a checkpoint (official DeiT/Swin .pth, timm .safetensors, legacy Swin layout)
// into a self-describing skd artifact and, with proxy data, apply WPAC (or a baseline criterion):
// a function-preserving reorder/rotation so the leading dims of every head and the leading MLP units
// are the most important ones. Writes the artifact plus a JSON report.
#include <filesystem>
#include <optional>

#include "app_common.h"
#include "skd/core/device.h"
#include "skd/core/fs.h"
#include "skd/data/dataset.h"
#include "skd/dist/join.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"
#include "skd/wpac/wpac.h"

using namespace skd;

namespace {

std::string default_report_path(const std::string& out) {
  const std::string ext = ".safetensors";
  if (out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0)
    return out.substr(0, out.size() - ext.size()) + ".report.json";
  return out + ".report.json";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Convert a checkpoint into an skd artifact; with --data apply WPAC (importance-weighted PCA per "
               "attention head + MLP importance sort, function preserving) or a baseline criterion.",
               "skd-convert"};
  std::string model, arch, out, report_path, data = "", split = "train", criterion, mlp_criterion = "auto";
  std::string centering = "batch", cost = "logit", device = "cpu", dist_backend = "auto", mask_table, log_level;
  int64_t proxy_samples = 1024, batch_size = 64;
  uint64_t seed = 0;
  double dist_timeout = dist::kDefaultTimeoutSeconds;
  int threads = app::kAutoThreads;
  app.add_option("--model", model, "input checkpoint (.pth, .safetensors or skd artifact)")->required();
  app.add_option("--arch", arch, "named architecture or JSON config (needed for foreign checkpoints)");
  app.add_option("--out", out, "output artifact (.safetensors)")->required();
  app.add_option("--mask-table", mask_table, "attach an official PIAD mask_table.json: the artifact becomes a "
                                           "super-network for skd-extract --macs/--op-code (format conversion only)");
  auto* g = app.add_option_group("WPAC");
  g->add_option("--data", data, "proxy data: 'fashion-mnist', an IDX folder or an image folder (without --data "
                                "only the file format is converted, or a data-free --criterion applied)");
  g->add_option("--split", split, "dataset split the proxy images come from");
  g->add_option("--proxy-samples", proxy_samples, "proxy images (distinct, drawn with --seed)")
      ->check(app::positive());
  g->add_option("--batch-size", batch_size, "proxy images per forward/backward (per process)")
      ->check(app::positive());
  g->add_option("--seed", seed, "seed of the proxy draw and of --criterion random");
  g->add_option("--criterion", criterion, "wpac | taylor | taylor2 | magnitude | random | none (default: wpac "
                                          "with --data, none without)");
  g->add_option("--mlp-criterion", mlp_criterion, "MLP unit order: auto | taylor | taylor2 | magnitude | random | "
                                                  "keep (auto follows --criterion; wpac -> taylor2)");
  g->add_option("--centering", centering, "feature centring before the weighted scatter: batch | global | none");
  g->add_option("--cost", cost, "importance cost: logit (sum of ground-truth logits) | ce (cross-entropy)");
  g->add_option("--report", report_path, "JSON report (default: <out>.report.json)");
  g->add_option("--device", device, "cpu | cuda | cuda:N");
  g->add_option("--dist-backend", dist_backend, "under torchrun/srun: auto | gloo | nccl");
  g->add_option("--dist-timeout", dist_timeout, "seconds a collective may wait for a peer")
      ->check(app::positive());
  app::add_common_options(app, threads, log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(threads, log_level);
    if (criterion.empty()) criterion = data.empty() ? "none" : "wpac";
    const bool format_only = criterion == "none";
    wpac::ConvertOptions opt;
    if (!format_only) {
      opt.criterion = wpac::parse_criterion(criterion);
      opt.mlp = wpac::parse_mlp_criterion(mlp_criterion);
      opt.centering = wpac::parse_centering(centering);
      opt.proxy.cost = importance::parse_cost(cost);
      opt.proxy.samples = proxy_samples;
      opt.proxy.batch_size = batch_size;
      opt.proxy.seed = seed;
      opt.seed = seed;
      if (wpac::needs_data(opt) && data.empty())
        throw std::invalid_argument(cat("--criterion ", criterion, " (--mlp-criterion ", mlp_criterion,
                                        ") needs proxy data: give --data"));
      if (!mask_table.empty())
        throw std::invalid_argument("--mask-table goes with format conversion only (--criterion none): WPAC "
                                    "reorders the dims the table's widths refer to");
    } else if (!data.empty()) {
      throw std::invalid_argument("--criterion none converts the file format only; it takes no --data");
    }

    dist::JoinOptions join_options;
    join_options.backend = dist::parse_backend(dist_backend);
    join_options.timeout = dist::timeout_from_seconds(dist_timeout);
    join_options.communicate = !format_only;  // each rank converts the file format alone
    const auto session = dist::join(join_options, parse_device(device));
    const auto& env = session.env;
    const auto dev = session.device;
    opt.proxy.device = dev;
    const auto& comm = session.comm;

    auto loaded = models::load_model(model, arch);
    nlohmann::json prov = loaded.manifest.value("provenance", nlohmann::json::object());
    prov["source"] = model;
    prov["source_sha256"] = models::file_sha256(model);
    prov["converted_by"] = "skd-convert";
    for (const auto& note : prov.value("key_mapping", nlohmann::json::array())) log_info(note.get<std::string>());

    // A super-network keeps (or, with --mask-table, gets) its mask table through a format conversion;
    // WPAC changes what the widths select, so a converted model has none.
    nlohmann::json extra = nlohmann::json::object();
    if (format_only && (!mask_table.empty() || loaded.manifest.contains("mask_table"))) {
      const auto table = models::load_mask_table(loaded.manifest, mask_table, loaded.model->config(),
                                                 loaded.model->widths(), model);
      extra = models::supernet_manifest_entries(loaded.model->config(), table);
      log_info("mask table: op codes 0..", table.last_code());
    } else if (!format_only && loaded.manifest.contains("mask_table")) {
      log_warn("the input's mask table is dropped: ", criterion, " reorders the dims it refers to");
    }
    std::optional<wpac::ConversionReport> report;
    if (!format_only) {
      const auto& c = loaded.model->config();
      std::unique_ptr<data::Dataset> dataset;
      if (wpac::needs_data(opt)) {
        data::DataSpec spec;
        spec.spec = data;
        spec.split = split;
        spec.img_size = c.img_size;
        spec.channels = c.in_chans;
        dataset = data::open_dataset(spec);
        if (dataset->num_classes() > c.num_classes)
          throw std::invalid_argument(cat("--data ", dataset->describe(), " has ", dataset->num_classes(),
                                          " classes but the model has ", c.num_classes, " outputs"));
        log_info(criterion, ": ", proxy_samples, " proxy images from ", dataset->describe());
      }
      loaded.model->to(dev);
      ProgressBar bar("batches");
      report = wpac::convert(*loaded.model, dataset.get(), opt, comm.get(),
                             [&](int64_t done, int64_t total) { bar.update(done, total); });
      bar.finish();
      loaded.model->to(torch::kCPU);
      if (report_path.empty()) report_path = default_report_path(out);
      report->source = model;
      report->artifact = out;
      prov["conversion"] = report->options_json();
      prov["conversion"]["report"] = std::filesystem::path(report_path).filename().string();
      log_info("function check on ", report->function_check.images, " images: max |logit difference| ",
               report->function_check.max_abs_logit_diff);
    }
    if (env.rank == 0) {
      models::save_artifact(out, *loaded.model, prov, extra);
      if (report) write_file_atomic(report_path, report->to_json().dump(1) + "\n");
      const auto cost_count = models::macs_count(loaded.model->config(), loaded.model->widths());
      std::printf("wrote %s: %s, %.3f M params, %s (paper convention)\n", out.c_str(),
                  loaded.model->config().name.c_str(), cost_count.params / 1e6,
                  models::macs_format(cost_count.macs_paper).c_str());
      if (report) {
        std::printf("%s: %lld proxy images, %.2f s; report %s\n", report->criterion.c_str(),
                    static_cast<long long>(report->proxy ? report->proxy->images : 0), report->seconds.total,
                    report_path.c_str());
        if (report->mean_captured_v && report->mean_captured_qk) {
          const auto &v = *report->mean_captured_v, &qk = *report->mean_captured_qk;
          std::printf("weighted variance in the leading 25/50/75%% dims (mean over heads): V %.3f/%.3f/%.3f  "
                      "QK %.3f/%.3f/%.3f\n",
                      v[0], v[1], v[2], qk[0], qk[1], qk[2]);
        }
      }
    }
    if (comm) comm->barrier();
    return 0;
  });
}
