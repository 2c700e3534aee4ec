// The distillation term of in-place distillation (skd/train/distill.h).
#include "skd/train/distill.h"

#include "skd/core/error.h"

namespace skd::train {

torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                double temperature) {
  if (student_logits.dim() != 2 || student_logits.sizes() != teacher_logits.sizes())
    throw std::invalid_argument(cat("distillation_loss: student logits ", student_logits.sizes(),
                                    " and teacher logits ", teacher_logits.sizes(),
                                    " must be equal [B, classes]"));
  if (!(temperature > 0))
    throw std::invalid_argument(cat("distillation_loss: temperature ", temperature, " must be > 0"));
  const auto wide = student_logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const auto log_p_student = torch::log_softmax(student_logits.to(wide) / temperature, 1);
  const auto log_p_teacher = torch::log_softmax(teacher_logits.detach().to(wide) / temperature, 1);
  // KL(p_t ‖ p_s) = Σ p_t (log p_t − log p_s), batch mean; log_target keeps p_t = 0 terms exact.
  const auto kl = torch::nn::functional::kl_div(
      log_p_student, log_p_teacher,
      torch::nn::functional::KLDivFuncOptions().reduction(torch::kBatchMean).log_target(true));
  return kl * (temperature * temperature);
}

}  // namespace skd::train
