// WPAC and the baseline criteria: statistics against a direct formula, function preservation on every
// fixture model (ViT, Swin, DeiT-Ti) and on the embedded Fashion-MNIST model, the PCA property (the
// converted model's weighted covariances are diagonal and descending), degenerate and non-finite
// input, and two ranks over Gloo reaching the single-process result.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <chrono>
#include <set>
#include <thread>

#include "skd/distributed/communicator.h"
#include "skd/eval/evaluate.h"
#include "skd/io/safetensors.h"
#include "skd/models/checkpoint.h"
#include "skd/models/slice.h"
#include "skd/wpac/wpac.h"
#include "test_dataset.h"
#include "test_util.h"

using namespace skd;

namespace {

using TensorData = test::TensorDataset;

torch::Tensor fixture_tensor(const std::string& file, const std::string& key) {
  const auto content = io::read_safetensors(test::fixture("timm/" + file));
  return models::tensor_from_record(content.tensors.at(key));
}

models::ElasticModel load_fixture(const std::string& stem) {
  return models::load_model(test::fixture("timm/" + stem + ".safetensors"), test::fixture("timm/" + stem + ".json"))
      .model;
}

models::ElasticModel clone(const models::ElasticModelImpl& m) { return models::slice_model(m, m.widths()); }

torch::Tensor logits(models::ElasticModelImpl& m, const torch::Tensor& x) {
  torch::NoGradGuard g;
  m.eval();
  return m.forward(x);
}

TensorData noise_data(const models::ModelConfig& c, int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return TensorData(torch::randn({n, c.in_chans, c.img_size, c.img_size}, gen, torch::TensorOptions()),
                    std::min<int64_t>(c.num_classes, 7));
}

wpac::ConvertOptions options(wpac::Criterion criterion, int64_t samples = 16, int64_t batch = 8) {
  wpac::ConvertOptions o;
  o.criterion = criterion;
  o.proxy.samples = samples;
  o.proxy.batch_size = batch;
  return o;
}

std::string fmnist_model() { return std::string(SKD_SOURCE_DIR) + "/assets/vit_fmnist.safetensors"; }

}  // namespace

TEST(Proxy, IndicesAreDistinctSeededAndChecked) {
  const auto a = importance::proxy_indices(100, 30, 0);
  EXPECT_EQ(a.size(), 30u);
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 30u);
  for (auto i : a) EXPECT_TRUE(i >= 0 && i < 100);
  EXPECT_EQ(a, importance::proxy_indices(100, 30, 0));
  EXPECT_NE(a, importance::proxy_indices(100, 30, 1));
  EXPECT_EQ(importance::proxy_indices(5, 5, 3).size(), 5u);
  try {
    importance::proxy_indices(10, 11, 0);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("proxy_samples 11 exceeds the 10 images"), std::string::npos);
  }
  EXPECT_THROW(importance::proxy_indices(10, 0, 0), std::invalid_argument);
}

