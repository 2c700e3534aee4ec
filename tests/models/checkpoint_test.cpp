// Checkpoint loading: artifact round trips, foreign checkpoints, and bad input that must give a
// clear error naming the file and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>

#include "skd/core/error.h"
#include "skd/core/fs.h"
#include "skd/io/safetensors.h"
#include "skd/models/checkpoint.h"
#include "skd/models/slice.h"
#include "test_util.h"

using namespace skd::models;
namespace io = skd::io;

namespace {

std::string micro_weights() { return skd::test::fixture("timm/vit_micro_32.safetensors"); }
std::string micro_arch() { return skd::test::fixture("timm/vit_micro_32.json"); }

// Loads the micro weights, lets `edit` damage them, writes them to a scratch file and returns
// the error message of loading it (or "" when it loads).
std::string load_error(const std::string& name, const std::function<void(io::TensorMap&)>& edit) {
  auto content = io::read_safetensors(micro_weights());
  edit(content.tensors);
  const auto path = skd::test::scratch_dir("checkpoint_test") + "/" + name + ".safetensors";
  io::write_safetensors(path, content);
  try {
    load_model(path, micro_arch());
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(name + ".safetensors"), std::string::npos) << "message lacks the file: " << msg;
    return msg;
  }
  return "";
}

TEST(Checkpoint, ArtifactRoundTripNeedsNoArch) {
  auto loaded = load_model(micro_weights(), micro_arch());
  const auto dir = skd::test::scratch_dir("checkpoint_rt");
  const auto path = dir + "/model.safetensors";
  save_artifact(path, *loaded.model, {{"source", micro_weights()}});
  auto again = load_model(path);
  EXPECT_EQ(again.manifest["format"], "skd-artifact");
  EXPECT_EQ(again.manifest["family"], "vit");
  EXPECT_EQ(again.manifest["macs"]["params"], 208074);
  EXPECT_EQ(again.manifest["provenance"]["source"], micro_weights());
  torch::NoGradGuard g;
  loaded.model->eval();
  again.model->eval();
  const auto x = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::equal(loaded.model->forward(x), again.model->forward(x)));
  // Serialization is deterministic apart from the creation time.
  const auto a = state_dict(*loaded.model), b = state_dict(*again.model);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) EXPECT_EQ(v.data, b.at(k).data) << k;
  // A matching --arch is accepted, a contradicting one is refused.
  EXPECT_NO_THROW(load_model(path, micro_arch()));
  EXPECT_THROW(load_model(path, "deit_tiny"), std::invalid_argument);
}

TEST(Checkpoint, SlicedArtifactKeepsWidthsAndFunction) {
  auto loaded = load_model(skd::test::fixture("timm/swin_micro_32.safetensors"),
                           skd::test::fixture("timm/swin_micro_32.json"));
  Widths w = loaded.model->widths();
  w[0] = {8, 64};
  w[3] = {0, 128};
  auto sliced = slice_model(*loaded.model, w);
  const auto path = skd::test::scratch_dir("checkpoint_sliced") + "/sub.safetensors";
  save_artifact(path, *sliced);
  auto back = load_model(path);
  EXPECT_EQ(back.model->widths(), w);
  torch::NoGradGuard g;
  const auto x = torch::randn({1, 3, 32, 32});
  ForwardOptions opt;
  opt.widths = &w;
  loaded.model->eval();
  back.model->eval();
  EXPECT_LE((back.model->forward(x) - loaded.model->forward(x, opt)).abs().max().item<double>(), 1e-5);
}

