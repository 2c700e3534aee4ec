#include "skd/eval/eval_job.h"

#include <torch/torch.h>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/core/logging.h"
#include "skd/core/options.h"
#include "skd/core/progress.h"
#include "skd/data/dataset.h"
#include "skd/deploy/onnx_model.h"
#include "skd/deploy/process.h"
#include "skd/deploy/runtime.h"
#include "skd/eval/evaluate.h"
#include "skd/eval/latency_table.h"
#include "skd/eval/report.h"
#include "skd/export/graph.h"
#include "skd/export/runtime_latency.h"
#include "skd/extract/latency_table.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"
#include "skd/models/slice.h"

namespace skd::eval {

namespace {

void write_json(const std::string& path, const nlohmann::json& j) {
  if (!path.empty()) write_file_atomic(path, j.dump(2) + "\n");
}

bool is_onnx(const std::string& path) {
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

// The runtime the job runs in: --runtime, else onnxruntime for an .onnx model and libtorch otherwise.
deploy::Runtime runtime_of(const EvalJob& o) {
  if (o.runtime.empty()) return is_onnx(o.model) ? deploy::Runtime::ONNXRUNTIME : deploy::Runtime::LIBTORCH;
  return parse_enum(o.runtime, deploy::kRuntimeNames, "runtime");
}

void print_latency_row(std::FILE* out, const LatencyResult& r) {
  std::fprintf(out, "%8lld %12.3f %12.3f %12.3f %14.1f\n", static_cast<long long>(r.batch_size), r.median_ms,
               r.p10_ms, r.p90_ms, r.images_per_s);
}

void print_accuracy(std::FILE* out, const EvalResult& r) {
  std::fprintf(out, "top-1 %.2f%%  top-5 %.2f%%  loss %.4f  images %lld  %.1f images/s\n", r.top1, r.top5,
               r.loss, static_cast<long long>(r.images), r.images_per_s);
  if (r.bad_images > 0) {
    std::fprintf(out, "skipped %lld unreadable image(s), e.g. %s\n", static_cast<long long>(r.bad_images),
                 r.bad_paths.empty() ? "?" : r.bad_paths.front().c_str());
  }
}

void print_cost(std::FILE* out, const models::ModelCost& cost) {
  std::fprintf(out, "MACs paper %s  full %s  params %.3f M\n", models::macs_format(cost.macs_paper).c_str(),
               models::macs_format(cost.macs_full).c_str(), cost.params / 1e6);
}

data::DataSpec data_spec(const EvalJob& o) {
  data::DataSpec spec;
  spec.spec = o.data;
  spec.split = o.split;
  spec.class_index = o.class_index;
  return spec;
}

EvalOptions eval_options(const EvalJob& o, const torch::Device& device) {
  EvalOptions eo;
  eo.batch_size = o.batch_size;
  eo.limit = o.limit;
  eo.workers = o.workers;
  eo.on_bad_image = o.on_bad_image;
  eo.device = device;
  eo.amp = o.amp;
  eo.keep_logits = !o.save_outputs.empty();
  eo.keep_inputs = o.save_inputs;
  return eo;
}

void print_latency_table(const LatencyTable& t, const std::string& path, std::FILE* out) {
  std::fprintf(out, "%6s %14s %12s", "code", "MACs paper", "params");
  for (int64_t b : t.batch_sizes)
    std::fprintf(out, "  %28s", cat("batch ", b, ": median [p10, p90] ms").c_str());
  std::fprintf(out, "\n");
  for (const auto& r : t.codes) {
    std::fprintf(out, "%6lld %14s %11.3fM", static_cast<long long>(r.code),
                 models::macs_format(r.cost.macs_paper).c_str(), r.cost.params / 1e6);
    for (const auto& l : r.latency)
      std::fprintf(out, "  %10.3f [%7.3f, %7.3f]", l.median_ms, l.p10_ms, l.p90_ms);
    std::fprintf(out, "\n");
  }
  std::fprintf(out, "wrote %s (%zu codes, %s %s, %s, %d threads, sweep %.1f s)\n", path.c_str(),
               t.codes.size(), t.runtime.c_str(), t.runtime_version.c_str(), t.device.c_str(), t.threads,
               t.sweep_seconds);
}

void run_summary(const EvalJob& o, std::FILE* out) {
  models::ModelConfig config;
  std::optional<data::Preprocess> preprocess;
  if (!o.model.empty()) {
    const auto loaded = models::load_model(o.model, o.arch);
    config = loaded.model->config();
    config.widths = loaded.model->widths();
    preprocess = loaded.preprocess;
  } else {
    config = models::resolve_arch(o.arch);
  }
  config.widths = models::keep_fraction(models::stored_widths(config), o.attn_keep, o.mlp_keep);
  const auto j = cost_json(models::macs_count(config));
  std::fprintf(out, "architecture   %s (%s)\n", config.name.c_str(), models::family_name(config.family));
  std::fprintf(out, "params         %lld (%.2f M)\n", static_cast<long long>(j["params"].get<int64_t>()),
               j["params"].get<int64_t>() / 1e6);
  std::fprintf(out, "MACs (paper)   %lld (%s)\n", static_cast<long long>(j["macs_paper"].get<int64_t>()),
               models::macs_format(j["macs_paper"]).c_str());
  std::fprintf(out, "MACs (full)    %lld (%s)\n", static_cast<long long>(j["macs_full"].get<int64_t>()),
               models::macs_format(j["macs_full"]).c_str());
  if (!o.model.empty())
    std::fprintf(
        out, "preprocess     %s\n",
        preprocess ? data::describe(*preprocess).c_str() : "none recorded (the data's defaults apply)");
  auto result = j;
  result["model"] = o.model.empty() ? o.arch : o.model;
  result["config"] = models::config_to_json(config);
  if (preprocess) result["preprocess"] = data::preprocess_to_json(*preprocess);
  write_json(o.json, result);
}

void run_latency(const EvalJob& o, models::ElasticModelImpl& model, const torch::Device& device, std::FILE* out) {
  nlohmann::json rows = nlohmann::json::array();
  std::fprintf(out, "%8s %12s %12s %12s %14s\n", "batch", "median ms", "p10 ms", "p90 ms", "images/s");
  for (int64_t b : o.latency->values) {
    const auto r = measure_latency(model, b, device, o.amp, 5, o.latency_repeats);
    print_latency_row(out, r);
    rows.push_back(latency_json(r));
  }
  auto j = cost_json(models::macs_count(model.config(), model.widths()));
  j.update({{"model", o.model},
            {"device", device.str()},
            {"amp", enum_name(o.amp, kAmpNames)},
            {"runtime", "libtorch"},
            {"runtime_version", deploy::libtorch_version()},
            {"threads", torch::get_num_threads()},
            {"latency", rows}});
  write_json(o.json, j);
}

// Every op code of a super-network, timed as the standalone sub-network extract::extract would write: in
// LibTorch, or (worker given) exported as skd-export writes it and run in that runtime.
void run_latency_table(const EvalJob& o, models::LoadedModel& loaded, const torch::Device& device,
                       std::FILE* out, deploy::RuntimeWorker* worker = nullptr) {
  const auto table =
      models::load_mask_table(loaded.manifest, "", loaded.model->config(), loaded.model->widths(), o.model);
  std::vector<models::Widths> codes;
  for (int64_t k = 0; k <= table.last_code(); ++k) codes.push_back(table.widths(k));
  LatencyTableOptions lo;
  lo.batch_sizes = o.batch_sizes.values;
  lo.device = device;
  lo.amp = o.amp;
  lo.repeats = o.latency_repeats;
  const std::string path =
      o.out.empty() ? extract::latency_table_path(o.model, enum_name(runtime_of(o), deploy::kRuntimeNames))
                    : o.out;
  const std::string where =
      worker ? cat(enum_name(worker->runtime(), deploy::kRuntimeNames), " ", worker->version())
             : device.str();
  log_info("timing ", codes.size(), " op codes x ", lo.batch_sizes.size(), " batch size(s) in ", where, ", ",
           worker ? worker->threads() : torch::get_num_threads(), " thread(s)");
  ProgressBar bar("runs");
  const auto sha = models::file_sha256(o.model);
  const auto t = worker ? exporter::measure_runtime_latency_table(*loaded.model, codes, lo, *worker, o.model,
                                                                  sha, bar.callback())
                        : measure_latency_table(*loaded.model, codes, lo, o.model, sha, bar.callback());
  bar.finish();
  extract::write_latency_table(path, t);
  print_latency_table(t, path, out);
  write_json(o.json, t.to_json());
}

void run_dataset(const EvalJob& o, models::LoadedModel& loaded, const torch::Device& device, std::FILE* out) {
  auto& model = *loaded.model;
  const auto& c = model.config();
  auto spec = data_spec(o);
  spec.img_size = c.img_size;
  spec.channels = c.in_chans;
  const auto pp = data::apply_preprocess(spec, loaded.preprocess, o.model, o.preprocess);
  auto dataset = data::open_dataset(spec);
  log_info("evaluating ", o.model, " on ", dataset->describe());
  ProgressBar bar("images");
  const auto r = evaluate(model, *dataset, eval_options(o, device), bar.callback());
  bar.finish();
  const auto cost = models::macs_count(c, model.widths());
  print_accuracy(out, r);
  print_cost(out, cost);
  auto j = accuracy_json(r, cost, o.model, dataset->describe());
  j["preprocess"] = data::preprocess_to_json(pp.values);
  j["preprocess_source"] = pp.source;
  write_json(o.json, j);
  if (!o.save_outputs.empty()) save_dataset_outputs(r, *dataset, o.save_outputs);
}

// Accuracy or latency of a model in onnxruntime or OpenVINO: an .onnx file as it is, or an artifact
// exported as skd-export writes it (at its stored widths, or the keep fractions); latency tables of a
// super-network's codes.
void run_in_runtime(const EvalJob& o, deploy::Runtime runtime, std::FILE* out) {
  deploy::WorkerOptions wo;
  wo.python = o.python;
  wo.threads = torch::get_num_threads();
  deploy::RuntimeWorker worker(runtime, wo);
  const std::string rt = cat(enum_name(runtime, deploy::kRuntimeNames), " ", worker.version());
  if (o.latency_table) {
    auto loaded = models::load_model(o.model, o.arch);
    return run_latency_table(o, loaded, torch::kCPU, out, &worker);
  }
  deploy::TempDir dir;
  std::string path = o.model;
  if (!is_onnx(o.model)) {  // the artifact's graph, as skd-export writes it
    auto loaded = models::load_model(o.model, o.arch);
    if (o.attn_keep != 1.0 || o.mlp_keep != 1.0)
      loaded.model = models::slice_model(
          *loaded.model, models::keep_fraction(loaded.model->widths(), o.attn_keep, o.mlp_keep));
    loaded.model->eval();
    const auto bytes = exporter::onnx_model_bytes(
        *loaded.model, models::make_manifest(*loaded.model, nlohmann::json{{"exported_for", "skd-eval"}},
                                             models::preprocess_entry(loaded.preprocess)));
    path = dir.file("model.onnx");
    write_file_atomic(path, bytes.data(), bytes.size());
  }
  const auto graph = deploy::load_onnx(worker, path);
  const auto cost = graph.config ? std::optional(models::macs_count(*graph.config)) : std::nullopt;
  log_info("running ", o.model, " in ", rt, " (", worker.python(), "), ", worker.threads(),
           " thread(s); input ", deploy::shape_text(graph.info.input_shape));
  if (o.latency) {
    nlohmann::json rows = nlohmann::json::array();
    std::fprintf(out, "%8s %12s %12s %12s %14s\n", "batch", "median ms", "p10 ms", "p90 ms", "images/s");
    for (int64_t b : o.latency->values) {
      if (!graph.dynamic_batch && b != graph.batch)
        throw ParameterError("latency",
                             cat(": '", o.model, "' has a fixed batch size of ", graph.batch, ", not ", b));
      const auto r = worker.time(b, 5, o.latency_repeats);
      print_latency_row(out, r);
      rows.push_back(latency_json(r));
    }
    nlohmann::json j = cost ? cost_json(*cost) : nlohmann::json::object();
    j.update({{"model", o.model},
              {"device", "cpu"},
              {"amp", "none"},
              {"runtime", enum_name(runtime, deploy::kRuntimeNames)},
              {"runtime_version", worker.version()},
              {"threads", worker.threads()},
              {"latency", rows}});
    return write_json(o.json, j);
  }
  data::Preprocess preprocess;  // the values of the entry (and flags), not the [0, 1] a graph may be fed
  const auto spec = deploy::data_spec_for(graph, data_spec(o), o.preprocess, &preprocess);
  auto dataset = data::open_dataset(spec);
  log_info("evaluating ", o.model, " on ", dataset->describe());
  ProgressBar bar("images");
  const auto r = deploy::evaluate_onnx(worker, graph, *dataset, eval_options(o, torch::kCPU), bar.callback());
  bar.finish();
  print_accuracy(out, r);
  std::fprintf(out, "runtime %s\n", rt.c_str());
  if (cost) print_cost(out, *cost);
  auto j = accuracy_json(r, cost.value_or(models::ModelCost{}), o.model, dataset->describe());
  j["runtime"] = enum_name(runtime, deploy::kRuntimeNames);
  j["runtime_version"] = worker.version();
  if (graph.manifest && graph.manifest->contains("quantization"))
    j["quantization"] = (*graph.manifest)["quantization"];
  j["preprocess"] = data::preprocess_to_json(preprocess);
  j["graph_input"] = enum_name(graph.input, data::kGraphInputNames);
  write_json(o.json, j);
  if (!o.save_outputs.empty()) save_dataset_outputs(r, *dataset, o.save_outputs);
}

// The combinations of keys a job may not have; the mode checks before any file is read.
void check_job(const EvalJob& o) {
  using N = const KeyNamer&;
  // The ranges of the job's values, for flags and --config alike (docs/reliability.md, issue 25).
  auto need = [](bool ok, const char* key, const std::string& what, auto got) {
    if (!ok) throw ParameterError(key, cat(" must be ", what, " (got ", got, ")"));
  };
  need(o.limit >= 0, "limit", ">= 0", o.limit);
  need(o.batch_size > 0, "batch_size", "positive", o.batch_size);
  need(o.workers >= 0, "workers", ">= 0", o.workers);
  need(o.latency_repeats > 0, "latency_repeats", "positive", o.latency_repeats);
  if (o.summary) {
    if (o.model.empty() && o.arch.empty())
      throw ParameterError([](N n) { return cat(n("summary"), " needs ", n("arch"), " or ", n("model")); });
    return;
  }
  if (o.model.empty())
    throw ParameterError(
        [](N n) { return cat(n("model"), " is required (or ", n("summary"), " with ", n("arch"), ")"); });
  const int modes = !o.inputs.empty() + !o.data.empty() + o.latency.has_value() + o.latency_table;
  if (modes != 1)
    throw ParameterError([](N n) {
      return cat("give exactly one of ", n("data"), ", ", n("inputs"), ", ", n("latency"), " and ", n("latency_table"));
    });
  if (!o.out.empty() && !o.latency_table)
    throw ParameterError([](N n) { return cat(n("out"), " is for ", n("latency_table")); });
  if (o.latency_table && (o.attn_keep != 1.0 || o.mlp_keep != 1.0))
    throw ParameterError([](N n) {
      return cat(n("latency_table"), " times the super-network's own op codes; drop ", n("attn_keep"), "/",
                 n("mlp_keep"));
    });
  if (o.preprocess.any() && o.data.empty())
    throw ParameterError([](N n) {
      return cat(n("crop_pct"), ", ", n("interpolation"), ", ", n("mean"), " and ", n("std"), " go with ",
                 n("data"), " (how its images are prepared)");
    });
  if (o.save_inputs && (o.data.empty() || o.save_outputs.empty()))
    throw ParameterError(
        [](N n) { return cat(n("save_inputs"), " goes with ", n("data"), " and ", n("save_outputs")); });
  if (!o.inputs.empty() && o.save_outputs.empty())
    throw ParameterError([](N n) { return cat(n("inputs"), " needs ", n("save_outputs")); });
  const auto runtime = runtime_of(o);
  const bool onnx = is_onnx(o.model);
  if (onnx && runtime == deploy::Runtime::LIBTORCH)
    throw ParameterError([m = o.model](N n) {
      return cat(n("model"), " '", m, "' is an ONNX graph: run it with ", n("runtime"),
                 " onnxruntime or openvino");
    });
  if (runtime != deploy::Runtime::LIBTORCH) {
    if (!o.inputs.empty())
      throw ParameterError(
          [](N n) { return cat(n("inputs"), " runs in libtorch only (drop ", n("runtime"), ")"); });
    if (o.device != "cpu" || o.amp != Amp::NONE)
      throw ParameterError([](N n) {
        return cat(n("runtime"), " onnxruntime/openvino run on the CPU in float32 (drop ", n("device"), "/",
                   n("amp"), ")");
      });
  }
  if (onnx && (o.latency_table || o.attn_keep != 1.0 || o.mlp_keep != 1.0))
    throw ParameterError([](N n) {
      return cat(n("model"), ": an .onnx graph is one fixed sub-network (", n("latency_table"), ", ",
                 n("attn_keep"), " and ", n("mlp_keep"), " need the super-network's artifact)");
    });
}

// Every output location checked before any work (docs/reliability.md, "Hostile input"): not an input,
// not a directory or special file, in a writable folder.
void check_outputs(const EvalJob& o) {
  const std::vector<std::string> inputs = {o.model, o.arch, o.inputs, o.class_index};
  const std::string table =
      !o.latency_table ? ""
      : o.out.empty()  ? extract::latency_table_path(o.model, enum_name(runtime_of(o), deploy::kRuntimeNames))
                       : o.out;
  const std::string table_key = o.out.empty() ? "latency_table" : "out";
  check_output_file("json", o.json, inputs);
  check_output_file("save_outputs", o.save_outputs, inputs);
  check_output_file(table_key, table, inputs);
  check_distinct_outputs({{"json", o.json}, {"save_outputs", o.save_outputs}, {table_key, table}});
}

}  // namespace

void run_eval_job(const EvalJob& o, std::FILE* out) {
  check_job(o);
  check_outputs(o);
  if (o.summary) return run_summary(o, out);
  const auto runtime = runtime_of(o);
  if (runtime != deploy::Runtime::LIBTORCH) return run_in_runtime(o, runtime, out);
  const auto device = parse_device(o.device);
  check_amp_device(o.amp, device);
  auto loaded = models::load_model(o.model, o.arch);
  if (o.attn_keep != 1.0 || o.mlp_keep != 1.0) {
    const auto widths = models::keep_fraction(loaded.model->widths(), o.attn_keep, o.mlp_keep);
    loaded.model = models::slice_model(*loaded.model, widths);
    log_info("running at attention ", widths.front().attn, " dims per head, MLP ", widths.front().mlp,
             " units (first block; ", log_key("attn_keep"), " ", o.attn_keep, ", ", log_key("mlp_keep"), " ",
             o.mlp_keep, ")");
  }
  loaded.model->to(device);
  if (o.latency) return run_latency(o, *loaded.model, device, out);
  if (o.latency_table) return run_latency_table(o, loaded, device, out);
  if (!o.inputs.empty()) {
    std::fprintf(out, "%s\n", save_model_outputs(*loaded.model, o.inputs, o.save_outputs, o.model).c_str());
    return;
  }
  run_dataset(o, loaded, device, out);
}

}  // namespace skd::eval
