// skd-eval: accuracy on a dataset, outputs on given inputs, forward latency, the latency table of a
// super-network, or a MACs/params summary. Parses its flags into an eval::EvalJob (flag > --config >
// defaults) and calls eval::run_eval_job, which prints the report.
#include "app_common.h"
#include "skd/eval/eval_job.h"

using namespace skd;

int main(int argc, char** argv) {
  CLI::App app{"Evaluate a model: accuracy on a dataset, outputs on given inputs, or MACs/params.", "skd-eval"};
  eval::EvalJob job;
  app::OptionBinder<eval::EvalJob> b(job);
  int threads = app::kAutoThreads;
  std::string log_level;
  auto* g_model = app.add_option_group("Model");
  b.add(g_model, "model", "artifact, .pth or .safetensors checkpoint");
  b.add(g_model, "arch", "named architecture (deit_small, swin_tiny, ...) or JSON config; needed "
                         "for foreign checkpoints");
  b.add(g_model, "attn_keep", "run with only the leading floor(a * F) q/k/v dims of every head "
                              "(MLP untouched unless --mlp-keep)");
  b.add(g_model, "mlp_keep", "run with only the leading floor(m * F) hidden units of every MLP");
  auto* g_data = app.add_option_group("Data");
  b.add(g_data, "data", "'fashion-mnist' or a folder with its IDX files");
  b.add(g_data, "split", "dataset split (test|train)");
  b.add(g_data, "limit", "evaluate only the first N images");
  b.add(g_data, "batch_size", "images per batch");
  b.add(g_data, "inputs", "safetensors with a tensor 'input' [B,3,H,W] (already normalised)");
  b.add(g_data, "class_index", "image folders: class-index file (.txt or .json)");
  b.add(g_data, "crop_pct", "eval resize: shorter side to int(size / crop-pct), then crop");
  b.add(g_data, "workers", "image decoding threads");
  b.add(g_data, "on_bad_image", "skip (and count) or fail on unreadable images");
  auto* g_run = app.add_option_group("Run");
  b.add(g_run, "device", "cpu | cuda | cuda:N");
  b.add(g_run, "amp", "bf16 | fp16 autocast (CUDA only)");
  b.add(g_run, "latency", "measure forward latency at these batch sizes (e.g. 1,8,64)");
  b.add(g_run, "latency_repeats", "timed runs per batch size");
  b.add(g_run, "latency_table", "super-networks: time every op code (the sub-network skd-extract "
                                "would write) and write the table skd-extract --latency reads");
  b.add(g_run, "batch_sizes", "--latency-table: batch sizes to time (e.g. 1,64)");
  auto* g_out = app.add_option_group("Output");
  b.add(g_out, "summary", "print params and MACs (both conventions); needs no weights");
  b.add(g_out, "json", "also write the results as JSON");
  b.add(g_out, "save_outputs", "write logits (and features for --inputs) as safetensors");
  b.add(g_out, "out", "--latency-table: the table file (default <model>.latency.json)");
  app::add_common_options(app, threads, log_level);
  b.add_config_options(&app, "evaluation");
  return app::run(app, argc, argv, [&] {
    const eval::EvalJob resolved = b.resolve();
    if (b.dump_config()) {
      std::printf("%s\n", options::to_json(resolved).dump(2).c_str());
      return 0;
    }
    app::apply_common_options(threads, log_level);
    eval::run_eval_job(resolved, stdout);
    return 0;
  });
}
