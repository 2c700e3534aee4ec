// ONNX export: the graph of ViT and Swin models (full, sliced with removed branches and width-8 heads)
// passes the ONNX checker and carries the manifest; folding the attention scale keeps the logits; every
// kind of selection exports the sub-network skd-extract extracts, with the same provenance; bad input
// (inconsistent artifact, op code out of range, unwritable output, failed parity) is a clear error that
// leaves no file. Numerical parity with onnxruntime is tested end to end (tests/e2e/export.sh), since it
// needs the Python environment.
#include "skd/export/onnx.h"

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "skd/core/fs.h"
#include "skd/extract/extract_job.h"
#include "skd/io/safetensors.h"
#include "skd/models/checkpoint.h"
#include "skd/models/mask_table.h"
#include "skd/models/slice.h"
#include "extract/selection_fixture.h"
#include "test_util.h"

using namespace skd;
using namespace skd::models;
namespace fs = std::filesystem;

namespace {

ModelConfig micro(Family f) {
  return named_config(f == Family::VIT ? "vit_micro_32" : "swin_micro_32");
}

// Partial, width-8 and removed branches: block 0 keeps 8 dims per head and half the MLP, block 1 has no
// attention, the last block no MLP.
Widths mixed_widths(const ModelConfig& c) {
  Widths w;
  const auto specs = block_specs(c);
  for (const auto& s : specs) {
    int64_t a = s.head_dim, m = s.mlp_hidden;
    if (s.index == 0) a = 8, m = s.mlp_hidden / 2;
    if (s.index == 1) a = 0;
    if (s.index + 1 == static_cast<int64_t>(specs.size())) m = 0;
    w.push_back({a, m});
  }
  return w;
}

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto p;
  EXPECT_TRUE(p.ParseFromString(bytes));
  return p;
}

std::string metadata(const onnx::ModelProto& p, const std::string& key) {
  for (const auto& m : p.metadata_props())
    if (m.key() == key) return m.value();
  return "";
}

bool has_initializer(const onnx::ModelProto& p, const std::string& name) {
  for (const auto& i : p.graph().initializer())
    if (i.name() == name) return true;
  return false;
}

int count_ops(const onnx::ModelProto& p, const std::string& type) {
  int n = 0;
  for (const auto& node : p.graph().node()) n += node.op_type() == type;
  return n;
}

class Export : public ::testing::TestWithParam<Family> {};

TEST_P(Export, GraphPassesCheckerAndCarriesManifest) {
  torch::manual_seed(0);
  auto full = create_model(micro(GetParam()));
  const auto w = mixed_widths(full->config());
  auto sub = slice_model(*full, w);
  const auto manifest = make_manifest(*sub, {{"tool", "test"}});
  const auto bytes = exporter::onnx_model_bytes(*sub, manifest);
  const auto p = parse(bytes);
  EXPECT_NO_THROW(onnx::checker::check_model(p));
  ASSERT_EQ(p.opset_import_size(), 1);
  EXPECT_EQ(p.opset_import(0).version(), 17);
  // Manifest: the sliced widths, the per-block scale of the original head dim.
  const auto m = nlohmann::json::parse(metadata(p, "skd_manifest"));
  EXPECT_EQ(m["family"], family_name(GetParam()));
  ASSERT_EQ(m["widths"].size(), w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(m["widths"][i][0], w[i].attn);
    EXPECT_EQ(m["widths"][i][1], w[i].mlp);
  }
  EXPECT_DOUBLE_EQ(m["attn_scale"][0].get<double>(), 1.0 / std::sqrt(16.0));
  // Dynamic batch, image input, logits output.
  const auto& in = p.graph().input(0).type().tensor_type().shape();
  EXPECT_EQ(p.graph().input(0).name(), "pixel_values");
  EXPECT_EQ(in.dim(0).dim_param(), "batch");
  EXPECT_EQ(in.dim(3).dim_value(), 32);
  EXPECT_EQ(p.graph().output(0).name(), "logits");
  EXPECT_EQ(p.graph().output(0).type().tensor_type().shape().dim(1).dim_value(), 10);
  // Removed branches leave no weights; the others are there, float32.
  const auto specs = block_specs(sub->config());
  const std::string b1 = block_prefix(sub->config(), specs[1]);
  const std::string last = block_prefix(sub->config(), specs.back());
  EXPECT_FALSE(has_initializer(p, b1 + "attn.qkv.weight.T"));
  EXPECT_FALSE(has_initializer(p, b1 + "norm1.weight"));
  EXPECT_TRUE(has_initializer(p, b1 + "mlp.fc1.weight.T"));
  EXPECT_FALSE(has_initializer(p, last + "mlp.fc1.weight.T"));
  EXPECT_TRUE(has_initializer(p, last + "attn.qkv.weight.T"));
  for (const auto& init : p.graph().initializer())
    if (init.name().find(".weight") != std::string::npos) {
      EXPECT_EQ(init.data_type(), onnx::TensorProto::FLOAT);
    }
  // One attention per kept branch (Softmax), one GELU per kept MLP (Erf), one LayerNormalization per
  // kept branch + the final norm (+ Swin: patch-embed norm and one per patch merging).
  int attn = 0, mlps = 0;
  for (const auto& b : w) attn += b.attn > 0, mlps += b.mlp > 0;
  EXPECT_EQ(count_ops(p, "Softmax"), attn);
  EXPECT_EQ(count_ops(p, "Erf"), mlps);
  const int extra_norms =
      GetParam() == Family::VIT ? 1 : 1 + 1 + static_cast<int>(sub->config().depths.size()) - 1;
  EXPECT_EQ(count_ops(p, "LayerNormalization"), attn + mlps + extra_norms);
  // The weights in the graph are the model's (transposed for MatMul).
  const std::string b0 = block_prefix(sub->config(), specs[0]);
  for (const auto& init : p.graph().initializer()) {
    if (init.name() != b0 + "attn.qkv.weight.T") continue;
    const auto qkv = sub->named_parameters()[b0 + "attn.qkv.weight"];
    ASSERT_EQ(init.dims(0), qkv.size(1));
    ASSERT_EQ(init.dims(1), qkv.size(0));
    const auto t = torch::from_blob(const_cast<char*>(init.raw_data().data()), {init.dims(0), init.dims(1)},
                                    torch::kFloat32);
    EXPECT_TRUE(torch::equal(t, qkv.t()));
  }
}

