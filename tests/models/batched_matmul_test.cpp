// batched_matmul against torch::matmul: the same bits, forward and both gradients, for attention's
// shapes (q kᵀ on permuted views of a qkv output, attn v), for inputs that need no copy, for sizes
// at::bmm keeps to its own kernel, and with one or two intra-op threads.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <torch/version.h>

#include "skd/models/batched_matmul.h"

using skd::models::batched_matmul;
using skd::models::batched_matmul_splits;

namespace {

// Where the split runs: LibTorch 1.x without MKL (Debian's), two or more threads.
bool split_build() {
  return TORCH_VERSION_MAJOR < 2 && !at::hasMKL();
}

struct Result {
  torch::Tensor out, ga, gb;
};

// out = f(a, b); gradients of sum(out * w) for a fixed w that weighs every entry differently.
template <typename F>
Result run(F f, const torch::Tensor& a0, const torch::Tensor& b0, const torch::Tensor& w) {
  auto a = a0.detach().requires_grad_(true), b = b0.detach().requires_grad_(true);
  // The operands as the model passes them: views of a tensor that requires grad.
  auto out = f(a * 1, b * 1);
  (out * w).sum().backward();
  return {out.detach(), a.grad(), b.grad()};
}

void expect_identical(const Result& x, const Result& y, const std::string& what) {
  EXPECT_TRUE(torch::equal(x.out, y.out))
      << what << ": forward differs by " << (x.out - y.out).abs().max().item<double>();
  EXPECT_TRUE(torch::equal(x.ga, y.ga)) << what << ": grad a differs";
  EXPECT_TRUE(torch::equal(x.gb, y.gb)) << what << ": grad b differs";
}

class ThreadsGuard {
 public:
  explicit ThreadsGuard(int n) : saved_(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadsGuard() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

TEST(BatchedMatmul, AttentionProductsEqualMatmulBitForBit) {
  torch::manual_seed(5);
  for (int threads : {1, 2}) {
    ThreadsGuard guard(threads);
    for (auto type : {torch::kFloat, torch::kDouble}) {
      // [B, T, 3, H, a] as the qkv linear writes it, permuted to [3, B, H, T, a] as the attention reads it.
      const int64_t B = 6, T = 17, H = 3, a = 8;
      const auto qkv = torch::randn({B, T, 3, H, a}, type).permute({2, 0, 3, 1, 4});
      const auto q = qkv[0], k = qkv[1], v = qkv[2];
      const auto w1 = torch::randn({B, H, T, T}, type), w2 = torch::randn({B, H, T, a}, type);
      const std::string what = std::string(threads == 1 ? "1 thread" : "2 threads") +
                               (type == torch::kFloat ? ", float" : ", double");
      auto mm = [](const torch::Tensor& x, const torch::Tensor& y) { return torch::matmul(x, y); };
      auto bm = [](const torch::Tensor& x, const torch::Tensor& y) { return batched_matmul(x, y); };
      auto qk = [](auto f) {
        return [f](const torch::Tensor& x, const torch::Tensor& y) { return f(x, y.transpose(-2, -1)); };
      };
      // The products the comparison is about are the split ones (where this build splits).
      EXPECT_EQ(batched_matmul_splits(q.reshape({-1, T, a}), k.transpose(-2, -1).reshape({-1, a, T})),
                split_build() && threads > 1);
      expect_identical(run(qk(bm), q, k, w1), run(qk(mm), q, k, w1), "q kT, " + what);
      const auto attn = torch::randn({B, H, T, T}, type).softmax(-1);
      expect_identical(run(bm, attn, v, w2), run(mm, attn, v, w2), "attn v, " + what);
      // Contiguous operands (no copy before the product) and a 3-D batch.
      const auto x = torch::randn({B * H, T, a}, type), y = torch::randn({B * H, a, 5}, type);
      const auto w3 = torch::randn({B * H, T, 5}, type);
      expect_identical(run(bm, x, y, w3), run(mm, x, y, w3), "contiguous 3-D, " + what);
    }
  }
}

TEST(BatchedMatmul, SplitsOnlyWhereBmmLoopsOverTheMatrices) {
  ThreadsGuard guard(2);
  const auto a = torch::randn({4, 10, 8}), b = torch::randn({4, 8, 10});
  // 10 * 8 * 10 = 800 >= 400: at::bmm's BLAS loop (where this LibTorch has no MKL).
  EXPECT_EQ(batched_matmul_splits(a, b), split_build());
  // 70 * 70 * 64 > 262144: the BLAS runs each product on its own threads; left to torch::matmul.
  EXPECT_FALSE(batched_matmul_splits(torch::randn({4, 70, 64}), torch::randn({4, 64, 70})));
  // 3 * 4 * 3 < 400: at::bmm's own kernel; batched_matmul leaves it to torch::matmul.
  const auto s = torch::randn({4, 3, 4}), t = torch::randn({4, 4, 3});
  EXPECT_FALSE(batched_matmul_splits(s, t));
  const auto w = torch::randn({4, 3, 3});
  expect_identical(run([](auto x, auto y) { return batched_matmul(x, y); }, s, t, w),
                   run([](auto x, auto y) { return torch::matmul(x, y); }, s, t, w), "small");
  EXPECT_FALSE(batched_matmul_splits(a.to(torch::kInt), b.to(torch::kInt)));
  {
    ThreadsGuard one(1);
    EXPECT_FALSE(batched_matmul_splits(a, b));
  }
}

TEST(BatchedMatmul, RefusesMismatchedOperands) {
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 5, 3})), std::exception);
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({3, 4, 3})), std::exception);
  EXPECT_THROW(batched_matmul(torch::randn({3, 4}), torch::randn({4, 3})), std::exception);
}
