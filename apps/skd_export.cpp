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
  b.add_required(g_model, "model", "artifact, super-network, sub-network or checkpoint", argc, argv,
                 "--model,--supernet");
  b.add(g_model, "arch", "architecture for foreign checkpoints (named config or JSON)");
  b.add(g_model, "mask_table", "official mask_table.json (for a .pth super-network, or to "
                               "override the artifact's table)");
  auto* g = app.add_option_group("Sub-network (at most one; none = the stored widths)");
  app::add_selection_options(b, g, "at --batch, 1 when dynamic");
  b.add(g, "latency_table",
        "--latency: the table of skd-eval --latency-table (default <model>.latency.json)");
  auto* g_onnx = app.add_option_group("ONNX");
  b.add_required(g_onnx, "out", "output .onnx (written atomically)", argc, argv);
  b.add(g_onnx, "opset", "ONNX opset (17 .. the ONNX library's newest)");
  b.add(g_onnx, "batch",
        "'dynamic' (symbolic batch dimension) or a fixed batch size (also the batch "
        "size a --latency budget is for; 1 when dynamic)");
  b.add(g_onnx, "fold_scale", "fold each block's softmax scale into its query weights, so the "
                              "model is exact under the default 1/sqrt(head dim)");
  auto* g_verify = app.add_option_group("Parity check");
  b.add(g_verify, "verify", "run the exported graph in onnxruntime on fixed random inputs (batch 2 "
                            "and 1, or --batch) against the C++ forward; write only if max |diff| "
                            "<= --tolerance");
  b.add(g_verify, "python", "Python with onnxruntime (default: $SKD_PYTHON, else python3; "
                            "bash scripts/setup_venv.sh makes one)");
  b.add(g_verify, "tolerance", "max |logit difference| accepted by --verify (default 1e-4)");
  app::add_common_options(app, threads, log_level);
  b.add_config_options(&app, "export");
  return app::run(app, argc, argv, [&] {
    const exporter::ExportJob resolved = b.resolve();
    if (b.dump_config()) {
      std::printf("%s\n", options::to_json(resolved).dump(2).c_str());
      return 0;
    }
    app::apply_common_options(threads, log_level);
    extract::BudgetNames measure;  // how to measure a missing latency table, said in the errors
    measure.latency.measure = "skd-eval --latency-table";
    measure.latency.measure_batch = "skd-eval --latency-table --batch-sizes";
    measure.measure_file = "skd-eval --model <model> --latency-table";
    exporter::run_export_job(resolved, stdout, measure, threads);
    return 0;
  });
}