TEST_P(Export, FixedBatchAndOpsetRange) {
  torch::manual_seed(1);
  auto model = create_model(micro(GetParam()));
  exporter::GraphOptions o;
  o.batch = 4;
  const auto p = parse(exporter::onnx_model_bytes(*model, make_manifest(*model, {}), o));
  EXPECT_EQ(p.graph().input(0).type().tensor_type().shape().dim(0).dim_value(), 4);
  EXPECT_EQ(p.graph().output(0).type().tensor_type().shape().dim(0).dim_value(), 4);
  o.opset = 16;
  try {
    exporter::onnx_model_bytes(*model, make_manifest(*model, {}), o);
    FAIL() << "opset 16 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("opset 16"), std::string::npos) << e.what();
  }
  o.opset = exporter::max_opset() + 1;
  EXPECT_THROW(exporter::onnx_model_bytes(*model, make_manifest(*model, {}), o), std::invalid_argument);
}

// Folding: same logits at the stored widths and at smaller run widths, the default 1/sqrt(a) per block
// in the manifest, an artifact round trip, idempotence, and slicing a folded model.
TEST_P(Export, FoldScaleKeepsLogits) {
  torch::manual_seed(2);
  auto full = create_model(micro(GetParam()));
  const auto w = mixed_widths(full->config());
  auto sub = slice_model(*full, w);
  auto folded = slice_model(*full, w);
  fold_attention_scale(*folded);
  sub->eval();
  folded->eval();
  torch::NoGradGuard g;
  const auto x = torch::randn({2, 3, 32, 32});
  const auto ref = sub->forward(x);
  EXPECT_LE((folded->forward(x) - ref).abs().max().item<double>(), 1e-5);
  // The query weights did change (the scale is not 1/sqrt(8) for the width-8 block).
  const std::string b0 = block_prefix(sub->config(), block_specs(sub->config())[0]);
  EXPECT_FALSE(torch::allclose(folded->named_parameters()[b0 + "attn.qkv.weight"],
                               sub->named_parameters()[b0 + "attn.qkv.weight"]));
  const auto m = make_manifest(*folded, {});
  EXPECT_EQ(m["attn_scale_folded"], true);
  EXPECT_EQ(m["config"]["attn_scale_folded"], true);
  for (const auto& s : block_specs(folded->config()))
    if (w[s.index].attn > 0) {
      EXPECT_DOUBLE_EQ(m["attn_scale"][s.index].get<double>(),
                       1.0 / std::sqrt(static_cast<double>(w[s.index].attn)));
    }
  // Folding twice changes nothing.
  const auto before = folded->named_parameters()[b0 + "attn.qkv.weight"].clone();
  fold_attention_scale(*folded);
  EXPECT_TRUE(torch::equal(before, folded->named_parameters()[b0 + "attn.qkv.weight"]));
  // Round trip through an artifact.
  const auto dir = test::scratch_dir("export_fold");
  save_artifact(dir + "/folded.safetensors", *folded);
  auto loaded = load_model(dir + "/folded.safetensors");
  loaded.model->eval();
  EXPECT_LE((loaded.model->forward(x) - ref).abs().max().item<double>(), 1e-5);
  // A folded full model run at (or sliced to) smaller widths equals the unfolded one.
  auto folded_full = slice_model(*full, full->widths());
  fold_attention_scale(*folded_full);
  folded_full->eval();
  full->eval();
  ForwardOptions fo;
  fo.widths = &w;
  EXPECT_LE((folded_full->forward(x, fo) - ref).abs().max().item<double>(), 1e-5);
  auto resliced = slice_model(*folded_full, w);
  resliced->eval();
  EXPECT_LE((resliced->forward(x) - ref).abs().max().item<double>(), 1e-5);
  // The exported graph of a folded model scales by the default 1/sqrt(a).
  const auto p = parse(exporter::onnx_model_bytes(*folded, m));
  EXPECT_EQ(nlohmann::json::parse(metadata(p, "skd_manifest"))["attn_scale_folded"], true);
}

