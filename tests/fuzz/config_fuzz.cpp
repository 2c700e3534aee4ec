// Fuzz target: a --config file as the apps read it (skd::read_json_file_of's bounded parser, then
// the strict options reader of skd/core/options.h) for the option structs of skd-eval,
// skd-extract, skd-convert and skd-train, then each job's range checks that need no files
// (train::validate). Expected for bad input: skd::FormatError (not JSON, too deep, a duplicate key)
// and std::invalid_argument (unknown key, wrong type, out of range, not finite).
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "skd/core/error.h"
#include "skd/core/options.h"
#include "skd/eval/eval_job.h"
#include "skd/extract/extract_job.h"
#include "skd/io/json.h"
#include "skd/train/config.h"
#include "skd/wpac/convert_job.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skd::fuzz::run_expecting<skd::FormatError, std::invalid_argument>("config", [&] {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto j = skd::io::parse_json_bounded(text, "--config 'fuzz.json'");
    // Each struct on its own: one input is usually valid for at most one of them.
    skd::fuzz::run_expecting<std::invalid_argument>("config", [&] {
      const auto job = skd::options::resolve<skd::eval::EvalJob>({{j, "fuzz.json"}});
      if (skd::options::from_json<skd::eval::EvalJob>(skd::options::to_json(job), "round trip").limit != job.limit)
        skd::fuzz::finding("config", "EvalJob round trip changed limit");
    });
    skd::fuzz::run_expecting<std::invalid_argument>(
        "config", [&] { skd::options::resolve<skd::extract::ExtractJob>({{j, "fuzz.json"}}); });
    skd::fuzz::run_expecting<std::invalid_argument>(
        "config", [&] { skd::options::resolve<skd::wpac::ConvertJob>({{j, "fuzz.json"}}); });
    skd::fuzz::run_expecting<std::invalid_argument>("config", [&] {
      const auto c = skd::train::config_from_json(j, "fuzz.json");
      skd::train::validate(c);
    });
  });
  return 0;
}
