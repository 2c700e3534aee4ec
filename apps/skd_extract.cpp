// skd-extract: slice a standalone sub-network (reduced parameter shapes) out of a super-network at an
// op code, MACs or latency budget (mask-table lookup), or out of any elastic model at given per-block
// widths. parse -> extract::select -> extract::extract -> extract::save; this file only parses and prints.
#include <chrono>

#include "app_common.h"
#include "skd/extract/extract.h"
#include "skd/extract/select.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/mask_table.h"
#include "skd/models/slice.h"

using namespace skd;

namespace {

// "a:m,a:m,..." (one pair per block) -> widths.
models::Widths parse_widths(const std::string& text, size_t blocks) {
  models::Widths w;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("no ':'");
      size_t p1 = 0, p2 = 0;
      const int64_t a = std::stoll(item.substr(0, colon), &p1);
      const int64_t m = std::stoll(item.substr(colon + 1), &p2);
      if (p1 != colon || p2 != item.size() - colon - 1) throw std::invalid_argument("trailing characters");
      w.push_back({a, m});
    } catch (const std::exception&) {
      throw std::invalid_argument(cat("--widths: '", item, "' is not 'attn:mlp' (e.g. 32:768)"));
    }
  }
  if (w.size() != blocks)
    throw std::invalid_argument(cat("--widths: ", w.size(), " pairs given, the model has ", blocks, " blocks"));
  return w;
}

// --list: the op code -> MACs/params table of the super-network.
int print_code_table(const models::ModelConfig& config, const models::MaskTable& table) {
  const auto costs = models::code_costs(config, table);
  std::printf("%6s %14s %14s %12s  widths (attn:mlp per block)\n", "code", "MACs paper", "MACs full", "params");
  for (int64_t k = 0; k <= table.last_code(); ++k) {
    std::string ws;
    for (const auto& b : table.widths(k)) ws += cat(ws.empty() ? "" : ",", b.attn, ":", b.mlp);
    const auto& cost = costs[static_cast<size_t>(k)];
    std::printf("%6lld %14s %14s %11.3fM  %s\n", static_cast<long long>(k), models::macs_format(cost.macs_paper).c_str(),
                models::macs_format(cost.macs_full).c_str(), cost.params / 1e6, ws.c_str());
  }
  return 0;
}

// How to measure a missing latency table; the two budget keys this app spells its own way.
extract::BudgetNames budget_flags() {
  extract::BudgetNames n;
  app::flag_names()["latency_ms"] = "--latency";
  app::flag_names()["batch_size"] = "--batch";
  n.latency.measure = "skd-eval --latency-table";
  n.latency.measure_batch = "skd-eval --latency-table --batch-sizes";
  n.measure_file = "skd-eval --model <super-network> --latency-table";
  return n;
}

// The flags of skd-extract, by config key (apps/app_options.h).
struct ExtractCli {
  std::string model, arch, mask_table, macs, latency, widths, latency_table, out;
  extract::MacsConvention macs_convention = extract::MacsConvention::PAPER;
  double attn_keep = 1.0, mlp_keep = 1.0, macs_ratio = 0;
  int64_t op_code = 0, batch = 1;
  bool list = false, fold_scale = false;

  template <typename V>
  void visit(V&& v) {
    v("model", model); v("arch", arch); v("mask_table", mask_table);
    v("op_code", op_code); v("macs", macs); v("macs_ratio", macs_ratio); v("latency", latency); v("widths", widths);
    v("attn_keep", attn_keep); v("mlp_keep", mlp_keep); v("macs_convention", macs_convention, extract::kMacsConventionNames); v("batch", batch);
    v("latency_table", latency_table); v("list", list); v("out", out); v("fold_scale", fold_scale);
  }
};