INSTANTIATE_TEST_SUITE_P(Families, Export, ::testing::Values(Family::VIT, Family::SWIN),
                         [](const auto& info) { return std::string(family_name(info.param)); });

// A super-network artifact of vit_micro_32 with a 3-code mask table.
std::string write_supernet(const std::string& dir) {
  torch::manual_seed(3);
  auto model = create_model(micro(Family::VIT));
  models::MaskTable table(model->widths());
  auto w = model->widths();
  w[3].mlp = 128;
  table.append(w);
  w[1].attn = 8;
  w[2].mlp = 0;
  table.append(w);
  const std::string path = dir + "/super.safetensors";
  save_artifact(path, *model, {}, models::supernet_manifest_entries(model->config(), table));
  return path;
}

// Runs the export job, its printed lines into `printed` (when given).
exporter::ExportResult run_export(const exporter::ExportJob& job, std::string* printed = nullptr) {
  std::FILE* f = std::tmpfile();
  struct Close {
    std::FILE* f;
    ~Close() { std::fclose(f); }
  } close{f};
  const auto r = exporter::run_export_job(job, f);
  if (printed) {
    std::rewind(f);
    printed->clear();
    for (int ch; (ch = std::fgetc(f)) != EOF;) printed->push_back(static_cast<char>(ch));
  }
  return r;
}

nlohmann::json onnx_manifest(const std::string& path) {
  onnx::ModelProto p;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(p.ParseFromIstream(&in)) << path;
  return nlohmann::json::parse(metadata(p, "skd_manifest"));
}

TEST(ExportApi, SelectsAnOpCodeLikeExtract) {
  const auto dir = test::scratch_dir("export_select");
  exporter::ExportJob o;
  o.model = write_supernet(dir);
  o.selection.op_code = -1;
  o.out = dir + "/sub.onnx";
  std::string printed;
  const auto r = run_export(o, &printed);
  ASSERT_TRUE(r.op_code.has_value());
  EXPECT_EQ(*r.op_code, 2);
  EXPECT_EQ(r.widths[1].attn, 8);
  EXPECT_EQ(r.widths[2].mlp, 0);
  EXPECT_NE(printed.find("op code 2 of 0..2\nwrote " + o.out + ": "), std::string::npos) << printed;
  const auto m = onnx_manifest(o.out);
  EXPECT_EQ(m["op_code"], 2);
  EXPECT_EQ(m["provenance"]["op_code"], 2);
  EXPECT_EQ(m["provenance"]["extracted_from"], o.model);
  EXPECT_EQ(m["provenance"]["source_sha256"], models::file_sha256(o.model));
  EXPECT_EQ(m["macs"]["paper"], r.cost.macs_paper);
  EXPECT_EQ(m["onnx"]["batch"], "dynamic");
  EXPECT_EQ(fs::file_size(o.out), r.bytes);
  // A MACs budget picks the same code as skd-extract's lookup.
  o.selection.op_code.reset();
  o.selection.macs = Macs{r.cost.macs_paper};
  EXPECT_EQ(run_export(o).op_code.value_or(-9), 2);
}