TEST(Checkpoint, ForeignFileWithoutArchIsRefused) {
  try {
    load_model(micro_weights());
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("pass arch with"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, ReducedShapesInferWidths) {
  // A foreign sub-network (official peeled layout: smaller shapes, removed keys) loads by --arch.
  auto loaded = load_model(micro_weights(), micro_arch());
  Widths w = loaded.model->widths();
  w[2] = {0, 96};
  auto sliced = slice_model(*loaded.model, w);
  io::SafetensorsContent content;
  content.tensors = state_dict(*sliced);
  const auto path = skd::test::scratch_dir("checkpoint_peeled") + "/peeled.safetensors";
  io::write_safetensors(path, content);
  EXPECT_EQ(load_model(path, micro_arch()).model->widths(), w);
}

TEST(Checkpoint, MissingKeyIsNamed) {
  const auto msg = load_error("missing", [](io::TensorMap& t) { t.erase("blocks.1.norm2.bias"); });
  EXPECT_NE(msg.find("blocks.1.norm2.bias"), std::string::npos) << msg;
}

TEST(Checkpoint, UnexpectedKeyIsNamed) {
  const auto msg = load_error("unexpected", [](io::TensorMap& t) { t["dist_token"] = t.at("cls_token"); });
  EXPECT_NE(msg.find("dist_token"), std::string::npos) << msg;
}

TEST(Checkpoint, ShapeMismatchIsNamed) {
  const auto msg = load_error("shape", [](io::TensorMap& t) { t["head.bias"].shape = {5, 2}; });
  EXPECT_NE(msg.find("head.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[5, 2]"), std::string::npos) << msg;
}

TEST(Checkpoint, WrongDtypeIsNamed) {
  const auto msg = load_error("dtype", [](io::TensorMap& t) { t["head.bias"].dtype = io::DType::I32; });
  EXPECT_NE(msg.find("head.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("I32"), std::string::npos) << msg;
}

TEST(Checkpoint, NonFiniteWeightsAreRefused) {
  const auto msg = load_error("nan", [](io::TensorMap& t) {
    auto& r = t["blocks.0.attn.proj.weight"];
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::memcpy(r.data.data(), &nan, 4);
    std::memcpy(r.data.data() + 8, &inf, 4);
  });
  EXPECT_NE(msg.find("blocks.0.attn.proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 non-finite"), std::string::npos) << msg;
}

TEST(Checkpoint, HalfAndBfloatWeightsAreConverted) {
  auto content = io::read_safetensors(micro_weights());
  auto ref = load_model(micro_weights(), micro_arch());
  for (auto dtype : {torch::kFloat16, torch::kBFloat16}) {
    io::SafetensorsContent c = content;
    for (auto& [k, r] : c.tensors) r = record_from_tensor(tensor_from_record(r).to(dtype));
    const auto path = skd::test::scratch_dir("checkpoint_half") + "/w.safetensors";
    io::write_safetensors(path, c);
    auto m = load_model(path, micro_arch());
    const auto p = m.model->named_parameters(true)["blocks.0.mlp.fc1.weight"];
    const auto r = ref.model->named_parameters(true)["blocks.0.mlp.fc1.weight"];
    EXPECT_LE((p - r).abs().max().item<double>(), dtype == torch::kFloat16 ? 1e-3 : 1e-2);
  }
}

TEST(Checkpoint, CorruptFilesGiveFormatErrors) {
  const auto dir = skd::test::scratch_dir("checkpoint_corrupt");
  const auto bytes = skd::read_file_bytes(micro_weights());
  const auto path = dir + "/truncated.safetensors";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size() / 2);
  try {
    load_model(path, micro_arch());
    FAIL();
  } catch (const skd::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_model(dir + "/does_not_exist.pth", micro_arch()), std::runtime_error);
}

TEST(Checkpoint, ForeignManifestIsValidated) {
  auto content = io::read_safetensors(micro_weights());
  content.metadata[kManifestKey] = "{\"format\": \"something-else\"}";
  const auto path = skd::test::scratch_dir("checkpoint_manifest") + "/m.safetensors";
  io::write_safetensors(path, content);
  EXPECT_THROW(load_model(path), skd::FormatError);
  content.metadata[kManifestKey] = "{\"format\": \"skd-artifact\", \"format_version\": 99}";
  io::write_safetensors(path, content);
  try {
    load_model(path);
    FAIL();
  } catch (const skd::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("format_version 99"), std::string::npos) << e.what();
  }
}

// Fuzzing finding (manifest target): a manifest field of another JSON type escaped parse_manifest
// as nlohmann's type_error, without the file's name.
TEST(Checkpoint, ManifestFieldsOfWrongTypeAreFormatErrors) {
  const std::string path = "artifact.safetensors";
  for (const char* text : {R"({"format": "skd-artifact", "format_version": "swin"})",
                           R"({"format": 5, "format_version": 1})",
                           R"({"format": "skd-artifact", "format_version": 1.5})",
                           R"({"format": "skd-artifact", "format_version": 1e300})",
                           R"({"format": "skd-artifact"})", R"(["skd-artifact"])"}) {
    try {
      parse_manifest(text, path);
      ADD_FAILURE() << "accepted " << text;
    } catch (const skd::FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_manifest(R"({"format": "skd-artifact", "format_version": 1})", path).at("format_version"), 1);
}

// Issue 25: a manifest nested 100,000 deep (e.g. its provenance) crashed every app in nlohmann's
// recursive destruction; duplicate keys were silently the last; a string where an object belongs
// escaped as nlohmann's type_error.305 later. All three are FormatErrors naming the file and key.
TEST(Checkpoint, HostileManifestsAreFormatErrorsNamingFileAndKey) {
  const std::string path = "artifact.safetensors";
  const std::string head = R"({"format": "skd-artifact", "format_version": 1, "provenance": )";
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1" + std::string(100000, '}');
  auto message = [&](const std::string& text) {
    try {
      parse_manifest(text, path);
    } catch (const skd::FormatError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(message(head + deep + "}"), path + ": __metadata__ key 'skd_manifest' nests deeper than 256 levels "
                                               "(the limit for JSON the toolkit reads)");
  EXPECT_EQ(message(head + "{}, \"provenance\": {}}"),
            path + ": __metadata__ key 'skd_manifest' has the key 'provenance' twice in one object (duplicate "
                   "keys are refused)");
  EXPECT_EQ(message(head + "\"x\"}"), path + ": manifest key 'provenance' is string \"x\", expected object");
  EXPECT_EQ(message(head + "{}, \"config\": [1]}"), path + ": manifest key 'config' is array [1], expected object");
  const std::string big(1 << 20, 'y');
  const auto m = message(head + "\"" + big + "\"}");
  EXPECT_LT(m.size(), 300u);
  EXPECT_NE(m.find("... (1048578 bytes)"), std::string::npos) << m;
}

// A manifest describing a model far larger than the weights in its file is refused before the
// model is built; it used to be allocated in full (here ~3 TB) before the missing keys showed.
TEST(Checkpoint, ManifestClaimingAHugeModelIsRefusedBeforeBuilding) {
  io::SafetensorsContent content;
  io::TensorRecord r;
  r.shape = {4};
  r.data.resize(16);
  content.tensors["cls_token"] = r;
  const nlohmann::json config = {{"family", "vit"}, {"embed_dim", 16384}, {"depth", 256}, {"num_heads", 16},
                                 {"mlp_ratio", 16.0}};
  content.metadata[kManifestKey] =
      nlohmann::json{{"format", "skd-artifact"}, {"format_version", 1}, {"config", config}}.dump();
  const auto path = skd::test::scratch_dir("checkpoint_huge") + "/huge.safetensors";
  io::write_safetensors(path, content);
  try {
    load_model(path);
    FAIL() << "loaded";
  } catch (const skd::FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("huge.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("refused before building the model"), std::string::npos) << msg;
  }
}

}  // namespace

// Found by the loader fuzzer (issue 25): the N of a legacy 'layers.N.downsample.*' key was read with
// std::stoll, which took " 1", "+1" and "1a" and threw std::invalid_argument / out_of_range (not a
// FormatError) on "" or a huge number. Only plain digits 0..kMaxStages-1 are stages now.
TEST(Checkpoint, LegacySwinStageNumbersAreStrict) {
  const auto config = named_config("swin_micro_32");
  auto legacy = [](const std::string& extra) {
    io::TensorMap t;
    t["layers.0.downsample.reduction.weight"] = {};
    t["head.weight"] = {};
    t[extra] = {};
    return t;
  };
  const std::string huge = "99999999999999999999";
  const std::vector<std::string> bad = {"", " 1", "+1", "1a", "-1", "01", "00", "8", "10", huge, "\xd9\xa1", "1\n"};
  for (const std::string& n : bad) {
    const std::string key = "layers." + n + ".downsample.norm.weight";
    auto t = legacy(key);
    std::string msg;
    try {
      normalize_keys(config, t, "old.pth");
      ADD_FAILURE() << "accepted '" << n << "'";
    } catch (const skd::FormatError& e) {
      msg = e.what();
    }
    EXPECT_NE(msg.find("old.pth: key '" + key + "': the stage number of a legacy Swin key must be 0..7"),
              std::string::npos)
        << msg;
  }
  for (const std::string n : {"0", "1", "7"}) {
    auto t = legacy("layers." + n + ".downsample.norm.weight");
    EXPECT_NO_THROW(normalize_keys(config, t, "old.pth"));
    EXPECT_EQ(t.count("layers." + std::to_string(std::stoi(n) + 1) + ".downsample.norm.weight"), 1u) << n;
    EXPECT_EQ(t.count("head.fc.weight"), 1u);
  }
  // Through load_model the error names the file.
  auto content = io::read_safetensors(skd::test::fixture("timm/swin_micro_32.legacy.safetensors"));
  auto node = content.tensors.extract("layers.0.downsample.norm.weight");
  ASSERT_FALSE(node.empty());
  node.key() = "layers.+0.downsample.norm.weight";
  content.tensors.insert(std::move(node));
  const auto path = skd::test::scratch_dir("checkpoint_test") + "/legacy_plus.safetensors";
  io::write_safetensors(path, content);
  try {
    load_model(path, skd::test::fixture("timm/swin_micro_32.json"));
    ADD_FAILURE() << "loaded";
  } catch (const skd::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("legacy_plus.safetensors: key 'layers.+0.downsample.norm.weight'"),
              std::string::npos)
        << e.what();
  }
}
