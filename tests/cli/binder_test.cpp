// The command-line layer (skd/cli): flags bound to an options struct by key, the layers of values
// (defaults < a lower layer < --config < flags), optionals, enums, text values with units, the checks of
// bad values, the --dump-config round trip, help from the field, and errors rendered with flags.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "skd/cli/app.h"
#include "skd/cli/binder.h"
#include "skd/core/error.h"
#include "skd/core/logging.h"
#include "skd/core/options.h"
#include "skd/core/units.h"
#include "test_util.h"

using namespace skd;

namespace {

enum class Precision { NONE, BF16, FP16 };
constexpr std::pair<const char*, Precision> kPrecisionNames[] = {
    {"none", Precision::NONE}, {"bf16", Precision::BF16}, {"fp16", Precision::FP16}};

struct Job {
  std::string model;
  int64_t batch_size = 128;
  int workers = 2;
  uint64_t seed = 0;
  double lr = 5e-4;
  bool eval = true;
  bool verbose = false;
  Precision amp = Precision::NONE;
  std::optional<int64_t> op_code;
  std::optional<double> ratio;
  BatchList batch_sizes = BatchList{{1}};
  std::optional<BatchList> latency;
  std::optional<Duration> budget;
  std::optional<Macs> macs;

  template <typename V>
  void visit(V&& v) {
    v("model", model, "weights to start from");
    v("batch_size", batch_size, "images per batch");
    v("workers", workers);
    v("seed", seed, "random seed");
    v("lr", lr, "base learning rate");
    v("eval", eval, "evaluate after every epoch");
    v("verbose", verbose, "say more");
    v("amp", amp, kPrecisionNames, "autocast on CUDA");
    v("op_code", op_code, "code of the mask table");
    v("ratio", ratio, "fraction of the MACs");
    v("batch_sizes", batch_sizes, "batch sizes to time");
    v("latency", latency, "measure latency at these batch sizes");
    v("budget", budget, "latency budget");
    v("macs", macs, "MACs budget");
  }
};

// An app over Job: every field bound, --eval with a --no-eval, --model required.
struct Cli {
  Job job;
  CLI::App app{"test app", "skd-test"};
  cli::OptionBinder<Job> b{job};
  std::vector<std::string> args;
  std::vector<const char*> argv;