TEST(Proxy, BatchesOverRanksCoverTheSingleProcessBatches) {
  std::vector<int64_t> idx(23);
  std::iota(idx.begin(), idx.end(), 100);
  const auto single = importance::proxy_batches(idx, 5, 0, 1);
  ASSERT_EQ(single.size(), 5u);
  EXPECT_EQ(single.back().size(), 3u);
  const auto r0 = importance::proxy_batches(idx, 5, 0, 2), r1 = importance::proxy_batches(idx, 5, 1, 2);
  ASSERT_EQ(r0.size(), 3u);
  ASSERT_EQ(r1.size(), 2u);
  EXPECT_EQ(r0[1], single[2]);
  EXPECT_EQ(r1[1], single[3]);
  try {
    importance::proxy_batches(idx, 64, 0, 1);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("smaller than one batch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("proxy_samples"), std::string::npos);
  }
}

// The accumulated sums equal the formulas of reference §2.3 computed element by element in float64
// (the library forms the element-wise products g ⊙ f in float32, hence 1e-6 relative).
TEST(Statistics, MatchTheDirectFormula) {
  torch::manual_seed(3);
  const int64_t H = 2, a = 3, R = 2, T = 5;
  wpac::Statistics s;
  s.blocks.push_back(wpac::make_block_statistics(0, H, a, 0, torch::kCPU));
  s.images = torch::zeros({}, torch::kInt64);
  const auto o = torch::TensorOptions().dtype(torch::kFloat64);
  importance::ProbedBatch pb;
  pb.images = R;
  pb.qkv_blocks = {0};
  pb.qkv = {torch::randn({R, T, 3 * H * a}) + 0.5};
  pb.qkv_grad = {torch::randn({R, T, 3 * H * a})};
  wpac::accumulate(s, pb);
  auto f = pb.qkv[0].to(torch::kFloat64).reshape({R * T, 3, H, a});
  auto g = pb.qkv_grad[0].to(torch::kFloat64).reshape({R * T, 3, H, a});
  for (int64_t h = 0; h < H; ++h) {
    torch::Tensor expect_qk = torch::zeros({a, a}, o);
    for (int64_t part = 0; part < 3; ++part) {
      auto x = f.select(1, part).select(1, h);            // [N, a]
      auto w = (x * g.select(1, part).select(1, h)).abs().mean(1);  // [N]
      auto xc = x - x.mean(0, true);
      torch::Tensor sc = torch::zeros({a, a}, o);
      for (int64_t t = 0; t < R * T; ++t) sc += w[t] * torch::outer(xc[t], xc[t]);
      if (part == 2) {
        EXPECT_TRUE(torch::allclose(s.blocks[0].scatter_v[h], sc, 1e-6, 1e-9));
      } else {
        expect_qk += sc;
      }
      torch::Tensor m = torch::zeros({a, a}, o);
      for (int64_t t = 0; t < R * T; ++t) m += w[t] * torch::outer(x[t], x[t]);
      EXPECT_TRUE(torch::allclose(s.blocks[0].moment[part][h], m, 1e-6, 1e-9));
      EXPECT_NEAR(s.blocks[0].weight[part][h].item<double>(), w.sum().item<double>(), 1e-6);
      EXPECT_TRUE(torch::allclose(s.blocks[0].fo[part][h], (x * g.select(1, part).select(1, h)).abs().sum(0), 1e-6, 1e-9));
      EXPECT_TRUE(torch::allclose(s.blocks[0].so[part][h], (0.5 * (x * g.select(1, part).select(1, h)).square()).sum(0), 1e-6, 1e-9));
    }
    EXPECT_TRUE(torch::allclose(s.blocks[0].scatter_qk[h], expect_qk, 1e-6, 1e-9));
  }
  EXPECT_EQ(s.images.item<int64_t>(), R);
}

struct PreserveCase {
  std::string stem;
  wpac::Criterion criterion;
};
void PrintTo(const PreserveCase& c, std::ostream* os) { *os << c.stem << "/" << wpac::criterion_name(c.criterion); }

class FunctionPreservation : public ::testing::TestWithParam<PreserveCase> {};

// Converted vs original logits within 1e-4 on the fixture inputs, for every criterion.
TEST_P(FunctionPreservation, LogitsUnchanged) {
  torch::set_num_threads(2);
  const auto& c = GetParam();
  auto model = load_fixture(c.stem);
  auto original = clone(*model);
  const auto data = noise_data(model->config(), 16, 5);
  const auto report = wpac::convert(*model, &data, options(c.criterion)).to_json();
  const auto input = fixture_tensor(c.stem + ".input.safetensors", "input");
  const double diff = (logits(*model, input) - logits(*original, input)).abs().max().item<double>();
  EXPECT_LE(diff, 1e-4);
  EXPECT_LE(report["function_check"]["max_abs_logit_diff"].get<double>(), 1e-4);
  // Something did change (the weights are not left as they were).
  const auto before = original->named_parameters(), after = model->named_parameters();
  double moved = 0;
  for (const auto& p : after) moved = std::max(moved, (p.value() - *before.find(p.key())).abs().max().item<double>());
  EXPECT_GT(moved, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, FunctionPreservation,
    ::testing::Values(PreserveCase{"vit_micro_32", wpac::Criterion::WPAC},
                      PreserveCase{"vit_micro_32", wpac::Criterion::TAYLOR},
                      PreserveCase{"vit_micro_32", wpac::Criterion::TAYLOR2},
                      PreserveCase{"vit_micro_32", wpac::Criterion::MAGNITUDE},
                      PreserveCase{"vit_micro_32", wpac::Criterion::RANDOM},
                      PreserveCase{"swin_micro_32", wpac::Criterion::WPAC},
                      PreserveCase{"swin_micro_32", wpac::Criterion::TAYLOR},
                      PreserveCase{"swin_micro_32", wpac::Criterion::MAGNITUDE},
                      PreserveCase{"deit_tiny_patch16_224", wpac::Criterion::WPAC}),
    [](const auto& info) {
      return info.param.stem.substr(0, info.param.stem.find('_')) + "_" +
             wpac::criterion_name(info.param.criterion);
    });

// After WPAC the features of every head, weighted by the token importances of the original model, have
// a diagonal covariance with descending diagonal (the new dims are the principal components), for ViT
// and Swin and for each centring. (The importances themselves are not rotation invariant -- the mean
// of |g ⊙ f| over dims depends on the basis -- so they are taken from the original model.)
TEST(Wpac, ConvertedFeaturesArePrincipalComponents) {
  torch::set_num_threads(2);
  for (const std::string stem : {"vit_micro_32", "swin_micro_32"}) {
    for (auto centering : {wpac::Centering::BATCH, wpac::Centering::GLOBAL, wpac::Centering::NONE}) {
      SCOPED_TRACE(stem + " " + wpac::centering_name(centering));
      auto model = load_fixture(stem);
      auto original = clone(*model);
      const auto data = noise_data(model->config(), 24, 9);
      auto o = options(wpac::Criterion::WPAC, 24, 24);  // one batch: batch centring = centring over all
      o.centering = centering;
      wpac::convert(*model, &data, o);
      const auto batches = importance::proxy_batches(importance::proxy_indices(24, 24, 0), 24, 0, 1);
      importance::ProbedBatch before, after;
      importance::run_proxy_pass(*original, data, batches, o.proxy, true, false,
                                 [&](const importance::ProbedBatch& b) { before = b; });
      importance::run_proxy_pass(*model, data, batches, o.proxy, true, false,
                                 [&](const importance::ProbedBatch& b) { after = b; });
      for (size_t i = 0; i < before.qkv.size(); ++i) {
        const int64_t H = model->config().family == models::Family::VIT
                              ? model->config().num_heads
                              : model->config().stage_heads[static_cast<size_t>(
                                    models::block_specs(model->config())[i].stage)];
        const int64_t a = before.qkv[i].size(-1) / (3 * H);
        auto x0 = before.qkv[i].to(torch::kFloat64).reshape({-1, 3, H, a});
        auto g0 = before.qkv_grad[i].to(torch::kFloat64).reshape({-1, 3, H, a});
        auto x1 = after.qkv[i].to(torch::kFloat64).reshape({-1, 3, H, a});
        auto w = (x0 * g0).abs().mean(-1);  // [N, 3, H]
        for (int64_t h = 0; h < H; ++h) {
          auto cov = [&](int64_t part) {
            auto x = x1.select(2, h).select(1, part);  // [N, a]
            auto wt = w.select(2, h).select(1, part);  // [N]
            if (centering == wpac::Centering::BATCH) {
              x = x - x.mean(0, true);
            } else if (centering == wpac::Centering::GLOBAL) {
              x = x - (x * wt.unsqueeze(1)).sum(0, true) / wt.sum();
            }
            return torch::matmul((x * wt.unsqueeze(1)).t(), x);
          };
          for (const auto& c : {cov(2), cov(0) + cov(1)}) {
            const double scale = c.diagonal().max().item<double>();
            auto off = c - torch::diag(c.diagonal());
            EXPECT_LE(off.abs().max().item<double>(), 1e-6 * scale) << "block " << i << " head " << h;
            auto d = c.diagonal();
            EXPECT_TRUE((d.narrow(0, 0, a - 1) >= d.narrow(0, 1, a - 1) - 1e-9 * scale).all().item<bool>())
                << "block " << i << " head " << h << " diagonal " << d;
          }
        }
      }
    }
  }
}

// The embedded Fashion-MNIST model: function preserved within 1e-4 on real test images, and at a
// quarter of the head dims the WPAC network is far more accurate than a random order.
TEST(Wpac, EmbeddedModelPreservedAndBeatsRandomAtOneQuarter) {
  torch::set_num_threads(2);
  auto loaded = models::load_model(fmnist_model());
  auto model = loaded.model;
  const auto& c = model->config();
  auto train = data::open_dataset("fashion-mnist", "train", c.img_size, c.in_chans);
  auto test = data::open_dataset("fashion-mnist", "test", c.img_size, c.in_chans);
  auto original = clone(*model);
  auto o = options(wpac::Criterion::WPAC, 512, 64);
  const auto report = wpac::convert(*model, train.get(), o).to_json();
  EXPECT_EQ(report["proxy"]["images"], 512);
  std::vector<int64_t> idx(256);
  std::iota(idx.begin(), idx.end(), 0);
  const auto x = test->get_batch(idx).images;
  EXPECT_LE((logits(*model, x) - logits(*original, x)).abs().max().item<double>(), 1e-4);

  auto random = clone(*original);
  wpac::convert(*random, nullptr, options(wpac::Criterion::RANDOM));
  eval::EvalOptions eo;
  eo.limit = 2000;
  eo.workers = 0;
  const auto quarter = models::keep_fraction(model->widths(), 0.25, 1.0);
  eo.widths = &quarter;
  const double acc_wpac = eval::evaluate(*model, *test, eo).top1;
  const double acc_random = eval::evaluate(*random, *test, eo).top1;
  EXPECT_GT(acc_wpac, acc_random + 10.0) << "wpac " << acc_wpac << " random " << acc_random;
}

TEST(Criteria, MagnitudeOrdersRowsByNormAndRandomIsSeeded) {
  auto model = load_fixture("vit_micro_32");
  wpac::convert(*model, nullptr, options(wpac::Criterion::MAGNITUDE));
  const auto& c = model->config();
  const int64_t H = c.num_heads, a = c.embed_dim / c.num_heads;
  for (const auto& p : model->named_parameters()) {
    if (p.key().find("attn.qkv.weight") == std::string::npos) continue;
    auto n = p.value().view({3, H, a, -1}).norm(2, -1);
    auto v = n[2], qk = n[0] + n[1];
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = 1; j < a; ++j) {
        EXPECT_GE(v[h][j - 1].item<double>(), v[h][j].item<double>() - 1e-6) << p.key();
        EXPECT_GE(qk[h][j - 1].item<double>(), qk[h][j].item<double>() - 1e-6) << p.key();
      }
  }
  auto r1 = load_fixture("vit_micro_32"), r2 = load_fixture("vit_micro_32"), r3 = load_fixture("vit_micro_32");
  auto o = options(wpac::Criterion::RANDOM);
  wpac::convert(*r1, nullptr, o);
  wpac::convert(*r2, nullptr, o);
  o.seed = 1;
  wpac::convert(*r3, nullptr, o);
  const auto k = "blocks.0.attn.qkv.weight";
  EXPECT_TRUE(torch::equal(*r1->named_parameters().find(k), *r2->named_parameters().find(k)));
  EXPECT_FALSE(torch::equal(*r1->named_parameters().find(k), *r3->named_parameters().find(k)));
}

TEST(Criteria, MlpUnitsSortedByTaylorImportance) {
  auto model = load_fixture("vit_micro_32");
  const auto data = noise_data(model->config(), 16, 2);
  auto o = options(wpac::Criterion::TAYLOR);
  wpac::convert(*model, &data, o);
  auto stats = wpac::make_statistics(*model, torch::kCPU);
  importance::run_proxy_pass(*model, data, importance::proxy_batches(importance::proxy_indices(16, 16, 0), 8, 0, 1),
                             o.proxy, false, true, [&](const importance::ProbedBatch& b) { wpac::accumulate(stats, b); });
  for (const auto& b : stats.blocks) {
    auto s = b.mlp_fo;
    EXPECT_TRUE(torch::equal(std::get<0>(s.sort(0, true)), s)) << "block " << b.block;
  }
}

// Constant q/k/v features (zero qkv weight) give zero weighted covariance: the heads are kept
// unrotated and reported, no NaN anywhere.
TEST(Wpac, DegenerateCovarianceKeepsHeadsUnrotated) {
  auto model = load_fixture("vit_micro_32");
  {
    torch::NoGradGuard g;
    model->named_parameters().find("blocks.0.attn.qkv.weight")->zero_();
  }
  auto original = clone(*model);
  const auto data = noise_data(model->config(), 16, 4);
  const auto report = wpac::convert(*model, &data, options(wpac::Criterion::WPAC)).to_json();
  EXPECT_EQ(report["degenerate_heads"].size(), static_cast<size_t>(model->config().num_heads));
  EXPECT_EQ(report["degenerate_heads"][0]["block"], 0);
  for (const auto& p : model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  const auto k = "blocks.0.attn.qkv.bias";
  EXPECT_TRUE(torch::equal(*model->named_parameters().find(k), *original->named_parameters().find(k)));
  EXPECT_LE((logits(*model, data.get_batch({0, 1, 2}).images) - logits(*original, data.get_batch({0, 1, 2}).images))
                .abs().max().item<double>(), 1e-4);
}

TEST(Wpac, BadInputIsAClearError) {
  auto model = load_fixture("vit_micro_32");
  const auto data = noise_data(model->config(), 16, 4);
  // NaN in the weights -> non-finite logits, named.
  auto poisoned = clone(*model);
  {
    torch::NoGradGuard g;
    poisoned->named_parameters().find("blocks.1.mlp.fc1.weight")->index_put_({0, 0}, NAN);
  }
  try {
    wpac::convert(*poisoned, &data, options(wpac::Criterion::WPAC));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite logits"), std::string::npos) << e.what();
  }
  // Proxy smaller than a batch, more proxy images than data, no data for a data criterion.
  EXPECT_THROW(wpac::convert(*model, &data, options(wpac::Criterion::WPAC, 4, 8)), std::invalid_argument);
  EXPECT_THROW(wpac::convert(*model, &data, options(wpac::Criterion::WPAC, 17, 8)), std::invalid_argument);
  EXPECT_THROW(wpac::convert(*model, nullptr, options(wpac::Criterion::TAYLOR)), std::invalid_argument);
  // Labels beyond the model's classes.
  TensorData many(torch::randn({16, 3, 32, 32}), model->config().num_classes + 5);
  EXPECT_THROW(wpac::convert(*model, &many, options(wpac::Criterion::WPAC)), std::invalid_argument);
  EXPECT_THROW(wpac::parse_criterion("hessian"), std::invalid_argument);
  EXPECT_THROW(wpac::parse_centering("median"), std::invalid_argument);
}

// Two ranks over Gloo (one thread each), each with half of the proxy batches, reach the same model as
// one process with all of them, and the same report statistics.
TEST(Wpac, TwoRanksMatchOneProcess) {
  if (!distributed::Communicator::gloo_available()) GTEST_SKIP() << "this LibTorch has no Gloo";
  torch::set_num_threads(1);
  auto reference = load_fixture("vit_micro_32");
  const auto data = noise_data(reference->config(), 32, 6);
  const auto single = wpac::convert(*reference, &data, options(wpac::Criterion::WPAC, 32, 8)).to_json();
  distributed::DistEnv env;
  env.world_size = 2;
  env.master_port = test::free_port();
  models::ElasticModel ranks[2] = {load_fixture("vit_micro_32"), load_fixture("vit_micro_32")};
  nlohmann::json reports[2];
  std::string errors[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto e = env;
        e.rank = e.local_rank = r;
        auto comm = distributed::Communicator::create(e, "gloo", torch::kCPU, std::chrono::seconds(30));
        reports[r] = wpac::convert(*ranks[r], &data, options(wpac::Criterion::WPAC, 32, 8), comm.get()).to_json();
      } catch (const std::exception& ex) {
        errors[r] = ex.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  EXPECT_EQ(reports[0]["proxy"]["images"], 32);
  const auto ref = reference->named_parameters();
  for (int r = 0; r < 2; ++r) {
    for (const auto& p : ranks[r]->named_parameters())
      EXPECT_LE((p.value() - *ref.find(p.key())).abs().max().item<double>(), 1e-5) << "rank " << r << " " << p.key();
  }
  const auto& a = reports[0]["blocks"][1]["attention"][0]["v"]["eigenvalues"];
  const auto& b = single["blocks"][1]["attention"][0]["v"]["eigenvalues"];
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i].get<double>(), b[i].get<double>(), 1e-9 * (1 + std::abs(b[i].get<double>())));
}
