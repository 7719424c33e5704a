#pragma once
// Matrix products for matmul and linear. OpenBLAS's <cblas.h> clashes with the cblas
// declarations of xtensor-blas when both are seen in one translation unit, so every direct
// BLAS call lives in blas.cpp and this header declares plain functions only.

#include <cstddef>

namespace tg::blas {

/// C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T. With beta == 0 the
/// old contents of C are ignored (NaN-safe). Small products run a plain loop: below a few
/// thousand multiply-adds a BLAS call costs more than the work.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
          std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
          std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc);

/// Products with m * n * k at most this many multiply-adds use the plain loop.
inline constexpr std::size_t small_gemm_limit = 8192;

}  // namespace tg::blas
