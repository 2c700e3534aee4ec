// PIAD on a tiny model: table updates against the cumulative budget, no double update of a resumed
// epoch, sampling over every code, and a PIAD run stopped mid-epoch and resumed from its checkpoint
// (mask table restored from the manifest) equal to the uninterrupted run.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <set>

#include "skd/models/checkpoint.h"
#include "skd/models/macs.h"
#include "skd/piad/piad.h"
#include "skd/train/checkpointing.h"
#include "skd/train/trainer.h"
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

// Wires a Piad into a TrainContext the way skd-train does.
void wire(train::TrainContext& ctx, piad::Piad& p, models::ElasticModelImpl& model, const data::Dataset& data) {
  ctx.hooks.zero_grad_removed = true;
  ctx.hooks.on_epoch_start = [&](int64_t epoch) { p.update(epoch, model, data, nullptr); };
  ctx.hooks.step_widths = [&](int64_t, int64_t, data::Rng& rng) { return p.sample(rng); };
  ctx.hooks.manifest_extra = [&] { return p.manifest_entries(); };
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
    const auto rec = p.update(epoch, *model, data, nullptr);
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
    EXPECT_TRUE(p.update(epoch, *model, data, nullptr).is_null()) << "updated twice";
  }
  EXPECT_TRUE(p.update(2, *model, data, nullptr).is_null()) << "past the progressive phase";
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
    c.mode = "piad";
    return c;
  };
  // Uninterrupted: 3 epochs of 4 steps, table updates before epochs 0 and 1.
  const auto dir_a = test::scratch_dir("piad_uninterrupted");
  auto a = test::tiny_model();
  piad::Piad pa(a->config(), a->widths(), tiny_options());
  train::TrainContext ca;
  wire(ca, pa, *a, data);
  train::train(*a, data, nullptr, cfg_for(dir_a), ca);

  // Stopped after 6 steps (mid-epoch 2, after the second update), then resumed.
  const auto dir_b = test::scratch_dir("piad_resumed");
  auto b = test::tiny_model();
  piad::Piad pb(b->config(), b->widths(), tiny_options());
  train::TrainContext cb;
  wire(cb, pb, *b, data);
  cb.max_steps = 6;
  ASSERT_TRUE(train::train(*b, data, nullptr, cfg_for(dir_b), cb).stopped_at_max_steps);
  const auto ckpt = train::resolve_resume_path(dir_b);
  const auto state = train::read_training_state(ckpt);
  auto b2 = test::tiny_model();
  auto pb2 = piad::Piad::from_manifest(b2->config(), b2->widths(), tiny_options(), state.manifest, ckpt);
  EXPECT_EQ(pb2.next_update_epoch(), 2);
  EXPECT_EQ(pb2.table().last_code(), pb.table().last_code());
  train::TrainContext cb2;
  cb2.resume = ckpt;
  wire(cb2, pb2, *b2, data);
  train::train(*b2, data, nullptr, cfg_for(dir_b), cb2);

  EXPECT_EQ(pa.table().to_json(), pb2.table().to_json());
  const auto wa = a->named_parameters(), wb = b2->named_parameters();
  for (const auto& p : wa) EXPECT_TRUE(torch::equal(p.value(), *wb.find(p.key()))) << p.key();
  // The final artifact is a super-network: its manifest carries the table.
  const auto art = models::load_model(dir_a + "/model.safetensors");
  ASSERT_TRUE(art.manifest.contains("mask_table"));
  EXPECT_EQ(art.manifest.at("op_codes").size(), static_cast<size_t>(pa.table().last_code() + 1));
}
