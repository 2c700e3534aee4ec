// skd-export: write a model (pretrained, WPAC, super-network at an op code / MACs budget, extracted
// sub-network) as an ONNX graph of standard ops, optionally checked against the C++ forward in
// onnxruntime before the file is written.
#include <cstdio>

#include "app_common.h"
#include "skd/export/onnx.h"

using namespace skd;

namespace {

struct ExportCli {
  exporter::ExportOptions options;
  int64_t op_code = 0;
  double macs_ratio = 0;
  std::string batch = "dynamic";
  int threads = app::kAutoThreads;
  std::string log_level;
};

int run_export(ExportCli& cli, bool op_code_given, bool ratio_given) {
  auto& o = cli.options;
  if (op_code_given) o.op_code = cli.op_code;
  if (ratio_given) o.macs_ratio = cli.macs_ratio;
  if (cli.batch != "dynamic") {
    size_t used = 0;
    try {
      o.graph.batch = std::stoll(cli.batch, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != cli.batch.size() || o.graph.batch <= 0)
      throw std::invalid_argument(cat("--batch '", cli.batch, "': expected 'dynamic' or a positive integer"));
  }
  o.parity.threads = cli.threads;
  const auto r = exporter::export_onnx(o);
  if (r.op_code)
    std::printf("op code %lld of 0..%lld\n", static_cast<long long>(*r.op_code),
                static_cast<long long>(r.last_code));
  std::string ws;
  for (const auto& b : r.widths) ws += cat(ws.empty() ? "" : ",", b.attn, ":", b.mlp);
  std::printf("wrote %s: %s MACs (paper), %.3f M params, opset %d, batch %s, %.2f MB; widths %s%s\n",
              o.out.c_str(), models::macs_format(r.cost.macs_paper).c_str(), r.cost.params / 1e6,
              o.graph.opset, cli.batch.c_str(), r.bytes / 1e6, ws.c_str(),
              o.fold_scale ? "; attention scale folded into the query weights" : "");
  if (r.parity) std::printf("%s\n", r.parity->line().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Export a model to ONNX (standard ops, opset 17): any artifact or checkpoint the toolkit reads, a "
      "super-network at an op code or MACs budget (the skd-extract lookup), per-block widths as stored.",
      "skd-export"};
  ExportCli cli;
  auto& o = cli.options;
  auto* g_model = app.add_option_group("Model");
  g_model->add_option("--model,--supernet", o.model, "artifact, super-network, sub-network or checkpoint")
      ->required();
  g_model->add_option("--arch", o.arch, "architecture for foreign checkpoints (named config or JSON)");
  g_model->add_option("--mask-table", o.mask_table,
                      "official mask_table.json (for a .pth super-network, or to "
                      "override the artifact's table)");
  auto* g_sel =
      app.add_option_group("Sub-network of a super-network (at most one; none = the stored widths)");
  auto* o_code =
      g_sel->add_option("--op-code", cli.op_code, "code of the mask table (0 = full, -1 = smallest)");
  auto* o_macs =
      g_sel->add_option("--macs", o.macs, "largest sub-network with at most these MACs (2.43G, 897M)");
  auto* o_ratio = g_sel
                      ->add_option("--macs-ratio", cli.macs_ratio,
                                   "largest sub-network with at most this fraction "
                                   "of the full network's MACs")
                      ->check(CLI::Range(0.0, 1.0));
  o_code->excludes(o_macs)->excludes(o_ratio);
  o_macs->excludes(o_ratio);
  g_sel->add_option("--macs-convention", o.macs_convention,
                    "convention of --macs/--macs-ratio: paper | full");
  auto* g_onnx = app.add_option_group("ONNX");
  g_onnx->add_option("--out", o.out, "output .onnx (written atomically)")->required();
  g_onnx->add_option("--opset", o.graph.opset, "ONNX opset (17 .. the ONNX library's newest)");
  g_onnx->add_option("--batch", cli.batch, "'dynamic' (symbolic batch dimension) or a fixed batch size");
  g_onnx->add_flag("--fold-scale", o.fold_scale,
                   "fold each block's softmax scale into its query weights, so the "
                   "model is exact under the default 1/sqrt(head dim)");
  auto* g_verify = app.add_option_group("Parity check");
  g_verify->add_flag("--verify", o.verify,
                     "run the exported graph in onnxruntime on fixed random inputs (batch 2 "
                     "and 1, or --batch) against the C++ forward; write only if max |diff| "
                     "<= --tolerance");
  g_verify->add_option("--python", o.parity.python,
                       "Python with onnxruntime (default: $SKD_PYTHON, else python3; "
                       "bash scripts/setup_venv.sh makes one)");
  g_verify
      ->add_option("--tolerance", o.parity.tolerance,
                   "max |logit difference| accepted by --verify (default 1e-4)")
      ->check(app::non_negative());
  app::add_common_options(app, cli.threads, cli.log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(cli.threads, cli.log_level);
    return run_export(cli, o_code->count() > 0, o_ratio->count() > 0);
  });
}
