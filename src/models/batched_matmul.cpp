#include "skd/models/batched_matmul.h"

#include <dlfcn.h>

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/version.h>

#include <algorithm>
#include <array>
#include <climits>

#include "skd/core/error.h"

namespace skd::models {

namespace {

// at::bmm's own kernel (not BLAS) takes products with n * k * m below this (ATen's
// bmm_out_or_baddbmm_); those stay with at::bmm.
constexpr int64_t kBmmBlasMin = 400;
// OpenBLAS runs a GEMM with n * k * m up to this on the calling thread (its SMP_THRESHOLD_MIN 65536
// times the default GEMM_MULTITHREAD_THRESHOLD 4) and larger ones on its own threads: splitting
// those over the intra-op threads as well would have two callers compete for its pool.
constexpr int64_t kBlasOneThreadMax = 262144;

// The Fortran GEMM of the BLAS LibTorch calls (sgemm_ / dgemm_): the symbol of the BLAS already loaded
// with libtorch_cpu (Debian's libblas.so.3, OpenBLAS), looked up once; null where none is exported.
using Gemm = void (*)(const char*, const char*, const int*, const int*, const int*, const void*, const void*,
                      const int*, const void*, const int*, const void*, void*, const int*);
Gemm blas_gemm(torch::ScalarType type) {
  static const Gemm s = reinterpret_cast<Gemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  static const Gemm d = reinterpret_cast<Gemm>(dlsym(RTLD_DEFAULT, "dgemm_"));
  return type == torch::kFloat ? s : type == torch::kDouble ? d : nullptr;
}

// One GEMM call as LibTorch 1.13's mm makes it for r = x y, r a fresh contiguous [n, m] (x [n, k],
// y [k, m] with the strides of the batch's matrices): addmm_impl_cpu_'s choice of operand order,
// transposes and leading dimensions, then cpublas::gemm's normalize_last_dims and its BLAS checks.
// valid is false where that mm would copy an operand or not call the BLAS.
struct GemmCall {
  bool valid = false;
  bool swap = false;  // the BLAS's first operand is y (the column-major view of r is rᵀ = yᵀ xᵀ)
  char ta = 'N', tb = 'N';
  int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
};

GemmCall plan_gemm(int64_t rows, int64_t inner, int64_t cols, c10::IntArrayRef xs, c10::IntArrayRef ys) {
  GemmCall g;
  // The result [rows, cols], contiguous: strides (cols, 1).
  std::array<int64_t, 2> r_sizes{rows, cols}, r_strides{cols, 1};
  std::array<int64_t, 2> m1_sizes{rows, inner}, m2_sizes{inner, cols};
  std::array<int64_t, 2> m1_strides{xs[0], xs[1]}, m2_strides{ys[0], ys[1]};
  bool tc;
  if (r_strides[0] == 1 && (r_sizes[1] == 1 || r_strides[1] >= std::max<int64_t>(1, r_sizes[0]))) {
    tc = false;
  } else if (r_strides[1] == 1 && (r_sizes[0] == 1 || r_strides[0] >= std::max<int64_t>(1, r_sizes[1]))) {
    std::swap(m1_sizes, m2_sizes);
    std::swap(m1_strides, m2_strides);
    tc = true;
  } else {
    return g;  // mm would compute into a Fortran-ordered copy
  }
  const int64_t m = r_sizes[tc ? 1 : 0], n = r_sizes[tc ? 0 : 1], k = m1_sizes[tc ? 0 : 1];
  bool ta, tb;
  int64_t lda, ldb;
  if (m1_strides[tc ? 1 : 0] == 1 && m1_strides[tc ? 0 : 1] >= std::max<int64_t>(1, m)) {
    ta = false;
  } else if (m1_strides[tc ? 0 : 1] == 1 && m1_strides[tc ? 1 : 0] >= std::max<int64_t>(1, k)) {
    ta = true;
  } else {
    return g;  // mm would copy the operand
  }
  if (m2_strides[tc ? 1 : 0] == 1 && m2_strides[tc ? 0 : 1] >= std::max<int64_t>(1, k)) {
    tb = false;
  } else if (m2_strides[tc ? 0 : 1] == 1 && m2_strides[tc ? 1 : 0] >= std::max<int64_t>(1, n)) {
    tb = true;
  } else {
    return g;
  }
  lda = m1_strides[(ta == tc) ? 1 : 0];
  ldb = m2_strides[(tb == tc) ? 1 : 0];
  int64_t ldc = r_strides[tc ? 0 : 1];
  // cpublas::gemm: normalize_last_dims, then the BLAS only where every size fits an int and the
  // leading dimensions are valid (else ATen's own kernel).
  if (n == 1) ldc = m;
  if (ta) {
    if (m == 1) lda = k;
  } else if (k == 1) {
    lda = m;
  }
  if (tb) {
    if (k == 1) ldb = n;
  } else if (n == 1) {
    ldb = k;
  }
  const bool fits = m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
                    ldc <= INT_MAX && lda >= std::max<int64_t>(1, ta ? k : m) &&
                    ldb >= std::max<int64_t>(1, tb ? n : k) && ldc >= std::max<int64_t>(1, m);
  if (!fits) return g;
  g.valid = true;
  g.swap = tc;
  g.ta = ta ? 'T' : 'N';
  g.tb = tb ? 'T' : 'N';
  g.m = static_cast<int>(m);
  g.n = static_cast<int>(n);
  g.k = static_cast<int>(k);
  g.lda = static_cast<int>(lda);
  g.ldb = static_cast<int>(ldb);
  g.ldc = static_cast<int>(ldc);
  return g;
}

// Whether a product of `batch` [n, k] by [k, m] matrices of a and b may be split, whatever their
// strides: a 1.x LibTorch without MKL (LibTorch 2's mm may route float GEMMs elsewhere, e.g. oneDNN;
// the calls below are 1.13's), 2+ intra-op threads outside a parallel region, float or double CPU
// tensors, 2+ matrices, products between at::bmm's own kernel and OpenBLAS's threaded ones.
bool may_split(const torch::Tensor& a, const torch::Tensor& b, int64_t batch, int64_t n, int64_t k,
               int64_t m) {
  const auto type = a.scalar_type();
  const int64_t mnk = n * k * m;
  return TORCH_VERSION_MAJOR < 2 && !at::hasMKL() && at::get_num_threads() > 1 && !at::in_parallel_region() &&
         a.device().is_cpu() && b.device().is_cpu() && (type == torch::kFloat || type == torch::kDouble) &&
         b.scalar_type() == type && !a.is_conj() && !b.is_conj() && !a.is_neg() && !b.is_neg() && batch > 1 &&
         mnk >= kBmmBlasMin && mnk <= kBlasOneThreadMax;
}

// Whether a [B, n, k] by [B, k, m] product is split, and the call each matrix gets.
struct Split {
  bool ok = false;
  Gemm gemm = nullptr;
  GemmCall call;
};

Split plan_split(const torch::Tensor& a, const torch::Tensor& b) {
  Split s;
  if (a.dim() != 3 || b.dim() != 3 || a.size(0) != b.size(0) || a.size(2) != b.size(1) ||
      !may_split(a, b, a.size(0), a.size(1), a.size(2), b.size(2)))
    return s;
  s.gemm = blas_gemm(a.scalar_type());
  if (!s.gemm) return s;
  s.call = plan_gemm(a.size(1), a.size(2), b.size(2), a.strides().slice(1), b.strides().slice(1));
  s.ok = s.call.valid;
  return s;
}

// out[i] = a[i] b[i] for every i: the GEMM call at::bmm's per-matrix loop makes for each (mm on the
// i-th matrices), the matrices shared out among the intra-op threads.
torch::Tensor bmm_split(const Split& s, const torch::Tensor& a, const torch::Tensor& b) {
  const int64_t batch = a.size(0);
  auto out = torch::empty({batch, a.size(1), b.size(2)}, a.options());
  const auto& g = s.call;
  const int64_t elem = static_cast<int64_t>(a.element_size());
  const auto* pa = static_cast<const char*>(a.data_ptr());
  const auto* pb = static_cast<const char*>(b.data_ptr());
  auto* pc = static_cast<char*>(out.data_ptr());
  const int64_t sa = a.stride(0) * elem, sb = b.stride(0) * elem, sc = out.stride(0) * elem;
  const double one_d = 1.0, zero_d = 0.0;
  const float one_f = 1.0f, zero_f = 0.0f;
  const bool is_float = a.scalar_type() == torch::kFloat;
  const void* alpha = is_float ? static_cast<const void*>(&one_f) : static_cast<const void*>(&one_d);
  const void* beta = is_float ? static_cast<const void*>(&zero_f) : static_cast<const void*>(&zero_d);
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const void* x = pa + i * sa;
      const void* y = pb + i * sb;
      s.gemm(&g.ta, &g.tb, &g.m, &g.n, &g.k, alpha, g.swap ? y : x, &g.lda, g.swap ? x : y, &g.ldb, beta,
             pc + i * sc, &g.ldc);
    }
  });
  return out;
}