  explicit Cli(std::vector<std::string> a) : args(std::move(a)) {
    args.insert(args.begin(), "skd-test");
    for (const auto& s : args) argv.push_back(s.c_str());
    b.add_required(&app, "model", static_cast<int>(argv.size()), argv.data());
    for (const char* key : {"batch_size", "workers", "seed", "lr", "verbose", "amp", "op_code", "ratio",
                            "batch_sizes", "latency", "budget", "macs"})
      b.add(&app, key);
    b.add_named(&app, "eval", "--eval,!--no-eval");
    b.add_config_options(&app, "test job");
  }
  void parse() { app.parse(static_cast<int>(argv.size()), argv.data()); }
  Job resolve(std::vector<options::Layer> lower = {}) {
    parse();
    return b.resolve(std::move(lower));
  }
  // The message of a parse error or of resolve(), rendered as the app prints it.
  std::string error(std::vector<options::Layer> lower = {}) {
    try {
      resolve(std::move(lower));
    } catch (const CLI::ParseError& e) {
      return e.what();
    } catch (const std::exception& e) {
      return cli::render_error(e);
    }
    return "(no error)";
  }
};

std::string write(const std::string& name, const std::string& text) {
  const auto path = test::scratch_dir("cli_binder") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

TEST(Binder, DefaultsThenLowerLayerThenConfigFileThenFlags) {
  const auto file = write("layers.json", R"({"batch_size": 32, "lr": 0.01, "workers": 5})");
  Cli c({"--model", "m", "--config", file, "--batch-size", "8"});
  const options::Layer checkpoint{{{"batch_size", 64}, {"lr", 0.1}, {"seed", 7}, {"workers", 3}},
                                  "the checkpoint"};
  const Job j = c.resolve({checkpoint});
  EXPECT_EQ(j.batch_size, 8);    // flag > file > checkpoint
  EXPECT_DOUBLE_EQ(j.lr, 0.01);  // file > checkpoint
  EXPECT_EQ(j.workers, 5);       // file > checkpoint
  EXPECT_EQ(j.seed, 7u);         // checkpoint > default
  EXPECT_TRUE(j.eval);           // default
  EXPECT_EQ(j.model, "m");
  EXPECT_TRUE(c.b.set("lr"));  // in the file
  EXPECT_TRUE(c.b.set("batch_size"));
  EXPECT_FALSE(c.b.set("seed"));  // only in the lower layer
}

TEST(Binder, BooleanFlagsAndTheirNegation) {
  const auto file = write("eval_off.json", R"({"eval": false, "verbose": true})");
  EXPECT_FALSE(Cli({"--model", "m", "--no-eval"}).resolve().eval);
  EXPECT_FALSE(Cli({"--model", "m", "--config", file}).resolve().eval);
  EXPECT_TRUE(Cli({"--model", "m", "--config", file, "--eval"}).resolve().eval);
  EXPECT_TRUE(Cli({"--model", "m", "--config", file}).resolve().verbose);
}

TEST(Binder, OptionalsAreNullUntilGiven) {
  Cli unset({"--model", "m"});
  const Job j = unset.resolve();
  EXPECT_FALSE(j.op_code);
  EXPECT_FALSE(j.ratio);
  EXPECT_FALSE(j.latency);
  EXPECT_FALSE(j.macs);
  EXPECT_TRUE(options::to_json(j).at("op_code").is_null());
  EXPECT_FALSE(unset.b.set("op_code"));
  Cli given({"--model", "m", "--op-code", "0", "--ratio", "0.5"});
  const Job g = given.resolve();
  ASSERT_TRUE(g.op_code);
  EXPECT_EQ(*g.op_code, 0);  // 0 is a value, not "unset"
  ASSERT_TRUE(g.ratio);
  EXPECT_DOUBLE_EQ(*g.ratio, 0.5);
  EXPECT_TRUE(given.b.set("op_code"));
  // null in a file unsets a lower layer's value
  const auto file = write("null.json", R"({"op_code": null})");
  EXPECT_FALSE(Cli({"--model", "m", "--config", file}).resolve({{{{"op_code", 3}}, "lower"}}).op_code);
}

TEST(Binder, EnumsTakeTheirNamesOnly) {
  EXPECT_EQ(Cli({"--model", "m", "--amp", "bf16"}).resolve().amp, Precision::BF16);
  const auto file = write("amp.json", R"({"amp": "fp16"})");
  EXPECT_EQ(Cli({"--model", "m", "--config", file}).resolve().amp, Precision::FP16);
  EXPECT_EQ(Cli({"--model", "m", "--config", file, "--amp", "none"}).resolve().amp, Precision::NONE);
  const auto flag = Cli({"--model", "m", "--amp", "fp8"}).error();
  EXPECT_HAS(flag, "--amp");
  EXPECT_HAS(flag, "unknown value 'fp8' (expected one of none, bf16, fp16)");
  const auto bad = write("bad_amp.json", R"({"amp": "fp8"})");
  const auto in_file = Cli({"--model", "m", "--config", bad}).error();
  EXPECT_HAS(in_file,
             "--config '" + bad + "': key 'amp' has the value \"fp8\" (expected one of none, bf16, fp16)");
}

TEST(Binder, UnknownKeysInTheConfigFileAreRefusedNamingFileAndKey) {
  const auto file = write("unknown.json", R"({"batch_size": 4, "bogus": 1})");
  EXPECT_HAS(Cli({"--model", "m", "--config", file}).error(), "--config '" + file + "': unknown key 'bogus'");
  // a lower layer's unknown key names that layer
  EXPECT_HAS(Cli({"--model", "m"}).error({{{{"old_key", 1}}, "checkpoint 'c.safetensors'"}}),
             "checkpoint 'c.safetensors': unknown key 'old_key'");
  EXPECT_HAS(Cli({"--model", "m", "--config", write("array.json", "[1, 2]")}).error(),
             "expected a JSON object");
  EXPECT_HAS(Cli({"--model", "m", "--config", write("broken.json", "{\"batch_size\": ")}).error(),
             "broken.json");
}

TEST(Binder, BadValuesInTheFileNameFileAndKey) {
  const auto type = write("type.json", R"({"batch_size": "8"})");
  EXPECT_HAS(Cli({"--model", "m", "--config", type}).error(),
             "--config '" + type + "': key 'batch_size' has the wrong type");
  const auto range = write("range.json", R"({"workers": 4294967296})");
  EXPECT_HAS(Cli({"--model", "m", "--config", range}).error(), "key 'workers': 4294967296 is out of range");
  const auto negative = write("negative.json", R"({"seed": -1})");
  EXPECT_HAS(Cli({"--model", "m", "--config", negative}).error(), "key 'seed': -1 is out of range");
  const auto fraction = write("fraction.json", R"({"batch_size": 1.5})");
  EXPECT_HAS(Cli({"--model", "m", "--config", fraction}).error(), "key 'batch_size' has the wrong type");
  // 1e999 (inf) is refused by the JSON reader already, naming the file; JSON has no nan
  const auto inf = write("inf.json", R"({"lr": 1e999})");
  EXPECT_HAS(Cli({"--model", "m", "--config", inf}).error(), "--config '" + inf + "' is not valid JSON");
  EXPECT_HAS(Cli({"--model", "m"}).error({{{{"lr", std::numeric_limits<double>::infinity()}}, "lower"}}),
             "lower: key 'lr': inf is not a finite number");
}

TEST(Binder, BadFlagValuesNameTheFlag) {
  for (const char* bad : {"0x10", "0o7", "0b1"})
    EXPECT_HAS(Cli({"--model", "m", "--batch-size", bad}).error(), "is not a decimal integer");
  EXPECT_EQ(Cli({"--model", "m", "--batch-size", "010"}).resolve().batch_size, 10);  // decimal, not octal 8
  EXPECT_HAS(Cli({"--model", "m", "--workers", "4294967296"}).error(), "--workers");
  EXPECT_HAS(Cli({"--model", "m", "--workers", "4294967296"}).error(), "is out of range");
  EXPECT_HAS(Cli({"--model", "m", "--seed", "-1"}).error(), "is out of range");
  EXPECT_HAS(Cli({"--model", "m", "--op-code", "0x1"}).error(), "--op-code");
  EXPECT_HAS(Cli({"--model", "m", "--batch-size", "many"}).error(), "'many' is not an integer");
  // floats that are not finite are refused by the layer, named as the flag
  for (const char* bad : {"inf", "nan", "1e999"}) {
    const auto message = Cli({"--model", "m", "--lr", bad}).error();
    EXPECT_HAS(message, "--lr");
    EXPECT_HAS(message, "is not a finite number");
  }
}

TEST(Binder, RequiredFlagsMayComeFromTheConfigFile) {
  EXPECT_HAS(Cli({}).error(), "--model is required");
  const auto file = write("model.json", R"({"model": "from_file"})");
  EXPECT_EQ(Cli({"--config", file}).resolve().model, "from_file");
  // --config without the key: the required value is still missing, named as the flag
  const auto empty = write("empty.json", R"({"lr": 0.5})");
  EXPECT_EQ(Cli({"--config", empty}).error(), "--model is required");
  // --dump-config prints what there is
  EXPECT_TRUE(Cli({"--dump-config"}).resolve().model.empty());
}

TEST(Binder, DumpConfigReadBackAsConfigGivesTheSameStruct) {
  Cli first({"--model", "m", "--batch-size", "8", "--no-eval", "--amp", "bf16", "--op-code", "-1",
             "--latency", "1, 8,64", "--budget", "800us", "--macs", "2.43G", "--seed",
             "18446744073709551615"});
  const Job a = first.resolve();
  const auto dumped = options::to_json(a);
  const auto file = write("dumped.json", dumped.dump(2));
  const Job b = Cli({"--config", file}).resolve();
  EXPECT_EQ(options::to_json(b), dumped);
  EXPECT_EQ(b.batch_size, 8);
  EXPECT_FALSE(b.eval);
  EXPECT_EQ(b.amp, Precision::BF16);
  EXPECT_EQ(b.op_code, std::optional<int64_t>(-1));
  EXPECT_EQ(b.latency, std::optional<BatchList>(BatchList{{1, 8, 64}}));
  EXPECT_EQ(b.budget, std::optional<Duration>(Duration{0.8}));
  EXPECT_EQ(b.macs, std::optional<Macs>(Macs{2430000000}));
  EXPECT_EQ(b.seed, 18446744073709551615ull);
  EXPECT_FALSE(b.ratio);
}

TEST(Binder, TextValuesAreParsedWhenTheCommandLineIsRead) {
  const Job j =
      Cli({"--model", "m", "--latency", "1,8,64", "--budget", "0.5s", "--macs", "897M", "--batch-sizes", "2"})
          .resolve();
  EXPECT_EQ(j.latency->values, (std::vector<int64_t>{1, 8, 64}));
  EXPECT_DOUBLE_EQ(j.budget->ms, 500.0);
  EXPECT_EQ(j.macs->count, 897000000);
  EXPECT_EQ(j.batch_sizes.values, (std::vector<int64_t>{2}));
  // errors at parse time, naming the flag (a CLI11 error: before any layer is resolved)
  Cli bad({"--model", "m", "--latency", "1,0"});
  try {
    bad.parse();
    ADD_FAILURE() << "--latency 1,0 was accepted";
  } catch (const CLI::ParseError& e) {
    EXPECT_HAS(e.what(), "--latency");
    EXPECT_HAS(e.what(), "'1,0': expected positive integers like 1,8,64");
  }
  EXPECT_HAS(Cli({"--model", "m", "--budget", "5 parsecs"}).error(), "--budget");
  EXPECT_HAS(Cli({"--model", "m", "--macs", "lots"}).error(), "'lots' is not a MACs amount");
  // in a file: a string, or a number where it makes sense; errors name the file and the key
  const auto file =
      write("units.json", R"({"latency": "4,16", "budget": 12, "macs": 123456, "batch_sizes": 8})");
  const Job f = Cli({"--model", "m", "--config", file}).resolve();
  EXPECT_EQ(f.latency->values, (std::vector<int64_t>{4, 16}));
  EXPECT_DOUBLE_EQ(f.budget->ms, 12.0);
  EXPECT_EQ(f.macs->count, 123456);
  EXPECT_EQ(f.batch_sizes.values, (std::vector<int64_t>{8}));
  const auto bad_file = write("bad_units.json", R"({"budget": "-3ms"})");
  EXPECT_HAS(Cli({"--model", "m", "--config", bad_file}).error(),
             "--config '" + bad_file + "': key 'budget': '-3ms': expected a positive duration");
  const auto wrong_type = write("units_type.json", R"({"macs": [1]})");
  EXPECT_HAS(Cli({"--model", "m", "--config", wrong_type}).error(), "key 'macs' has the wrong type");
}

TEST(Binder, HelpComesFromTheFieldWithTheEnumNames) {
  Cli c({"--model", "m"});
  const std::string help = c.app.help();
  EXPECT_HAS(help, "images per batch");
  EXPECT_HAS(help, "autocast on CUDA (none | bf16 | fp16)");
  EXPECT_HAS(help, "evaluate after every epoch");
  EXPECT_EQ(options::describe(kPrecisionNames), "(none | bf16 | fp16)");
  EXPECT_EQ(options::describe("plain"), "plain");
  // an app's own help overrides the field's
  Job job;
  CLI::App app{"x", "x"};
  cli::OptionBinder<Job> b(job);
  b.add(&app, "batch_size", "per process");
  EXPECT_HAS(app.help(), "per process");
  EXPECT_EQ(app.help().find("images per batch"), std::string::npos);
}

TEST(Binder, ErrorsNameFlagsNotKeys) {
  Job job;
  CLI::App app{"x", "x"};
  cli::OptionBinder<Job> b(job);
  b.add_named(&app, "model", "--model,--supernet");
  b.add_named(&app, "batch_size", "-b,--images-per-step");
  // the binder is the process's key namer: keyed library errors and log lines use its flags
  EXPECT_EQ(cli::render_error(ParameterError("batch_size", " must be positive")),
            "--images-per-step must be positive");
  EXPECT_EQ(cli::render_error(ParameterError("model", ": missing")), "--model: missing");
  EXPECT_EQ(cli::render_error(ParameterError("max_steps", " is negative")), "--max-steps is negative");
  EXPECT_EQ(log_key("batch_size"), "--images-per-step");
  EXPECT_EQ(b.flag_of("batch_size"), "--images-per-step");
  EXPECT_EQ(cli::render_error(std::runtime_error("plain")), "plain");
  // exit codes: usage 2, failure 1, ok 0; the message is rendered with the flags
  const char* argv[] = {"x"};
  EXPECT_EQ(cli::run(app, 1, argv, [] { return 0; }), 0);
  EXPECT_EQ(cli::run(app, 1, argv, []() -> int { throw ParameterError("batch_size", " must be positive"); }),
            2);
  EXPECT_EQ(cli::run(app, 1, argv, []() -> int { throw std::runtime_error("disk full"); }), 1);
  const char* bad[] = {"x", "--images-per-step", "0x3"};
  EXPECT_EQ(cli::run(app, 3, bad, [] { return 0; }), 2);
}

}  // namespace
