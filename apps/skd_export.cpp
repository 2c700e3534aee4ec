// skd-export: write a model (pretrained, WPAC, super-network at an op code / MACs / latency budget or
// at given widths, extracted sub-network) as an ONNX graph of standard ops, optionally checked against
// the C++ forward in onnxruntime before the file is written. Parses its flags into an
// exporter::ExportJob (flag > --config > defaults; the selection flags are skd-extract's) and calls
// exporter::run_export_job, which prints what it did.
#include <cstdio>

#include "app_common.h"
#include "app_selection.h"
#include "skd/export/onnx.h"

using namespace skd;

int main(int argc, char** argv) {
  CLI::App app{
      "Export a model to ONNX (standard ops, opset 17): any artifact or checkpoint the toolkit reads, a "
      "super-network at an op code, MACs or latency budget (the skd-extract lookup), or at given widths.",
      "skd-export"};
  exporter::ExportJob job;
  app::OptionBinder<exporter::ExportJob> b(job);
  std::string log_level;
  int threads = app::kAutoThreads;
  auto* g_model = app.add_option_group("Model");
  b.add_required(g_model, "model", "", argc, argv, "--model,--supernet");
  b.add(g_model, "arch");
  b.add(g_model, "mask_table");
  auto* g = app.add_option_group("Sub-network (at most one; none = the stored widths)");
  app::add_selection_options(b, g);
  b.add(g, "latency_table");
  b.add(g, "runtime");
  auto* g_onnx = app.add_option_group("ONNX");
  b.add_required(g_onnx, "out", argc, argv);
  for (const char* key : {"opset", "batch", "embed_normalize", "fold_scale"}) b.add(g_onnx, key);
  auto* g_verify = app.add_option_group("Parity check");
  for (const char* key : {"verify", "python", "tolerance"}) b.add(g_verify, key);
  auto* g_int8 = app.add_option_group("int8");
  for (const char* key :
       {"int8", "calibration", "calibration_split", "calibration_samples", "calibration_method"})
    b.add(g_int8, key);
  app::add_common_options(app, threads, log_level);
  b.add_config_options(&app, "export");
  return app::run_job(app, argc, argv, b, threads, log_level, [&](const exporter::ExportJob& resolved) {
    exporter::run_export_job(resolved, stdout, threads);
  });
}
