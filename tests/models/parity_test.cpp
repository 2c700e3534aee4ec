// timm parity: every fixture model, through every weight format, reproduces timm's logits,
// pre-logit features and forward_features within 1e-5 (fp32 CPU).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skd/io/safetensors.h"
#include "skd/models/checkpoint.h"
#include "skd/models/swin.h"
#include "test_util.h"

using namespace skd::models;

namespace {

torch::Tensor fixture_tensor(const std::string& file, const std::string& key) {
  const auto content = skd::io::read_safetensors(skd::test::fixture("timm/" + file));
  auto it = content.tensors.find(key);
  if (it == content.tensors.end()) throw std::runtime_error(file + " lacks " + key);
  return tensor_from_record(it->second);
}

struct Case {
  std::string model;    // fixture stem
  std::string weights;  // weight file suffix
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << c.weights; }

class TimmParity : public ::testing::TestWithParam<Case> {};

TEST_P(TimmParity, LogitsFeaturesAndForwardFeaturesMatch) {
  const auto& c = GetParam();
  const std::string weights = skd::test::fixture("timm/" + c.model + c.weights);
  ASSERT_FALSE(weights.empty());
  torch::set_num_threads(2);
  auto loaded = load_model(weights, skd::test::fixture("timm/" + c.model + ".json"));
  auto& model = *loaded.model;
  model.eval();
  torch::NoGradGuard g;
  const auto input = fixture_tensor(c.model + ".input.safetensors", "input");
  ForwardOptions exact;  // parity is checked on the explicit attention (the fused one: attention_test)
  exact.attention = AttentionKernel::EXPLICIT;
  const auto feats = model.forward_features(input, exact);
  const auto pre = model.forward_head(feats, true);
  const auto logits = model.forward_head(feats, false);
  const auto out = c.model + ".output.safetensors";
  EXPECT_LE((feats - fixture_tensor(out, "forward_features")).abs().max().item<double>(), 1e-5);
  EXPECT_LE((pre - fixture_tensor(out, "features")).abs().max().item<double>(), 1e-5);
  EXPECT_LE((logits - fixture_tensor(out, "logits")).abs().max().item<double>(), 1e-5);
  // The plain forward is the same computation.
  EXPECT_TRUE(torch::equal(model.forward(input, exact), logits));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, TimmParity,
    ::testing::Values(Case{"vit_micro_32", ".safetensors"}, Case{"vit_micro_32", ".pth"},
                      Case{"swin_micro_32", ".safetensors"}, Case{"swin_micro_32", ".pth"},
                      Case{"swin_micro_32", ".legacy.safetensors"}, Case{"swin_micro_32", ".legacy.pth"},
                      Case{"deit_tiny_patch16_224", ".safetensors"}, Case{"deit_tiny_patch16_224", ".pth"}),
    [](const auto& info) {
      std::string n = info.param.model + info.param.weights;
      for (auto& ch : n)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

// Block outputs of the micro models against timm's forward hooks (debugging aid and a finer check).
TEST(TimmParity, MicroIntermediatesMatch) {
  for (const std::string name : {"vit_micro_32", "swin_micro_32"}) {
    auto loaded = load_model(skd::test::fixture("timm/" + name + ".safetensors"),
                             skd::test::fixture("timm/" + name + ".json"));
    Probes probes;
    probes.capture_blocks = true;
    ForwardOptions opt;
    opt.probes = &probes;
    opt.attention = AttentionKernel::EXPLICIT;
    torch::NoGradGuard g;
    loaded.model->eval();
    loaded.model->forward(fixture_tensor(name + ".input.safetensors", "input"), opt);
    const auto specs = block_specs(loaded.model->config());
    ASSERT_EQ(probes.blocks.size(), specs.size());
    for (const auto& s : specs) {
      const std::string key = block_prefix(loaded.model->config(), s);
      const auto expected = fixture_tensor(name + ".intermediates.safetensors", key.substr(0, key.size() - 1));
      EXPECT_LE((probes.blocks[s.index] - expected).abs().max().item<double>(), 1e-5) << name << " " << key;
    }
  }
}

TEST(SwinBuffers, RelativePositionIndexAndMaskMatchTimm) {
  const auto config = resolve_arch(skd::test::fixture("timm/swin_micro_32.json"));
  for (const auto& s : block_specs(config)) {
    const std::string p = block_prefix(config, s);
    EXPECT_TRUE(torch::equal(swin_relative_position_index(s.window),
                             fixture_tensor("swin_micro_32.buffers.safetensors", p + "attn.relative_position_index")))
        << p;
    if (s.shift > 0) {
      EXPECT_TRUE(torch::equal(swin_attention_mask(s.res_h, s.res_w, s.window, s.shift),
                               fixture_tensor("swin_micro_32.buffers.safetensors", p + "attn_mask")))
          << p;
    }
  }
}

}  // namespace
