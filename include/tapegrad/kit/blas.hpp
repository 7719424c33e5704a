#pragma once
/// \file kit/blas.hpp
/// Matrix products for ops (matmul, linear, user ops). OpenBLAS's <cblas.h> clashes with
/// the cblas declarations of xtensor-blas when both are seen in one translation unit, so
/// every direct BLAS call lives in src/kernels/blas.cpp and this header declares plain
/// functions only.

#include <cstddef>
#include <vector>

#include "tapegrad/kit/kernels.hpp"

namespace tg::blas {

///@{
/// C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T. With beta == 0 the
/// old contents of C are ignored (NaN-safe). Small products run a plain loop: below a few
/// thousand multiply-adds a BLAS call costs more than the work.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
          std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
          std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc);
///@}

/// Products with m * n * k at most this many multiply-adds use the plain loop.
inline constexpr std::size_t small_gemm_limit = 8192;
/// Float products with fewer multiply-adds than this run on the calling thread alone (4.2 M:
/// a recurrent layer's input projection of a few hundred rows, e.g. [260, 32] x [32, 256],
/// costs more on two threads than on one, between steps that run on one).
inline constexpr std::size_t gemm_parallel_min = std::size_t{1} << 22;

/// dst (m x n, contiguous) = op(A) op(B), or += when `add`: how a gradient that is a
/// matrix product lands in a buffer that may already hold one. Adding goes through a
/// temporary rather than gemm's beta = 1, so that adding the same gradient twice gives
/// exactly twice the gradient.
template <class T>
void gemm_to(T* dst, bool add, bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const T* a,
             std::size_t lda, const T* b, std::size_t ldb)
{
    if (!add) {
        gemm(trans_a, trans_b, m, n, k, T(1), a, lda, b, ldb, T(0), dst, n);
        return;
    }
    static thread_local std::vector<T> product;
    product.resize(m * n);
    gemm(trans_a, trans_b, m, n, k, T(1), a, lda, b, ldb, T(0), product.data(), n);
    kernel::add_or_assign(dst, static_cast<const T*>(product.data()), m * n, true);
}

}  // namespace tg::blas