// Every kind of selection exports, and export and extract (the same job keys) give the same code,
// widths and provenance: the one resolution and slicing they share.
TEST(ExportApi, EveryKindOfSelectionAsExtract) {
  const auto dir = test::scratch_dir("export_kinds");
  const auto sn = test::write_selection_supernet(dir);
  const auto costs = models::code_costs(models::load_model(sn.path).model->config(), test::selection_table());
  const auto kind = [](const std::string& name, auto set) {
    extract::SubnetSelection s;
    set(s);
    return std::pair<std::string, extract::SubnetSelection>{name, s};
  };
  const std::vector<std::pair<std::string, extract::SubnetSelection>> kinds = {
      kind("op_code", [](auto& s) { s.op_code = 3; }),
      kind("macs", [&](auto& s) { s.macs = Macs{costs[2].macs_paper}; }),
      kind("ratio", [](auto& s) { s.macs_ratio = MacsRatio::from_text("4:12"); }),
      kind("latency", [](auto& s) { s.latency = Duration::from_text("5ms"); }),
      kind("widths", [](auto& s) { s.widths = "16:256,8:128,0:256,16:0"; }),
      kind("keep", [](auto& s) { s.attn_keep = 0.5, s.mlp_keep = 0.25; }),
      kind("none", [](auto&) {})};
  for (const auto& [name, selection] : kinds) {
    SCOPED_TRACE(name);
    exporter::ExportJob e;
    e.model = sn.path;
    e.selection = selection;
    e.out = dir + "/" + name + ".onnx";
    const auto r = run_export(e);
    extract::ExtractJob x;
    x.model = sn.path;
    x.selection = selection;
    x.out = dir + "/" + name + ".safetensors";
    std::FILE* null = std::fopen("/dev/null", "w");
    extract::run_extract_job(x, null);
    std::fclose(null);
    const auto extracted = models::load_model(x.out);
    EXPECT_EQ(r.widths, extracted.model->widths());
    const auto onnx = onnx_manifest(e.out);
    auto exported_provenance = onnx["provenance"], extracted_provenance = extracted.manifest["provenance"];
    exported_provenance.erase("created");  // when each file was written
    extracted_provenance.erase("created");
    EXPECT_EQ(exported_provenance, extracted_provenance);
    EXPECT_EQ(exported_provenance.at("source_sha256"), sn.sha256);
    EXPECT_EQ(onnx["widths"], extracted.manifest["widths"]);
    EXPECT_EQ(r.op_code.has_value(), selection.by_table());
    if (r.op_code) {
      EXPECT_EQ(onnx["op_code"], extracted.manifest["provenance"]["op_code"]);
    }
  }
  // 4:12 and 4/12 and the latency budget at a fixed graph batch (4: twice as slow, a smaller code).
  exporter::ExportJob e;
  e.model = sn.path;
  e.out = dir + "/b.onnx";
  e.selection.macs_ratio = MacsRatio::from_text("4/12");
  const auto slash = run_export(e).op_code;
  e.selection.macs_ratio = MacsRatio::from_text("4:12");
  EXPECT_EQ(run_export(e).op_code, slash);
  e.selection.macs_ratio.reset();
  e.selection.latency = Duration::from_text("5ms");
  EXPECT_EQ(run_export(e).op_code.value_or(-9), 4);
  e.batch = "4";
  const auto r = run_export(e);
  EXPECT_EQ(r.op_code.value_or(-9), 5);
  EXPECT_EQ(r.manifest["provenance"]["latency"]["batch_size"], 4);
  EXPECT_EQ(r.manifest["onnx"]["batch"], 4);
}

