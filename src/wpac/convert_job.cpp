#include "skd/wpac/convert_job.h"

#include <filesystem>
#include <memory>

#include "skd/core/device.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/core/logging.h"
#include "skd/core/progress.h"
#include "skd/data/dataset.h"
#include "skd/distributed/communicator.h"
#include "skd/models/checkpoint.h"
#include "skd/models/mask_table.h"

namespace skd::wpac {

std::string default_report_path(const std::string& out) {
  const std::string ext = ".safetensors";
  if (out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0)
    return out.substr(0, out.size() - ext.size()) + ".report.json";
  return out + ".report.json";
}

namespace {

// The criterion with its default applied ("" -> wpac with data, none without).
std::string criterion_of(const ConvertJob& job) {
  if (!job.criterion.empty()) return job.criterion;
  return job.data.empty() ? "none" : "wpac";
}

// The job's WPAC options in ConvertOptions and the combinations checked.
ConvertOptions convert_options(const ConvertJob& job, bool format_only) {
  ConvertOptions opt;
  if (!format_only) {
    opt.criterion = parse_criterion(criterion_of(job));
    opt.mlp = job.mlp_criterion;
    opt.centering = job.centering;
    opt.proxy.cost = job.cost;
    opt.proxy.samples = job.proxy_samples;
    opt.proxy.batch_size = job.batch_size;
    opt.proxy.seed = job.seed;
    opt.seed = job.seed;
    if (needs_data(opt) && job.data.empty())
      throw ParameterError([criterion = criterion_of(job),
                            mlp = mlp_criterion_name(job.mlp_criterion)](const KeyNamer& name) {
        return cat(name("criterion"), " ", criterion, " (", name("mlp_criterion"), " ", mlp,
                   ") needs proxy data: give ", name("data"));
      });
    if (!job.mask_table.empty())
      throw ParameterError([](const KeyNamer& name) {
        return cat(name("mask_table"), " goes with format conversion only (", name("criterion"),
                   " none): WPAC reorders the dims the table's widths refer to");
      });
  } else if (!job.data.empty()) {
    throw ParameterError([](const KeyNamer& name) {
      return cat(name("criterion"), " none converts the file format only; it takes no ", name("data"));
    });
  }
  return opt;
}

// The proxy data of `job` for a model with `config` (no data: an empty spec).
data::DataSpec proxy_spec(const ConvertJob& job, const models::ModelConfig& c) {
  data::DataSpec spec;
  spec.spec = job.data;
  spec.split = job.split;
  spec.img_size = c.img_size;
  spec.channels = c.in_chans;
  return spec;
}

// The preprocessing of the conversion: the input's entry, else the proxy data's defaults, else the
// architecture's (imagenet_preprocess: the official DeiT/Swin evaluation); the job's overrides on top.
// nullopt only for a model without an entry, data or known defaults (a channel count other than 1 or 3)
// and no override.
std::optional<data::ResolvedPreprocess> conversion_preprocess(const ConvertJob& job,
                                                              const models::LoadedModel& loaded) {
  const auto& c = loaded.model->config();
  data::ResolvedPreprocess fallback;
  if (!job.data.empty()) {
    fallback = data::data_preprocess(proxy_spec(job, c));
  } else if (const auto p = data::imagenet_preprocess(c.in_chans, c.img_size)) {
    fallback = {
        *p, "the architecture's defaults, the official DeiT/Swin evaluation (no preprocess entry, no data)"};
  } else if (!loaded.preprocess) {
    if (job.preprocess.any())
      throw ParameterError("model", cat(" '", job.model, "' takes ", c.in_chans,
                                        "-channel images: no default preprocessing to change"));
    log_warn("'", job.model, "' has no preprocess entry and ", c.in_chans,
             "-channel inputs have no default: the artifact records none");
    return std::nullopt;
  }
  auto pp = data::resolve_preprocess(loaded.preprocess, job.model, fallback, job.preprocess);
  data::log_preprocess("preprocess", pp);
  return pp;
}

// The proxy dataset of `job` for a model with `config`, prepared as `preprocess` says.
std::unique_ptr<data::Dataset> open_proxy_data(const ConvertJob& job, const models::ModelConfig& c,
                                               const std::optional<data::Preprocess>& preprocess) {
  auto spec = proxy_spec(job, c);
  spec.preprocess = preprocess;
  auto dataset = data::open_dataset(spec);
  if (dataset->num_classes() > c.num_classes)
    throw ParameterError("data", cat(" ", dataset->describe(), " has ", dataset->num_classes(),
                                     " classes but the model has ", c.num_classes, " outputs"));
  log_info(criterion_of(job), ": ", job.proxy_samples, " proxy images from ", dataset->describe());
  return dataset;
}

// WPAC (or a baseline criterion) applied to the loaded model on `device`, its report completed and
// recorded in the provenance `prov`.
ConversionReport convert_loaded(const ConvertJob& job, const ConvertOptions& opt, models::LoadedModel& loaded,
                                const std::optional<data::Preprocess>& preprocess, torch::Device device,
                                distributed::Communicator* comm, const std::string& report_path,
                                nlohmann::json& prov) {
  std::unique_ptr<data::Dataset> dataset;
  if (needs_data(opt)) dataset = open_proxy_data(job, loaded.model->config(), preprocess);
  loaded.model->to(device);
  ProgressBar bar("batches");
  ConversionReport report = convert(*loaded.model, dataset.get(), opt, comm, bar.callback());
  bar.finish();
  loaded.model->to(torch::kCPU);
  report.source = job.model;
  report.artifact = job.out;
  prov["conversion"] = report.options_json();
  prov["conversion"]["report"] = std::filesystem::path(report_path).filename().string();
  log_info("function check on ", report.function_check.images, " images: max |logit difference| ",
           report.function_check.max_abs_logit_diff);
  return report;
}

}  // namespace

ConvertResult convert_checkpoint(const ConvertJob& job) {
  // The ranges of the job's values, for flags and --config alike (docs/reliability.md, issue 25).
  auto need = [](bool ok, const char* key, auto got) {
    if (!ok) throw ParameterError(key, cat(" must be positive (got ", got, ")"));
  };
  need(job.proxy_samples > 0, "proxy_samples", job.proxy_samples);
  need(job.batch_size > 0, "batch_size", job.batch_size);
  need(job.dist_timeout > 0, "dist_timeout", job.dist_timeout);
  const std::string criterion = criterion_of(job);
  const bool format_only = criterion == "none";
  ConvertOptions opt = convert_options(job, format_only);
  // Every output checked before any work (docs/reliability.md, "Hostile input").
  const std::string report_path =
      format_only ? "" : (job.report.empty() ? default_report_path(job.out) : job.report);
  const std::vector<std::string> inputs = {job.model, job.arch, job.mask_table};
  check_output_file("out", job.out, inputs);
  check_output_file(job.report.empty() ? "out" : "report", report_path, inputs);
  check_distinct_outputs({{"out", job.out}, {"report", report_path}});

  distributed::JoinOptions join_options;
  join_options.backend = job.dist_backend;
  join_options.timeout = distributed::timeout_from_seconds(job.dist_timeout);
  join_options.communicate = !format_only;  // each rank converts the file format alone
  const auto session = distributed::join(join_options, parse_device(job.device));
  opt.proxy.device = session.device;

  auto loaded = models::load_model(job.model, job.arch);
  nlohmann::json prov = loaded.manifest.value("provenance", nlohmann::json::object());
  prov["source"] = job.model;
  prov["source_sha256"] = models::file_sha256(job.model);
  prov["converted_by"] = "skd-convert";
  for (const auto& note : prov.value("key_mapping", nlohmann::json::array()))
    log_info(note.is_string() ? note.get<std::string>() : excerpt(note.dump()));  // notes of a foreign file

  // A super-network keeps (or, with a mask table file, gets) its mask table through a format
  // conversion; WPAC changes what the widths select, so a converted model has none.
  nlohmann::json extra = nlohmann::json::object();
  if (format_only && (!job.mask_table.empty() || loaded.manifest.contains("mask_table"))) {
    const auto table = models::load_mask_table(loaded.manifest, job.mask_table, loaded.model->config(),
                                               loaded.model->widths(), job.model);
    extra = models::supernet_manifest_entries(loaded.model->config(), table);
    log_info("mask table: op codes 0..", table.last_code());
  } else if (!format_only && loaded.manifest.contains("mask_table")) {
    log_warn("the input's mask table is dropped: ", criterion, " reorders the dims it refers to");
  }
  const auto pp = conversion_preprocess(job, loaded);
  const auto preprocess = pp ? std::optional(pp->values) : std::nullopt;
  extra.update(models::preprocess_entry(preprocess));
  ConvertResult result;
  result.main_rank = session.env.rank == 0;
  result.artifact = job.out;
  if (!format_only) {
    result.report_path = report_path;
    result.report = convert_loaded(job, opt, loaded, preprocess, session.device, session.comm.get(),
                                   result.report_path, prov);
  }
  if (result.main_rank) {
    models::save_artifact(job.out, *loaded.model, prov, extra);
    if (result.report) write_file_atomic(result.report_path, result.report->to_json().dump(1) + "\n");
  }
  result.model_name = loaded.model->config().name;
  result.cost = models::macs_count(loaded.model->config(), loaded.model->widths());
  if (session.comm) session.comm->barrier();
  return result;
}

}  // namespace skd::wpac
