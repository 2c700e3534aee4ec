// skd-export: write a model (pretrained, WPAC, super-network at an op code / MACs budget, extracted
// sub-network) as an ONNX graph of standard ops, optionally checked against the C++ forward in
// onnxruntime before the file is written.
#include <cstdio>

#include "app_common.h"
#include "skd/export/onnx.h"

using namespace skd;

namespace {

// The flags of skd-export, by config key (apps/app_options.h); run_export builds the library's
// exporter::ExportOptions from them.
struct ExportCli {
  std::string model, arch, mask_table, macs, out, batch = "dynamic", python;
  extract::MacsConvention macs_convention = extract::MacsConvention::PAPER;
  std::optional<int64_t> op_code;
  std::optional<double> macs_ratio;
  double tolerance = exporter::ParityOptions{}.tolerance;
  int opset = exporter::kDefaultOpset;
  bool fold_scale = false, verify = false;
  int threads = app::kAutoThreads;  // common options (not config keys)
  std::string log_level;

  template <typename V>
  void visit(V&& v) {
    v("model", model); v("arch", arch); v("mask_table", mask_table);
    v("op_code", op_code); v("macs", macs); v("macs_ratio", macs_ratio); v("macs_convention", macs_convention, extract::kMacsConventionNames);
    v("out", out); v("opset", opset); v("batch", batch); v("fold_scale", fold_scale);
    v("verify", verify); v("python", python); v("tolerance", tolerance);
  }
};

int run_export(const ExportCli& cli) {
  // tolerance is this app's own key; exporter::export_onnx checks the selection's ranges.
  if (!(cli.tolerance >= 0)) throw ParameterError("tolerance", cat(" must be >= 0 (got ", cli.tolerance, ")"));
  exporter::ExportOptions o;
  o.model = cli.model;
  o.arch = cli.arch;
  o.mask_table = cli.mask_table;
  o.macs = cli.macs;
  o.macs_convention = cli.macs_convention;
  o.out = cli.out;
  o.graph.opset = cli.opset;
  o.fold_scale = cli.fold_scale;
  o.verify = cli.verify;
  o.parity.python = cli.python;
  o.parity.tolerance = cli.tolerance;
  o.op_code = cli.op_code;
  o.macs_ratio = cli.macs_ratio;
  o.graph.batch = exporter::parse_graph_batch(cli.batch);
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
  app::OptionBinder<ExportCli> b(cli);
  auto* g_model = app.add_option_group("Model");
  b.add_required(g_model, "model", "artifact, super-network, sub-network or checkpoint", argc, argv,
                 "--model,--supernet");
  b.add(g_model, "arch", "architecture for foreign checkpoints (named config or JSON)");
  b.add(g_model, "mask_table", "official mask_table.json (for a .pth super-network, or to "
                               "override the artifact's table)");
  auto* g_sel = app.add_option_group("Sub-network of a super-network (at most one; none = the stored widths)");
  auto* o_code = b.add(g_sel, "op_code", "code of the mask table (0 = full, -1 = smallest)");
  auto* o_macs = b.add(g_sel, "macs", "largest sub-network with at most these MACs (2.43G, 897M)");
  auto* o_ratio = b.add(g_sel, "macs_ratio", "largest sub-network with at most this fraction "
                                             "of the full network's MACs");
  o_code->excludes(o_macs)->excludes(o_ratio);
  o_macs->excludes(o_ratio);
  b.add(g_sel, "macs_convention", "convention of --macs/--macs-ratio: paper | full");
  auto* g_onnx = app.add_option_group("ONNX");
  b.add_required(g_onnx, "out", "output .onnx (written atomically)", argc, argv);
  b.add(g_onnx, "opset", "ONNX opset (17 .. the ONNX library's newest)");
  b.add(g_onnx, "batch", "'dynamic' (symbolic batch dimension) or a fixed batch size");
  b.add(g_onnx, "fold_scale", "fold each block's softmax scale into its query weights, so the "
                              "model is exact under the default 1/sqrt(head dim)");
  auto* g_verify = app.add_option_group("Parity check");
  b.add(g_verify, "verify", "run the exported graph in onnxruntime on fixed random inputs (batch 2 "
                            "and 1, or --batch) against the C++ forward; write only if max |diff| "
                            "<= --tolerance");
  b.add(g_verify, "python", "Python with onnxruntime (default: $SKD_PYTHON, else python3; "
                            "bash scripts/setup_venv.sh makes one)");
  b.add(g_verify, "tolerance", "max |logit difference| accepted by --verify (default 1e-4)");
  app::add_common_options(app, cli.threads, cli.log_level);
  b.add_config_options(&app, "export");
  return app::run(app, argc, argv, [&] {
    ExportCli o = b.resolve();
    if (b.dump_config()) {
      std::printf("%s\n", options::to_json(o).dump(2).c_str());
      return 0;
    }
    if (b.set("op_code") + b.set("macs") + b.set("macs_ratio") > 1)
      throw std::invalid_argument("give at most one of --op-code, --macs and --macs-ratio (the command line and "
                                  "--config together)");
    o.threads = cli.threads;
    o.log_level = cli.log_level;
    app::apply_common_options(o.threads, o.log_level);
    return run_export(o);
  });
}
