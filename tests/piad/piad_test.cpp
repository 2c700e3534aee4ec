// PIAD on a tiny model: table updates against the cumulative budget, no double update of a resumed
// epoch, sampling over every code, a PIAD run (train::train_piad) stopped mid-epoch and resumed from
// its checkpoint (mask table restored from the manifest, piad.jsonl and mask_table.json of the run
// directory as after an uninterrupted run) equal to the uninterrupted run, the sandwich rule, and
// Swin through updates, training and extraction.
#include "skd/piad/piad.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <set>

#include "extraction_check.h"
#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/models/slice.h"
#include "skd/train/checkpointing.h"
#include "skd/train/piad_training.h"
#include "skd/train/trainer.h"
#include "test_dataset.h"
#include "test_util.h"
#include "train/tiny_training.h"

using namespace skd;

namespace {

piad::PiadOptions tiny_options() {
  piad::PiadOptions o;
  o.progressive_epochs = 2;
  o.budget_ratio = 0.5;
  o.attn_group = 2;  // head dim 8 -> 4 units
  o.mlp_groups = 8;  // hidden 32 -> groups of 4
  o.proxy_samples = 32;
  o.proxy_batch = 16;
  return o;
}

// Piad::update_table as its piad.jsonl line (null when nothing was updated): the checks read it by key.
nlohmann::json update_json(piad::Piad& p, int64_t epoch, models::ElasticModelImpl& model,
                           const data::Dataset& data, distributed::Communicator* comm) {
  const auto record = p.update_table(epoch, model, data, comm);
  return record ? record->to_json() : nlohmann::json(nullptr);
}

// tiny_options() as the config of a PIAD training run.
void set_tiny_piad(train::TrainConfig& c) {
  c.mode = train::Mode::PIAD;
  c.piad = tiny_options();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST(Piad, UpdatesFollowTheCumulativeBudget) {
  torch::set_num_threads(1);
  test::TinyData data(64);
  auto model = test::tiny_model();
  const auto& c = model->config();
  piad::Piad p(c, model->widths(), tiny_options());
  const double full = static_cast<double>(models::macs_count(c).macs_paper);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const auto rec = update_json(p, epoch, *model, data, nullptr);
    ASSERT_FALSE(rec.is_null());
    const double removed = full - static_cast<double>(models::macs_count(c, p.table().widths(-1)).macs_paper);
    EXPECT_LE(removed, 0.5 * full * (epoch + 1) / 2 + 1e-6) << "epoch " << epoch;
    // An epoch may add nothing when its first-ranked operation exceeds the budget (the budget carries
    // over); by the end of the phase something is removed.
    if (epoch == 1) { EXPECT_GT(removed, 0.0); }
    EXPECT_DOUBLE_EQ(rec["macs_removed"].get<double>(), removed);
    for (const auto& g : rec["gamma"])
      for (const char* part : {"attn", "mlp"})
        if (!g[part].is_null()) { EXPECT_TRUE(std::isfinite(g[part].get<double>())); }
    EXPECT_TRUE(update_json(p, epoch, *model, data, nullptr).is_null()) << "updated twice";
  }
  EXPECT_TRUE(update_json(p, 2, *model, data, nullptr).is_null()) << "past the progressive phase";
  // Widths never grow with the code; cut points are multiples of the unit size.
  const auto& t = p.table();
  ASSERT_GT(t.last_code(), 1);
  for (int64_t k = 1; k <= t.last_code(); ++k)
    for (size_t b = 0; b < t.widths(k).size(); ++b) {
      EXPECT_LE(t.widths(k)[b].attn, t.widths(k - 1)[b].attn);
      EXPECT_LE(t.widths(k)[b].mlp, t.widths(k - 1)[b].mlp);
      EXPECT_EQ(t.widths(k)[b].attn % 2, 0);
      EXPECT_EQ(t.widths(k)[b].mlp % 4, 0);
    }
  // Sampling covers the full network and the current smallest one.
  data::Rng rng(3);
  std::set<const models::Widths*> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(p.sample(rng));
  EXPECT_EQ(static_cast<int64_t>(seen.size()), t.last_code() + 1);
  EXPECT_TRUE(seen.count(&t.widths(0)) && seen.count(&t.widths(-1)));
}

TEST(Piad, ResumedRunEqualsUninterruptedRun) {
  torch::set_num_threads(1);
  test::TinyData data(32);
  auto cfg_for = [](const std::string& dir) {
    auto c = test::tiny_config(dir);
    c.eval = false;
    c.model_ema = false;
    c.drop_path = 0;
    set_tiny_piad(c);
    return c;
  };
  // Uninterrupted: 3 epochs of 4 steps, table updates before epochs 0 and 1.
  const auto dir_a = test::scratch_dir("piad_uninterrupted");
  auto a = test::tiny_model();
  const auto ra = train::train_piad(*a, data, nullptr, cfg_for(dir_a));

  // Stopped after 6 steps (mid-epoch 2, after the second update), then resumed.
  const auto dir_b = test::scratch_dir("piad_resumed");
  auto b = test::tiny_model();
  train::TrainContext cb;
  cb.max_steps = 6;
  const auto rb = train::train_piad(*b, data, nullptr, cfg_for(dir_b), cb);
  ASSERT_TRUE(rb.stopped_at_max_steps);
  const auto ckpt = train::resolve_resume_path(dir_b);
  const auto state = train::read_training_state(ckpt);
  auto b2 = test::tiny_model();
  auto pb2 = piad::Piad::from_manifest(b2->config(), b2->widths(), train::piad_options(cfg_for(dir_b), torch::kCPU),
                                       state.manifest, ckpt);
  EXPECT_EQ(pb2.next_update_epoch(), 2);
  EXPECT_EQ(pb2.table().last_code(), rb.mask_table.last_code());
  train::TrainContext cb2;
  cb2.resume = ckpt;
  const auto rb2 = train::train_piad(*b2, data, nullptr, cfg_for(dir_b), cb2);

  EXPECT_EQ(ra.mask_table.to_json(), rb2.mask_table.to_json());
  const auto wa = a->named_parameters(), wb = b2->named_parameters();
  for (const auto& p : wa) EXPECT_TRUE(torch::equal(p.value(), *wb.find(p.key()))) << p.key();
  // The final artifact is a super-network: its manifest carries the table.
  const auto art = models::load_model(dir_a + "/model.safetensors");
  ASSERT_TRUE(art.manifest.contains("mask_table"));
  EXPECT_EQ(art.manifest.at("op_codes").size(), static_cast<size_t>(ra.mask_table.last_code() + 1));
  // The run directories: one piad.jsonl record per update (the resumed run made none twice) and
  // mask_table.json holding the final table.
  const auto log_a = lines_of(dir_a + "/piad.jsonl");
  ASSERT_EQ(log_a.size(), 2u);
  EXPECT_EQ(lines_of(dir_b + "/piad.jsonl"), log_a);
  EXPECT_EQ(nlohmann::json::parse(log_a.back())["codes"][1].get<int64_t>(), ra.mask_table.last_code());
  for (const auto& dir : {dir_a, dir_b}) {
    std::ifstream in(dir + "/mask_table.json");
    ASSERT_TRUE(in) << dir;
    EXPECT_EQ(models::MaskTable::from_json(nlohmann::json::parse(in), a->widths(), dir).to_json(),
              ra.mask_table.to_json()) << dir;
  }
}

// The sandwich rule adds the full network (code 0) and the current smallest (code K) to every step.
TEST(Piad, SandwichStepsTrainFullAndSmallest) {
  torch::set_num_threads(1);
  test::TinyData data(32);
  auto model = test::tiny_model();
  auto opts = tiny_options();
  opts.sandwich = true;
  piad::Piad p(model->config(), model->widths(), opts);
  data::Rng r0(5);
  ASSERT_EQ(p.step_subnets(r0).size(), 1u) << "only code 0 before the first update";
  update_json(p, 0, *model, data, nullptr);
  update_json(p, 1, *model, data, nullptr);
  const auto& t = p.table();
  ASSERT_GT(t.last_code(), 0);
  data::Rng a(9), b(9);
  const auto s = p.step_subnets(a);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0], &t.widths(0));
  EXPECT_EQ(s[1], &t.widths(t.last_code()));
  EXPECT_EQ(s[2], p.sample(b)) << "the third is the uniformly sampled code";
  opts.sandwich = false;
  piad::Piad plain(model->config(), model->widths(), opts, t, 2);
  data::Rng c(9), d(9);
  const auto one = plain.step_subnets(c);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], plain.sample(d));
}

