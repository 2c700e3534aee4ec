// The BLAS's own threads: OpenBLAS's pool beside ATen's OpenMP threads.
#pragma once

#include <string>

namespace skd {

// Where LibTorch's BLAS is OpenBLAS built with its own pthreads pool (Debian's libopenblas0-pthread),
// that pool is sized to every core of the machine, not to --threads, and after each GEMM it ran on
// several threads its workers spin (sched_yield) for 2^28 cycles (~0.1 s) before they sleep: on a
// few cores they take turns with ATen's OpenMP threads running the element-wise kernels between the
// GEMMs (measured: 14 % of the embedded ViT's training step on 2 cores, docs/benchmarks.md).
// This sizes the pool to `threads` and shortens the spin to 2^16 cycles (tens of microseconds, enough
// for back-to-back GEMMs), each unless the environment sets it (OPENBLAS_NUM_THREADS /
// OPENBLAS_THREAD_TIMEOUT or GOTO_THREAD_TIMEOUT), by restarting the pool. Call once at start,
// before any GEMM. Returns a line saying what it set ("" where nothing was: no OpenBLAS with these
// entry points loaded, e.g. an MKL LibTorch, or everything set by the environment).
std::string tune_blas_threads(int threads);

// The spin exponent set where the environment does not set one.
inline constexpr int kBlasThreadTimeout = 16;

}  // namespace skd