// torch::bmm where the product is not split (e.g. a gradient whose strides mm would copy).
torch::Tensor split_or_bmm(const torch::Tensor& a, const torch::Tensor& b) {
  const auto s = plan_split(a, b);
  return s.ok ? bmm_split(s, a, b) : torch::bmm(a, b);
}

// at::bmm's derivative with each product split where it can be: BmmBackward0 computes
// grad_a = grad bᵀ and grad_b = aᵀ grad with at::bmm on the transposed views, as here.
class SplitBmm : public torch::autograd::Function<SplitBmm> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    return split_or_bmm(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto& g = grads[0];
    torch::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = split_or_bmm(g, b.transpose(1, 2));
    if (ctx->needs_input_grad(1)) gb = split_or_bmm(a.transpose(1, 2), g);
    return {ga, gb};
  }
};

}  // namespace

bool batched_matmul_splits(const torch::Tensor& a, const torch::Tensor& b) {
  return plan_split(a, b).ok;
}

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  SKD_CHECK(a.dim() >= 3 && a.dim() == b.dim(),
            "batched_matmul: expected two tensors of the same rank >= 3, got ", a.sizes(), " and ",
            b.sizes());
  const int64_t d = a.dim();
  SKD_CHECK(a.sizes().slice(0, d - 2) == b.sizes().slice(0, d - 2) && a.size(d - 1) == b.size(d - 2),
            "batched_matmul: cannot multiply ", a.sizes(), " by ", b.sizes());
  const int64_t n = a.size(d - 2), k = a.size(d - 1), m = b.size(d - 1);
  const int64_t batch = n * k > 0 ? a.numel() / (n * k) : 0;
  // Decided before the folding below, whose copies torch::matmul would make again.
  if (!may_split(a, b, batch, n, k, m)) return torch::matmul(a, b);
  // The same [batch, n, k] operands torch::matmul folds the leading dimensions into (a copy where
  // they cannot be viewed so), and the same view back.
  const auto a3 = a.reshape({-1, n, k});
  const auto b3 = b.reshape({-1, k, m});
  if (!batched_matmul_splits(a3, b3)) return torch::matmul(a, b);
  auto shape = a.sizes().vec();
  shape.back() = m;
  return SplitBmm::apply(a3, b3).view(shape);
}

}  // namespace skd::models