namespace {

// 3x32x32 standard-normal images (seed 21), labels i % classes.
test::TensorDataset random_images(int64_t n, int64_t classes) {
  torch::manual_seed(21);
  return test::TensorDataset(torch::randn({n, 3, 32, 32}), classes, "random 3x32x32");
}

}  // namespace

// Swin through the whole PIAD path: table updates (window attention, two stages of different
// widths), sandwich training steps with zeroed gradients of removed parts, and every code's
// extracted sub-network equal to the super-network's sliced forward.
TEST(Piad, SwinSuperNetworkTrainsAndExtracts) {
  torch::set_num_threads(2);
  auto loaded = models::load_model(test::fixture("timm/swin_micro_32.safetensors"),
                                   test::fixture("timm/swin_micro_32.json"));
  auto& model = *loaded.model;
  const auto data = random_images(32, model.config().num_classes);
  auto cfg = test::tiny_config(test::scratch_dir("piad_swin"));
  cfg.epochs = 2;
  cfg.eval = false;
  cfg.model_ema = false;
  cfg.mode = train::Mode::PIAD;
  cfg.piad.progressive_epochs = 2;
  cfg.piad.budget_ratio = 0.6;
  cfg.piad.attn_group = 4;  // head dim 16 -> 4 units
  cfg.piad.mlp_groups = 8;
  cfg.piad.proxy_samples = 16;
  cfg.piad.proxy_batch = 8;
  cfg.piad.sandwich = true;
  const auto before = model.named_parameters()["layers.0.blocks.0.attn.qkv.weight"].detach().clone();
  const auto r = train::train_piad(model, data, nullptr, cfg);
  EXPECT_EQ(r.steps, 8);
  EXPECT_TRUE(std::isfinite(r.last_loss));
  EXPECT_FALSE(torch::equal(before, model.named_parameters()["layers.0.blocks.0.attn.qkv.weight"]));
  const auto& t = r.mask_table;
  ASSERT_GT(t.last_code(), 1);
  const double full = static_cast<double>(models::macs_count(model.config()).macs_paper);
  const double smallest = static_cast<double>(models::macs_count(model.config(), t.widths(-1)).macs_paper);
  EXPECT_GE(smallest, 0.4 * full - 1e-6) << "removed more than the budget";
  EXPECT_LT(smallest, full);

  test::expect_every_code_extracts(model, t, torch::randn({2, 3, 32, 32}));
}
