// PIAD with in-place distillation (piad_distill): the teacher code each mode picks for a given
// table, the distiller's teacher sources, the frozen teacher unchanged and gradient-free through
// training, λ = 0 equal to the paper's PIAD bit for bit, every mode's resumed run equal to the
// uninterrupted one, and the config errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "skd/core/enum_names.h"
#include "skd/core/error.h"
#include "skd/models/checkpoint.h"
#include "skd/piad/piad.h"
#include "skd/train/checkpointing.h"
#include "skd/train/config.h"
#include "skd/train/piad_training.h"
#include "skd/train/trainer.h"
#include "test_util.h"
#include "train/tiny_training.h"

using namespace skd;
using piad::Distill;

namespace {

piad::PiadOptions tiny_options(Distill distill, bool sandwich = false) {
  piad::PiadOptions o;
  o.progressive_epochs = 2;
  o.budget_ratio = 0.8;
  o.attn_group = 2;
  o.mlp_groups = 8;
  o.proxy_samples = 32;
  o.proxy_batch = 16;
  o.distill = distill;
  o.sandwich = sandwich;
  return o;
}

train::TrainConfig piad_config(const std::string& dir, Distill distill, bool sandwich = false) {
  auto c = test::tiny_config(dir);
  c.eval = false;
  c.model_ema = false;
  c.drop_path = 0;
  c.mode = train::Mode::PIAD;
  c.piad = tiny_options(distill, sandwich);
  return c;
}

// A Piad on the tiny model with a table of 7 codes (0..6), each narrower than the one before.
piad::Piad grown_piad(models::ElasticModelImpl& model, const data::Dataset&, Distill distill, bool sandwich) {
  models::MaskTable table(model.widths());
  models::Widths w = model.widths();
  for (int c = 1; c <= 6; ++c) {
    auto& b = w[static_cast<size_t>(c % 2)];
    b.mlp -= 4;
    if (c > 2) b.attn -= 2;
    table.append(w);
  }
  return piad::Piad(model.config(), model.widths(), tiny_options(distill, sandwich), table, 2);
}

std::map<std::string, torch::Tensor> params_of(models::ElasticModelImpl& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& p : m.named_parameters(true)) out[p.key()] = p.value().detach().clone();
  return out;
}

}  // namespace

// Without the sandwich rule: the smallest code with at least twice the MACs, code 0 when none has.
TEST(PiadDistill, ProgressiveTeacherHasAboutTwiceTheMacs) {
  const std::vector<int64_t> macs = {100, 90, 60, 50, 30, 20, 10};
  EXPECT_EQ(piad::progressive_teacher(macs, 0), -1) << "the full network learns from the labels";
  EXPECT_EQ(piad::progressive_teacher(macs, 1), 0);
  EXPECT_EQ(piad::progressive_teacher(macs, 3), 0);  // 2 x 50 = 100: only code 0
  EXPECT_EQ(piad::progressive_teacher(macs, 4), 2);  // 2 x 30 = 60: codes 1, 2
  EXPECT_EQ(piad::progressive_teacher(macs, 5), 3);  // 40: codes 1, 2, 3 (50) -> 3
  EXPECT_EQ(piad::progressive_teacher(macs, 6), 5);  // 20: code 5 has exactly 20
  EXPECT_THROW(piad::progressive_teacher(macs, 7), std::invalid_argument);
  EXPECT_THROW(piad::progressive_teacher(macs, -1), std::invalid_argument);
}

