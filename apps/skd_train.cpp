// skd-train: plain supervised training / fine-tuning of a ViT or Swin on a dataset.
// Values: command-line flag > --config JSON recipe > built-in default.
#include <fstream>

#include "app_common.h"
#include "skd/data/dataset.h"
#include "skd/models/checkpoint.h"
#include "skd/train/trainer.h"

using namespace skd;

int main(int argc, char** argv) {
  CLI::App app{"Train or fine-tune a model (plain supervised training).", "skd-train"};
  train::TrainOptions o;
  std::string model, arch, data = "fashion-mnist", config, log_level;
  bool no_eval = false, dump_config = false;
  int threads = app::default_threads();
  auto* g_model = app.add_option_group("Model");
  g_model->add_option("--model", model, "start from these weights (artifact or checkpoint)");
  g_model->add_option("--arch", arch, "architecture (named or JSON); alone: train from scratch");
  auto* g_data = app.add_option_group("Data");
  g_data->add_option("--data", data, "'fashion-mnist' or a folder with its IDX files");
  g_data->add_option("--limit", o.limit, "use only the first N training images");
  g_data->add_flag("--no-eval", no_eval, "skip the per-epoch evaluation on the test split");
  auto* g_opt = app.add_option_group("Recipe");
  g_opt->add_option("--config", config, "JSON recipe; keys are the long flag names with '_' (e.g. batch_size)");
  g_opt->add_option("--epochs", o.epochs);
  g_opt->add_option("--batch-size", o.batch_size);
  g_opt->add_option("--lr", o.lr, "peak learning rate");
  g_opt->add_option("--min-lr", o.min_lr);
  g_opt->add_option("--weight-decay", o.weight_decay);
  g_opt->add_option("--warmup-epochs", o.warmup_epochs);
  g_opt->add_option("--smoothing", o.label_smoothing, "label smoothing");
  g_opt->add_option("--seed", o.seed);
  auto* g_out = app.add_option_group("Output");
  g_out->add_option("--out", o.out, "write the trained model as an artifact here");
  g_out->add_option("--metrics", o.metrics_jsonl, "append per-epoch metrics as JSON lines");
  g_out->add_option("--log-every", o.log_every, "steps between progress lines");
  g_out->add_flag("--dump-config", dump_config, "print the resolved recipe as JSON and exit");
  app::add_common_options(app, threads, log_level);
  return app::run(app, argc, argv, [&] {
    app::apply_common_options(threads, log_level);
    if (!config.empty()) {
      std::ifstream in(config);
      if (!in) throw std::invalid_argument(cat("--config: cannot open '", config, "'"));
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(cat("--config '", config, "': invalid JSON: ", e.what()));
      }
      for (const auto& [key, value] : j.items()) {
        std::string flag = "--" + key;
        for (auto& ch : flag) ch = ch == '_' ? '-' : ch;
        CLI::Option* opt = nullptr;
        try {
          opt = app.get_option(flag);
        } catch (const CLI::OptionNotFound&) {
          throw std::invalid_argument(cat("--config '", config, "': unknown key '", key, "'"));
        }
        if (opt->count() > 0) continue;  // the command line wins
        const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
        try {
          opt->add_result(text);
          opt->run_callback();
        } catch (const CLI::Error& e) {
          throw std::invalid_argument(cat("--config '", config, "': key '", key, "': ", e.what()));
        }
      }
    }
    if (dump_config) {
      std::printf("%s\n", nlohmann::json{{"model", model}, {"arch", arch}, {"data", data}, {"epochs", o.epochs},
                                         {"batch_size", o.batch_size}, {"lr", o.lr}, {"min_lr", o.min_lr},
                                         {"weight_decay", o.weight_decay}, {"warmup_epochs", o.warmup_epochs},
                                         {"smoothing", o.label_smoothing}, {"seed", o.seed}, {"limit", o.limit}}
                                      .dump(2)
                                      .c_str());
      return 0;
    }
    if (model.empty() && arch.empty()) throw std::invalid_argument("give --model and/or --arch");
    torch::manual_seed(o.seed);
    models::ElasticModel net;
    if (!model.empty()) {
      net = models::load_model(model, arch).model;
    } else {
      net = models::create_model(models::resolve_arch(arch));
    }
    const auto& c = net->config();
    auto train_set = data::open_dataset(data, "train", c.img_size, c.in_chans);
    std::unique_ptr<data::Dataset> test_set;
    if (!no_eval) test_set = data::open_dataset(data, "test", c.img_size, c.in_chans);
    log_info("training ", c.name, " on ", train_set->describe(), " for ", o.epochs, " epoch(s), batch ",
             o.batch_size, ", ", threads, " thread(s)");
    const auto s = train::train_classifier(*net, *train_set, test_set.get(), o);
    std::printf("trained %lld steps, last loss %.4f, %.1f images/s", static_cast<long long>(s.steps), s.last_loss,
                s.images_per_s);
    if (s.eval_top1 >= 0) std::printf(", test top-1 %.2f%%", s.eval_top1);
    std::printf("\n");
    return 0;
  });
}
