#include "skd/deploy/onnx_model.h"

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/core/logging.h"
#include "skd/models/checkpoint.h"

namespace skd::deploy {

OnnxGraph load_onnx(RuntimeWorker& worker, const std::string& path, const std::string& key) {
  OnnxGraph g;
  g.path = path;
  g.info = worker.load(path);
  const auto& in = g.info.input_shape;
  const auto& out = g.info.output_shape;
  const auto bad = [&](const std::string& what) { return FormatError(cat(key, " '", path, "': ", what)); };
  if (in.size() != 4 || in[1] <= 0 || in[2] <= 0 || in[2] != in[3])
    throw bad(cat("input '", g.info.input_name, "' has shape ", shape_text(in),
                  "; expected images [batch, channels, size, size] with static channels and size"));
  const bool uint8_input = g.info.input_type.find("uint8") != std::string::npos || g.info.input_type == "u8";
  if (g.info.input_type.find("float") == std::string::npos &&
      g.info.input_type.find("f32") == std::string::npos && !uint8_input)
    throw bad(cat("input '", g.info.input_name, "' is ", g.info.input_type, ", expected float32 (or uint8)"));
  if (out.size() != 2 || out[1] <= 0)
    throw bad(cat("output '", g.info.output_name, "' has shape ", shape_text(out),
                  "; expected logits [batch, classes]"));
  g.channels = in[1];
  g.img_size = in[2];
  g.num_classes = out[1];
  g.dynamic_batch = in[0] < 0;
  g.batch = g.dynamic_batch ? 0 : in[0];
  const auto m = g.info.metadata.find(models::kManifestKey);
  if (m != g.info.metadata.end()) {
    g.manifest = models::parse_manifest(m->second, path);
    g.config = models::manifest_config(*g.manifest, path);
    const auto& c = *g.config;
    if (c.in_chans != g.channels || c.img_size != g.img_size || c.num_classes != g.num_classes)
      throw bad(cat("its manifest describes ", c.in_chans, " channels of ", c.img_size, "x", c.img_size,
                    " and ", c.num_classes, " classes, but the graph reads ", shape_text(in), " and writes ",
                    shape_text(out)));
    g.preprocess = models::manifest_preprocess(*g.manifest, c, path);
    if (g.manifest->contains("graph_input")) {
      const auto input = find_enum((*g.manifest)["graph_input"].get<std::string>(), data::kGraphInputNames);
      if (!input)
        throw FormatError(cat(path, ": manifest key 'graph_input' is ", (*g.manifest)["graph_input"].dump(),
                              ", expected one of ", enum_names(data::kGraphInputNames)));
      g.input = *input;
    }
    if (g.input != data::GraphInput::NORMALIZED && !g.preprocess)
      throw FormatError(cat(path, ": manifest key 'graph_input' is '",
                            enum_name(g.input, data::kGraphInputNames), "' but the manifest has no '",
                            data::kPreprocessKey, "' entry"));
  }
  if (uint8_input != (g.input == data::GraphInput::UINT8))
    throw bad(cat("input '", g.info.input_name, "' is ", g.info.input_type,
                  " but its manifest's graph_input is '", enum_name(g.input, data::kGraphInputNames), "'"));
  return g;
}

data::Preprocess graph_feed(data::Preprocess p, data::GraphInput input) {
  if (input != data::GraphInput::NORMALIZED) {  // images in [0, 1]: the graph normalizes them itself
    p.mean.assign(p.mean.size(), 0.0);
    p.std.assign(p.std.size(), 1.0);
  }
  return p;
}

torch::Tensor graph_pixels(const torch::Tensor& x, data::GraphInput input) {
  return input == data::GraphInput::UINT8 ? x.mul(255.0).round_() : x;
}

data::DataSpec data_spec_for(const OnnxGraph& graph, data::DataSpec spec,
                             const data::PreprocessOverrides& overrides, data::Preprocess* values,
                             const std::string& key) {
  if (graph.channels != 1 && graph.channels != 3)
    throw ParameterError(key, cat(" '", graph.path, "' reads ", graph.channels,
                                  "-channel images; the toolkit's data gives 1 (grey) or 3 (RGB) channels"));
  spec.channels = graph.channels;
  spec.img_size = graph.img_size;
  if (graph.input != data::GraphInput::NORMALIZED && (overrides.mean || overrides.std))
    throw ParameterError([p = graph.path](const KeyNamer& n) {
      return cat(n("mean"), " and ", n("std"), ": '", p, "' normalizes its input inside the graph");
    });
  const auto pp = data::apply_preprocess(spec, graph.preprocess, graph.path, overrides);
  if (values) *values = pp.values;
  spec.preprocess = graph_feed(pp.values, graph.input);
  return spec;
}

torch::Tensor run_padded(RuntimeWorker& worker, const torch::Tensor& x, int64_t fixed_batch) {
  if (fixed_batch <= 0 || x.size(0) >= fixed_batch) return worker.run(x);
  auto padded = torch::zeros({fixed_batch, x.size(1), x.size(2), x.size(3)}, x.options());
  padded.narrow(0, 0, x.size(0)).copy_(x);
  return worker.run(padded).narrow(0, 0, x.size(0));
}

eval::EvalResult evaluate_onnx(RuntimeWorker& worker, const OnnxGraph& graph, const data::Dataset& dataset,
                               eval::EvalOptions options, const eval::ProgressFn& progress) {
  if (!options.device.is_cpu())
    throw ParameterError("device", cat(": ", graph.path, " runs in ",
                                       enum_name(worker.runtime(), kRuntimeNames), " on the CPU"));
  options.amp = Amp::NONE;
  options.widths = nullptr;
  const int64_t fixed = graph.batch;
  if (fixed > 0) options.batch_size = fixed;
  const eval::BatchForward forward = [&](const torch::Tensor& x) {
    return run_padded(worker, graph_pixels(x, graph.input), fixed);
  };
  return eval::evaluate(forward, graph.num_classes, dataset, options, progress);
}

}  // namespace skd::deploy