TEST(PiadDistill, StepTeachersPerMode) {
  torch::set_num_threads(1);
  test::TinyData data(32);
  auto model = test::tiny_model();
  for (const bool sandwich : {false, true}) {
    for (const Distill mode : {Distill::NONE, Distill::FROZEN, Distill::FULL, Distill::PROGRESSIVE}) {
      auto m = test::tiny_model();
      auto p = grown_piad(*m, data, mode, sandwich);
      const int64_t k = p.table().last_code();
      ASSERT_EQ(k, 6);
      for (uint64_t seed = 0; seed < 40; ++seed) {
        data::Rng r1(seed), r2(seed);
        const auto codes = p.step_codes(r1);
        const auto subnets = p.step_subnets(r2);
        ASSERT_EQ(codes.size(), subnets.size());
        for (size_t i = 0; i < codes.size(); ++i) EXPECT_EQ(subnets[i], &p.table().widths(codes[i]));
        const auto t = p.step_teachers(codes);
        ASSERT_EQ(t.size(), codes.size());
        if (sandwich) {
          ASSERT_EQ(codes.size(), 3u);
          EXPECT_EQ(codes[0], 0);
          EXPECT_EQ(codes[mode == Distill::PROGRESSIVE ? 2 : 1], k) << "the chain's order puts code K last";
        }
        for (size_t i = 0; i < codes.size(); ++i) {
          const int64_t c = codes[i];
          switch (mode) {  // NOLINT: gtest macros in a switch
            case Distill::NONE:
              EXPECT_EQ(t[i], -1);
              break;
            case Distill::FROZEN:
              EXPECT_EQ(t[i], piad::Piad::kFrozenTeacher);
              break;
            case Distill::FULL:
              EXPECT_EQ(t[i], c == 0 ? -1 : 0);
              break;
            case Distill::PROGRESSIVE:
              if (c == 0) {
                EXPECT_EQ(t[i], -1);
              } else if (!sandwich) {
                EXPECT_EQ(t[i], piad::progressive_teacher(p.code_macs(), c));
              } else if (i == 1) {
                EXPECT_EQ(t[i], 0) << "sampled <- full";
              } else {
                EXPECT_EQ(t[i], codes[1] < c ? codes[1] : 0) << "smallest <- sampled";
              }
              break;
          }
          if (t[i] >= 0) {
            EXPECT_LT(t[i], c) << "a teacher is a larger network";
          }
        }
      }
    }
  }
}

// The distiller takes a teacher from an earlier sub-network of the step when one has its code (no
// extra forward), else a forward of the current weights; frozen: the frozen copy.
TEST(PiadDistill, DistillerSourcesFollowTheStep) {
  torch::set_num_threads(1);
  test::TinyData data(32);
  auto m = test::tiny_model();
  using S = train::Teacher::Source;
  {
    auto p = grown_piad(*m, data, Distill::PROGRESSIVE, true);
    train::PiadDistiller d(p, *m);
    const int64_t k = p.table().last_code();
    const auto t = d.teachers({&p.table().widths(0), &p.table().widths(1), &p.table().widths(k)});
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(t[0].source, S::NONE);
    EXPECT_EQ(t[1].source, S::STEP);
    EXPECT_EQ(t[1].step_index, 0u);
    EXPECT_EQ(t[2].source, S::STEP);
    EXPECT_EQ(t[2].step_index, 1u);
    EXPECT_EQ(d.frozen(), nullptr) << "no copy of the weights unless frozen";
  }
  {
    auto p = grown_piad(*m, data, Distill::PROGRESSIVE, false);
    train::PiadDistiller d(p, *m);
    const int64_t k = p.table().last_code();
    const auto t = d.teachers({&p.table().widths(k)});
    ASSERT_EQ(t[0].source, S::FORWARD);
    EXPECT_EQ(t[0].widths, &p.table().widths(piad::progressive_teacher(p.code_macs(), k)));
    EXPECT_EQ(d.teachers({nullptr})[0].source, S::NONE) << "null = the full network";
    const models::Widths foreign = p.table().widths(1);
    EXPECT_THROW(d.teachers({&foreign}), std::logic_error);
  }
  {
    auto p = grown_piad(*m, data, Distill::FROZEN, false);
    train::PiadDistiller d(p, *m);
    EXPECT_EQ(d.teachers({&p.table().widths(2)})[0].source, S::FROZEN);
    ASSERT_NE(d.frozen(), nullptr);
    const auto x = torch::randn({3, 1, 8, 8});
    m->eval();
    EXPECT_TRUE(torch::equal(d.frozen_logits(x), m->forward(x))) << "the copy computes the model's function";
  }
}

