// Direct BLAS calls (see blas.hpp for why they live alone in this file), the small-product
// loop, and the one place that sets BLAS's thread count.

#include "blas.hpp"

#include <cblas.h>

#include <algorithm>

#include "tapegrad/runtime.hpp"

namespace tg {
namespace blas {
namespace {

// C (m x n) = alpha * op(A) op(B) + beta * C with an i-p-j loop: the innermost loop runs
// along a row of C and of op(B) when B is not transposed, which the compiler vectorises.
template <class T>
void small_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
                const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc)
{
    for (std::size_t i = 0; i < m; ++i) {
        T* ci = c + i * ldc;
        if (beta == T(0)) {
            std::fill(ci, ci + n, T(0));
        } else if (beta != T(1)) {
            for (std::size_t j = 0; j < n; ++j) ci[j] *= beta;
        }
        for (std::size_t p = 0; p < k; ++p) {
            const T aip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
            if (tb) {
                for (std::size_t j = 0; j < n; ++j) ci[j] += aip * b[j * ldb + p];
            } else {
                const T* bp = b + p * ldb;
                for (std::size_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
            }
        }
    }
}

inline CBLAS_TRANSPOSE tr(bool t)
{
    return t ? CblasTrans : CblasNoTrans;
}

}  // namespace

void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda,
          const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc)
{
    if (m == 0 || n == 0) return;
    if (m * n * k <= small_gemm_limit) {
        small_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), static_cast<blasint>(m), static_cast<blasint>(n),
                static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
                static_cast<blasint>(ldc));
}

void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, std::size_t lda,
          const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc)
{
    if (m == 0 || n == 0) return;
    if (m * n * k <= small_gemm_limit) {
        small_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_dgemm(CblasRowMajor, tr(ta), tr(tb), static_cast<blasint>(m), static_cast<blasint>(n),
                static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
                static_cast<blasint>(ldc));
}

}  // namespace blas

void set_num_threads(int n)
{
    if (n < 1) throw Error("set_num_threads: the thread count must be at least 1, got " + std::to_string(n));
    openblas_set_num_threads(n);
}

int get_num_threads()
{
    return openblas_get_num_threads();
}

}  // namespace tg
