// In-place distillation inside the training step (PIAD's piad_distill, docs/algorithm.md §3.8): the
// loss term, where each trained sub-network takes its teacher's logits from, and the interface a
// teacher provider (train/piad_training.h) gives the trainer.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <string>
#include <vector>

#include "skd/io/tensor_record.h"
#include "skd/models/model.h"

namespace skd::train {

// T² · KL(softmax(teacher / T) ‖ softmax(student / T)), the mean over the batch (Hinton et al.'s
// scaling, so the gradient's size does not shrink with T). Computed in float32 (or the inputs'
// wider type); `teacher` carries no gradient. Shapes [B, classes], equal.
torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                double temperature);

// Where one sub-network of a training step takes its teacher's logits from.
struct Teacher {
  enum class Source {
    NONE,     // no teacher: the labels only
    STEP,     // an earlier sub-network of the same step: its training forward's logits, detached
    FORWARD,  // a forward of the current weights at `widths` without gradient (training mode, as the student)
    FROZEN,   // the provider's frozen model (Distiller::frozen_logits)
  };
  Source source = Source::NONE;
  size_t step_index = 0;                   // STEP: index into the step's sub-networks (< this one's)
  const models::Widths* widths = nullptr;  // FORWARD: widths (null: the stored, full widths)
};

// A teacher provider plugged into train() (TrainContext::distiller). Each sub-network's loss becomes
// CE(labels) + weight() · distillation_loss(student, teacher, temperature()).
class Distiller {
 public:
  virtual ~Distiller() = default;
  virtual double weight() const = 0;
  virtual double temperature() const = 0;
  // The teacher of each of the step's sub-networks (the joined observers' list, nullptr = full),
  // called right after the observers' step_subnets for the same step.
  virtual std::vector<Teacher> teachers(const std::vector<const models::Widths*>& subnets) = 0;
  // FROZEN: the frozen model's logits for `images` (on the training device), without gradient.
  virtual torch::Tensor frozen_logits(const torch::Tensor& /*images*/) {
    throw std::logic_error("this distiller has no frozen teacher");
  }
  // What a checkpoint keeps for exact resume (the frozen copy's state dict), and its restore (named
  // source: the checkpoint, in errors). Empty when the teacher is rebuilt from the current weights.
  virtual io::TensorMap state() const { return {}; }
  virtual void load_state(const io::TensorMap& /*state*/, const std::string& /*source*/) {}
  // Moves whatever the teacher holds to the training device (called once the model is there).
  virtual void to(const torch::Device& /*device*/) {}
};

}  // namespace skd::train