// The frozen teacher is the model as PIAD started: through a whole run its weights do not move and
// never get a gradient, while the student's do.
TEST(PiadDistill, FrozenTeacherNeverChangesNorGetsGradients) {
  torch::set_num_threads(1);
  test::TinyData data(32);
  auto model = test::tiny_model();
  const auto start = params_of(*model);
  const auto cfg = piad_config("", Distill::FROZEN, true);
  piad::Piad p(model->config(), model->widths(), train::piad_options(cfg, torch::kCPU));
  train::PiadDistiller d(p, *model);
  train::PiadObserver obs(p, *model, data, nullptr);
  train::TrainContext ctx;
  ctx.observers.push_back(&obs);
  ctx.distiller = &d;
  const auto r = train::train(*model, data, nullptr, cfg, ctx);
  EXPECT_EQ(r.steps, 12);
  EXPECT_TRUE(std::isfinite(r.last_loss));
  for (auto& t : d.frozen()->named_parameters(true)) {
    EXPECT_TRUE(torch::equal(t.value(), start.at(t.key()))) << t.key();
    EXPECT_FALSE(t.value().requires_grad()) << t.key();
    EXPECT_FALSE(t.value().grad().defined()) << t.key();
  }
  EXPECT_FALSE(torch::equal(model->named_parameters(true)["head.weight"], start.at("head.weight")));
  EXPECT_FALSE(d.frozen()->is_training());
}

// λ = 0 leaves the paper's PIAD bit for bit (the plumbing changes nothing by itself); λ > 0 changes
// the trained weights in every mode.
TEST(PiadDistill, ZeroWeightEqualsThePaperAndEveryModeActs) {
  torch::set_num_threads(1);
  test::TinyData data(32);
  auto run = [&](Distill mode, double weight, double temperature = 1.0) {
    auto m = test::tiny_model();
    auto cfg = piad_config("", mode);
    cfg.piad.distill_weight = weight;
    cfg.piad.distill_temperature = temperature;
    train::train_piad(*m, data, nullptr, cfg);
    return params_of(*m);
  };
  const auto paper = run(Distill::NONE, 1.0);
  auto same = [](const std::map<std::string, torch::Tensor>& a,
                 const std::map<std::string, torch::Tensor>& b) {
    for (const auto& [k, t] : a)
      if (!torch::equal(t, b.at(k))) return false;
    return true;
  };
  EXPECT_TRUE(same(paper, run(Distill::NONE, 3.0, 2.0))) << "none ignores λ and T";
  EXPECT_TRUE(same(paper, run(Distill::FROZEN, 0.0))) << "frozen with λ = 0";
  EXPECT_TRUE(same(paper, run(Distill::PROGRESSIVE, 0.0))) << "progressive with λ = 0";
  for (const Distill mode : {Distill::FROZEN, Distill::FULL, Distill::PROGRESSIVE})
    EXPECT_FALSE(same(paper, run(mode, 1.0, 2.0))) << enum_name(mode, piad::kDistillNames);
}