TEST(ExportApi, BadInputIsAClearErrorAndLeavesNoFile) {
  const auto dir = test::scratch_dir("export_bad");
  const auto super = write_supernet(dir);
  exporter::ExportJob o;
  o.model = super;
  o.out = dir + "/out.onnx";
  // Op code out of range.
  o.selection.op_code = 7;
  EXPECT_NE(test::error_of([&] { run_export(o); }).find("0..2"), std::string::npos);
  EXPECT_THROW(run_export(o), std::invalid_argument);
  o.selection.op_code.reset();
  // Two selectors; a mask table without a selector; a negative tolerance.
  o.selection.op_code = 1;
  o.selection.macs_ratio = MacsRatio::from_text("0.5");
  EXPECT_NE(test::error_of([&] { run_export(o); }).find("give at most one of"), std::string::npos);
  o.selection.op_code.reset();
  o.selection.macs_ratio.reset();
  o.selection.mask_table = dir + "/table.json";
  EXPECT_NE(test::error_of([&] { run_export(o); }).find("mask_table"), std::string::npos);
  o.selection.mask_table.clear();
  o.tolerance = -1;
  EXPECT_NE(test::error_of([&] { run_export(o); }).find("tolerance must be >= 0"), std::string::npos);
  o.tolerance = 1e-4;
  // Unwritable output: a folder that does not exist, and a read-only folder.
  o.out = dir + "/missing/out.onnx";
  EXPECT_NE(test::error_of([&] { run_export(o); }).find(dir + "/missing"), std::string::npos);
  fs::create_directories(dir + "/ro");
  chmod((dir + "/ro").c_str(), 0555);
  o.out = dir + "/ro/out.onnx";
  if (access((dir + "/ro").c_str(), W_OK) !=
      0) {  // root can write anywhere; the check only makes sense otherwise
    EXPECT_THROW(run_export(o), std::runtime_error);
  }
  chmod((dir + "/ro").c_str(), 0755);
  // An artifact whose manifest widths disagree with its tensors.
  auto content = io::read_safetensors(super);
  auto manifest = nlohmann::json::parse(content.metadata.at("skd_manifest"));
  manifest["config"]["widths"][0] = {8, 256};
  content.metadata["skd_manifest"] = manifest.dump();
  io::write_safetensors(dir + "/inconsistent.safetensors", content);
  o.model = dir + "/inconsistent.safetensors";
  o.out = dir + "/out.onnx";
  const auto msg = test::error_of([&] { run_export(o); });
  EXPECT_NE(msg.find("inconsistent.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("blocks.0.attn.qkv.weight"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/out.onnx"));
  EXPECT_FALSE(fs::exists(dir + "/missing"));
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().extension(), e.is_directory() ? "" : ".safetensors") << e.path();
}

// The parity decision with stand-in interpreters: a difference above the tolerance, a Python without
// onnxruntime (exit 3), an interpreter that does not exist. None writes the output.
TEST(ExportApi, ParityFailuresWriteNothing) {
  const auto dir = test::scratch_dir("export_parity");
  exporter::ExportJob o;
  o.model = write_supernet(dir);
  o.selection.op_code = 1;
  o.out = dir + "/out.onnx";
  o.verify = true;
  auto script = [&](const std::string& name, const std::string& body) {
    const std::string path = dir + "/" + name;
    write_file_atomic(path, "#!/bin/sh\n" + body + "\n");
    chmod(path.c_str(), 0755);
    return path;
  };
  o.python = script("far",
                    "echo '{\"max_abs_diff\": 0.5, \"inputs\": {\"b2\": [2,3,32,32]}, "
                    "\"onnxruntime\": \"9.9\"}'");
  auto msg = test::error_of([&] { run_export(o); });
  EXPECT_NE(msg.find("verify failed: parity: max |logit diff| 0.5 > 1e-04"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nothing was written"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(o.out));
  o.python = script("no_ort", "echo \"No module named 'onnxruntime'\" >&2; exit 3");
  msg = test::error_of([&] { run_export(o); });
  EXPECT_NE(msg.find("bash scripts/setup_venv.sh"), std::string::npos) << msg;
  EXPECT_NE(msg.find("python"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pip install onnxruntime"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(o.out));
  o.python = dir + "/no_such_python";
  msg = test::error_of([&] { run_export(o); });
  EXPECT_NE(msg.find("no_such_python"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(o.out));
  // A passing stand-in lets the file through, and the parity line reports what it measured.
  o.python = script("near",
                    "echo '{\"max_abs_diff\": 1e-7, \"inputs\": {\"b2\": [2,3,32,32], \"b1\": "
                    "[1,3,32,32]}, \"onnxruntime\": \"9.9\"}'");
  const auto r = run_export(o);
  ASSERT_TRUE(r.parity.has_value());
  EXPECT_NE(r.parity->line().find("on inputs [2,3,32,32] [1,3,32,32], onnxruntime 9.9"), std::string::npos)
      << r.parity->line();
  EXPECT_TRUE(fs::exists(o.out));
}

}  // namespace
