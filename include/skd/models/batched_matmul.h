// Batched matrix products of attention (q kᵀ, attn v), spread over the intra-op threads.
//
// On a CPU LibTorch without MKL (Debian's), at::bmm multiplies the batch's matrices one after the
// other, each one GEMM call; for attention's small matrices (e.g. 50x32 by 32x50) the BLAS runs every
// call on the calling thread, so the product runs on one core while the others wait. batched_matmul
// gives each intra-op thread a share of the batch's matrices, each still one call of the same GEMM
// with the same operands, so forward and gradients are bit-identical to torch::matmul's.
#pragma once

#include <torch/torch.h>

namespace skd::models {

// torch::matmul(a, b) for a [..., n, k] and b [..., k, m] with the same leading dimensions (no
// broadcasting), differentiable in both. Where it does not split (LibTorch 2 or MKL builds, tensors
// not on the CPU, types other than float/double, products under at::bmm's small-size threshold or
// over OpenBLAS's one-thread bound, one intra-op thread) it is torch::matmul itself.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b);

// Whether batched_matmul splits the batch of a [B, n, k] by b [B, k, m] product over the threads
// (false: it runs torch::matmul).
bool batched_matmul_splits(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace skd::models