// Every mode (and the sandwich chain) resumed from a mid-epoch checkpoint equals the uninterrupted
// run; the frozen teacher comes back from the checkpoint, not from the resumed weights.
TEST(PiadDistill, ResumedRunEqualsUninterruptedRunInEveryMode) {
  torch::set_num_threads(1);
  test::TinyData data(32);
  for (const auto& [mode, sandwich] : std::vector<std::pair<Distill, bool>>{{Distill::FROZEN, false},
                                                                            {Distill::FULL, false},
                                                                            {Distill::PROGRESSIVE, false},
                                                                            {Distill::PROGRESSIVE, true}}) {
    const std::string name = cat(enum_name(mode, piad::kDistillNames), sandwich ? "_sandwich" : "");
    const auto dir_a = test::scratch_dir("distill_whole_" + name);
    auto a = test::tiny_model();
    const auto ra = train::train_piad(*a, data, nullptr, piad_config(dir_a, mode, sandwich));
    const auto dir_b = test::scratch_dir("distill_resumed_" + name);
    auto b = test::tiny_model();
    train::TrainContext cb;
    cb.max_steps = 6;
    ASSERT_TRUE(
        train::train_piad(*b, data, nullptr, piad_config(dir_b, mode, sandwich), cb).stopped_at_max_steps);
    const auto ckpt = train::resolve_resume_path(dir_b);
    EXPECT_EQ(train::read_training_state(ckpt).teacher.empty(), mode != Distill::FROZEN) << name;
    auto b2 = test::tiny_model();
    {  // the resumed process starts from other weights than the run did: the teacher must come from the
       // checkpoint
      torch::NoGradGuard ng;
      for (auto& p : b2->parameters()) p.add_(0.5);
    }
    train::TrainContext cb2;
    cb2.resume = ckpt;
    const auto rb2 = train::train_piad(*b2, data, nullptr, piad_config(dir_b, mode, sandwich), cb2);
    EXPECT_EQ(ra.mask_table.to_json(), rb2.mask_table.to_json()) << name;
    const auto wa = params_of(*a), wb = params_of(*b2);
    for (const auto& [k, t] : wa) EXPECT_TRUE(torch::equal(t, wb.at(k))) << name << " " << k;
    const auto art = models::load_model(dir_a + "/model.safetensors");
    EXPECT_EQ(art.manifest.at("piad").at("distill").get<std::string>(), enum_name(mode, piad::kDistillNames));
  }
}

// A frozen-teacher resume needs the teacher in the checkpoint: one written by another mode is refused
// naming the key.
TEST(PiadDistill, FrozenResumeFromACheckpointWithoutTeacherIsRefused) {
  torch::set_num_threads(1);
  test::TinyData data(32);
  const auto dir = test::scratch_dir("distill_switch");
  auto m = test::tiny_model();
  train::TrainContext c1;
  c1.max_steps = 5;
  train::train_piad(*m, data, nullptr, piad_config(dir, Distill::NONE), c1);
  auto m2 = test::tiny_model();
  train::TrainContext c2;
  c2.resume = train::resolve_resume_path(dir);
  try {
    train::train_piad(*m2, data, nullptr, piad_config(dir, Distill::FROZEN), c2);
    FAIL() << "resumed a frozen-teacher run without its teacher";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("piad_distill"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no frozen teacher"), std::string::npos) << e.what();
  }
}

TEST(PiadDistill, BadOptionsNameTheKeyBeforeAnyWork) {
  auto expect_key = [](const nlohmann::json& j, const std::string& key, const std::string& words) {
    try {
      train::validate(train::config_from_json(j, "test.json"));
      FAIL() << j.dump();
    } catch (const std::exception& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(key), std::string::npos) << what;
      EXPECT_NE(what.find(words), std::string::npos) << what;
    }
  };
  expect_key({{"mode", "piad"}, {"piad_distill", "teacher"}}, "piad_distill",
             "none, frozen, full, progressive");
  expect_key({{"mode", "piad"}, {"piad_distill", "full"}, {"piad_distill_weight", -0.5}},
             "piad_distill_weight", ">= 0");
  expect_key({{"mode", "piad"}, {"piad_distill", "full"}, {"piad_distill_temperature", 0}},
             "piad_distill_temperature", "> 0");
  expect_key({{"mode", "train"}, {"piad_distill", "progressive"}}, "piad_distill", "mode 'piad'");
  expect_key({{"mode", "train"}, {"piad_distill", "frozen"}}, "piad_distill", "no table");
  EXPECT_NO_THROW(
      train::validate(train::config_from_json({{"mode", "piad"}, {"piad_distill", "progressive"}}, "t")));
}
