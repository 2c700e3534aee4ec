#include "skd/export/onnx.h"

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/deploy/runtime.h"
#include "skd/extract/extract.h"
#include "skd/models/checkpoint.h"

namespace skd::exporter {

namespace {

// The ONNX manifest: the sub-network's artifact manifest with its provenance (extract::extract's), the
// graph's input, output, opset and batch, and the op code it came from (this selection's, or the one
// an extracted source recorded).
nlohmann::json onnx_manifest(const extract::Extracted& sub, const extract::SubnetChoice& choice,
                             const GraphOptions& graph) {
  nlohmann::json extra = {
      {"onnx",
       {{"opset", graph.opset},
        {"batch", graph.batch > 0 ? nlohmann::json(graph.batch) : nlohmann::json("dynamic")},
        {"input", "pixel_values"},
        {"output", "logits"}}},
      {"graph_input", enum_name(graph.input, data::kGraphInputNames)}};
  extra.update(models::preprocess_entry(sub.preprocess));
  const auto& source = sub.provenance.value("source_provenance", nlohmann::json());
  if (choice.selection)
    extra["op_code"] = choice.selection->code;
  else if (source.is_object() && source.contains("op_code"))
    extra["op_code"] = source["op_code"];
  return models::make_manifest(*sub.model, sub.provenance, extra);
}

// The normalization --embed-normalize puts into the graph: the model's preprocess entry's.
void embed_normalization(const ExportJob& job, const models::LoadedModel& loaded, GraphOptions& graph,
                         std::FILE* out) {
  graph.input = job.embed_normalize;
  if (graph.input == data::GraphInput::NORMALIZED) return;
  if (!loaded.preprocess)
    throw ParameterError([m = job.model](const KeyNamer& n) {
      return cat(n("embed_normalize"), ": '", m, "' has no preprocess entry (an older artifact or a foreign ",
                 "checkpoint), so its normalization is unknown; write one with skd-convert ", n("model"), " ",
                 m, " (the data's or the architecture's defaults; ", n("crop_pct"), ", ", n("mean"), ", ",
                 n("std"), " to change them)");
    });
  graph.mean = loaded.preprocess->mean;
  graph.std = loaded.preprocess->std;
  std::fprintf(out, "input: %s, normalized in the graph (%s)\n",
               graph.input == data::GraphInput::UINT8 ? "uint8 pixels 0..255" : "float32 images in [0, 1]",
               data::describe(*loaded.preprocess).c_str());
}

// The int8 keys: calibration and its companions only with int8, and int8 only with calibration data.
void check_int8_keys(const ExportJob& job) {
  const Int8Options defaults;
  if (!job.int8 && (!job.calibration.empty() || job.calibration_split != defaults.split ||
                    job.calibration_samples != defaults.samples || job.calibration_method != defaults.method))
    throw ParameterError([](const KeyNamer& n) {
      return cat(n("calibration"), ", ", n("calibration_split"), ", ", n("calibration_samples"), " and ",
                 n("calibration_method"), " go with ", n("int8"));
    });
  if (job.int8 && job.calibration.empty())
    throw ParameterError([](const KeyNamer& n) {
      return cat(n("int8"), " needs ", n("calibration"), " (images to calibrate the activation ranges on)");
    });
  if (job.int8 && job.calibration_samples <= 0)
    throw ParameterError("calibration_samples", cat(" must be positive (got ", job.calibration_samples, ")"));
}

// The int8 step of the job (quantize_int8 on the checked fp32 graph).
Int8Result run_int8(const ExportJob& job, const std::string& bytes, const models::ModelConfig& config,
                    const nlohmann::json& manifest, int64_t graph_batch,
                    const std::optional<data::Preprocess>& preprocess, data::GraphInput input, int threads) {
  Int8Options q;
  q.calibration = job.calibration;
  q.split = job.calibration_split;
  q.samples = job.calibration_samples;
  q.method = job.calibration_method;
  q.verify = job.verify;
  q.graph_batch = graph_batch;
  q.preprocess = preprocess;
  q.input = input;
  deploy::WorkerOptions w;
  w.python = job.python;
  w.threads = threads > 0 ? threads : torch::get_num_threads();
  return quantize_int8(bytes, config, manifest, q, w);
}

}  // namespace

ExportResult run_export_job(const ExportJob& job, std::FILE* out, int threads) {
  if (job.out.empty()) throw ParameterError("out", " is required (the .onnx file to write)");
  if (!(job.tolerance >= 0))
    throw ParameterError("tolerance", cat(" must be >= 0 (got ", job.tolerance, ")"));
  check_int8_keys(job);
  GraphOptions graph;
  graph.opset = job.opset;
  graph.batch = parse_graph_batch(job.batch);
  check_graph_options(graph);
  extract::SubnetSelection selection = job.selection;
  if (selection.latency && graph.batch > 0) selection.batch = graph.batch;
  extract::check_selection(selection);
  // The output checked before any work (docs/reliability.md, "Hostile input"): not an input, not a
  // directory or special file, in a writable folder.
  auto inputs = extract::selection_inputs(selection, job.model);
  inputs.insert(inputs.end(), {job.model, job.arch});
  check_output_file("out", job.out, inputs);

  const auto loaded = models::load_model(job.model, job.arch);
  embed_normalization(job, loaded, graph, out);
  const extract::ExtractSource source{
      job.model, models::file_sha256(job.model), selection.mask_table,
      loaded.manifest.contains("provenance") ? loaded.manifest["provenance"] : nlohmann::json(),
      loaded.preprocess};
  const auto choice = extract::resolve_selection(loaded, selection,
                                                 {job.model, source.model_sha256, [&](const std::string& rt) {
                                                    return deploy::installed_runtime_version(rt, job.python);
                                                  }});
  if (choice.selection) extract::print_selection(*choice.selection, out);
  auto sub = extract::extract(*loaded.model, choice, source, {job.fold_scale});
  sub.model->eval();
  ExportResult r;
  if (choice.selection) {
    r.op_code = choice.selection->code;
    r.last_code = choice.selection->last_code;
  }
  r.widths = sub.model->widths();
  r.cost = models::macs_count(sub.model->config(), r.widths);
  r.manifest = onnx_manifest(sub, choice, graph);
  std::string bytes = onnx_model_bytes(*sub.model, r.manifest, graph);
  r.bytes = bytes.size();
  if (job.verify) {
    ParityOptions p;
    p.python = job.python;
    p.tolerance = job.tolerance;
    p.threads = threads;
    p.input = graph.input;
    p.mean = graph.mean;
    p.std = graph.std;
    if (graph.batch > 0) p.batches = {graph.batch};
    r.parity = check_parity(*sub.model, bytes, p);
    if (!r.parity->passed())
      throw ParameterFailure("verify",
                             cat(" failed: ", r.parity->line(), "; nothing was written to ", job.out));
  }
  if (job.int8) {
    r.int8 = run_int8(job, bytes, sub.model->config(), r.manifest, graph.batch, sub.preprocess, graph.input,
                      threads);
    r.manifest["quantization"] = r.int8->quantization;
    bytes = r.int8->bytes;
    r.bytes = bytes.size();
  }
  write_file_atomic(job.out, bytes.data(), bytes.size());
  const std::string ws = extract::widths_text(r.widths);
  std::fprintf(out, "wrote %s%s: %s MACs (paper), %.3f M params, opset %d, batch %s, %.2f MB; widths %s%s\n",
               job.out.c_str(), job.int8 ? " (int8)" : "", models::macs_format(r.cost.macs_paper).c_str(),
               r.cost.params / 1e6, graph.opset, job.batch.c_str(), r.bytes / 1e6, ws.c_str(),
               job.fold_scale ? "; attention scale folded into the query weights" : "");
  if (r.parity) std::fprintf(out, "%s\n", r.parity->line().c_str());
  if (r.int8) std::fprintf(out, "%s\n", r.int8->line().c_str());
  return r;
}

}  // namespace skd::exporter