// The sub-network selection keys given (flags or --config): CLI11 rejects two such flags, this a flag
// beside a different selection in the --config file.
void check_one_selection(const app::OptionBinder<ExtractCli>& b) {
  int n = 0;
  for (const char* key : {"op_code", "macs", "macs_ratio", "latency", "widths"}) n += b.set(key);
  n += b.set("attn_keep") || b.set("mlp_keep");
  if (n > 1)
    throw std::invalid_argument("give at most one of --op-code, --macs, --macs-ratio, --latency, --widths and "
                                "--attn-keep/--mlp-keep (the command line and --config together)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Extract a standalone sub-network: from a super-network by op code or MACs budget (a lookup in its "
               "mask table: no data, no search), or from any elastic model at given widths.",
               "skd-extract"};
  ExtractCli cli;
  app::OptionBinder<ExtractCli> b(cli);
  std::string log_level;
  int threads = app::kAutoThreads;
  b.add_required(&app, "model", "super-network / elastic model artifact (or checkpoint with --arch)", argc, argv,
                 "--model,--supernet");
  b.add(&app, "arch", "architecture for foreign checkpoints");
  b.add(&app, "mask_table", "official mask_table.json (for a .pth super-network, or to "
                            "override the artifact's table)");
  auto* g = app.add_option_group("Sub-network (one of)");
  auto* o_code = b.add(g, "op_code", "code of the mask table (0 = full, -1 = smallest)");
  auto* o_macs = b.add(g, "macs", "largest sub-network with at most these MACs (2.43G, 897M, ...)");
  auto* o_ratio = b.add(g, "macs_ratio", "largest sub-network with at most this fraction of the "
                                         "full network's MACs")->check(CLI::Range(0.0, 1.0));
  auto* o_lat = b.add(g, "latency", "largest sub-network whose measured median latency fits "
                                    "(5ms, 800us, 0.5s; from --latency-table)");
  auto* w = b.add(g, "widths", "per-block widths 'attn:mlp,attn:mlp,...'");
  auto* o_ak = b.add(g, "attn_keep", "keep this fraction of every head's q/k/v dims")->check(CLI::Range(0.0, 1.0));
  auto* o_mk = b.add(g, "mlp_keep", "keep this fraction of every MLP's hidden units")->check(CLI::Range(0.0, 1.0));
  for (auto* x : {o_code, o_macs, o_ratio, o_lat})
    for (auto* y : {o_code, o_macs, o_ratio, o_lat, w, o_ak, o_mk})
      if (x != y) x->excludes(y);
  w->excludes(o_ak)->excludes(o_mk);
  b.add(&app, "macs_convention", "MACs convention of --macs/--macs-ratio and --list: paper "
                                 "(ptflops rules, the paper's numbers) | full (+ attention matmuls)");
  b.add(&app, "batch", "--latency: the batch size the budget is for")->check(app::positive());
  b.add(&app, "latency_table", "--latency: the table of skd-eval --latency-table (default <model>.latency.json)");
  b.add(&app, "list", "print the op code -> MACs/params table of the super-network and exit");
  b.add(&app, "out", "output artifact (.safetensors)");
  b.add(&app, "fold_scale", "fold each block's softmax scale into its query weights (the sub-network "
                            "is then exact under the default 1/sqrt(head dim); manifest: attn_scale_folded)");
  app::add_common_options(app, threads, log_level);
  b.add_config_options(&app, "extraction");
  return app::run(app, argc, argv, [&] {
    const ExtractCli o = b.resolve();
    if (b.dump_config()) {
      std::printf("%s\n", options::to_json(o).dump(2).c_str());
      return 0;
    }
    app::apply_common_options(threads, log_level);
    check_one_selection(b);
    if (!o.list && o.out.empty()) throw std::invalid_argument("--out is required (or --list)");
    if ((b.set("batch") || b.set("latency_table")) && !b.set("latency"))
      throw std::invalid_argument("--batch and --latency-table go with --latency");
    const auto flags = budget_flags();
    const auto convention = o.macs_convention;
    using clock = std::chrono::steady_clock;
    const auto secs = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
    const auto t0 = clock::now();
    auto loaded = models::load_model(o.model, o.arch);
    const auto& c = loaded.model->config();
    const bool by_table = o.list || b.set("op_code") || b.set("macs") || b.set("macs_ratio") || b.set("latency");
    const extract::ExtractSource source{o.model, models::file_sha256(o.model), o.mask_table};
    const auto t_read = clock::now();
    extract::Extracted sub;
    models::Widths widths;
    if (by_table) {
      const auto table = models::load_mask_table(loaded.manifest, o.mask_table, c, loaded.model->widths(), o.model,
                                                 flags.mask_table);
      if (o.list) return print_code_table(c, table);
      extract::Budget budget = extract::Budget::of_op_code(o.op_code);
      if (b.set("macs")) budget = extract::Budget::of_macs(extract::parse_macs(o.macs, flags.macs), convention);
      if (b.set("macs_ratio")) budget = extract::Budget::of_macs_ratio(o.macs_ratio, convention);
      if (b.set("latency"))
        budget = extract::Budget::of_latency(extract::parse_duration_ms(o.latency, flags.latency.budget), o.batch,
                                             o.latency_table);
      const auto sel = extract::select(c, table, budget, {o.model, source.model_sha256}, flags);
      if (sel.latency) {
        const auto& l = *sel.latency;
        std::printf("latency budget %.3f ms at batch %lld: measured %.3f ms [p10 %.3f, p90 %.3f] on %s, %d threads\n",
                    l.budget_ms, static_cast<long long>(l.measured.batch_size), l.measured.median_ms, l.measured.p10_ms,
                    l.measured.p90_ms, l.device.c_str(), l.threads);
      }
      std::printf("op code %lld of 0..%lld\n", static_cast<long long>(sel.code), static_cast<long long>(sel.last_code));
      widths = sel.widths;
      sub = extract::extract(*loaded.model, sel, source, {o.fold_scale});
    } else {
      widths = !o.widths.empty() ? parse_widths(o.widths, static_cast<size_t>(c.num_blocks()))
                                 : models::keep_fraction(loaded.model->widths(), o.attn_keep, o.mlp_keep);
      sub = extract::extract(*loaded.model, widths, source, {o.fold_scale});
    }
    const auto t_slice = clock::now();
    extract::save(o.out, sub);
    const auto t_write = clock::now();
    const auto full = models::macs_count(c, loaded.model->widths());
    const auto cost = models::macs_count(c, widths);
    std::printf("wrote %s: %s of %s MACs (%s convention), %.3f M of %.3f M params\n", o.out.c_str(),
                models::macs_format(extract::macs_of(cost, convention)).c_str(),
                models::macs_format(extract::macs_of(full, convention)).c_str(), extract::macs_convention_name(convention),
                cost.params / 1e6, full.params / 1e6);
    // Extraction itself is a table lookup and a copy of weight slices: the time goes into reading
    // the super-network (and hashing it for the provenance) and writing the sub-network.
    std::printf("time: read + sha256 %.3f s, select + slice %.3f s, write %.3f s\n", secs(t0, t_read),
                secs(t_read, t_slice), secs(t_slice, t_write));
    return 0;
  });
}
