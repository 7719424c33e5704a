// Direct BLAS calls (see blas.hpp for why they live alone in this file) and the small-product
// loop; the thread count they run on comes from threads.cpp.

#include "tapegrad/kit/blas.hpp"

#include <cblas.h>
#ifdef TAPEGRAD_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#include <algorithm>
#include <type_traits>

#include "kernels/threads.hpp"

namespace tg {
namespace blas {
namespace {

// Rows of C too short to vectorise (a layer of a few units, the seed network's 2-3-2): one
// element at a time, its sum kept in a register. The terms are added in the same order, to
// the same start, as by the loop below, so both give the same bits.
template <bool TA, bool TB, class T>
void tiny_gemm(std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b,
               std::size_t ldb, T beta, T* c, std::size_t ldc)
{
    for (std::size_t i = 0; i < m; ++i) {
        T* ci = c + i * ldc;
        for (std::size_t j = 0; j < n; ++j) {
            T acc = beta == T(0) ? T(0) : beta == T(1) ? ci[j] : ci[j] * beta;
            for (std::size_t p = 0; p < k; ++p) {
                const T aip = alpha * (TA ? a[p * lda + i] : a[i * lda + p]);
                acc += aip * (TB ? b[j * ldb + p] : b[p * ldb + j]);
            }
            ci[j] = acc;
        }
    }
}

// C (m x n) = alpha * op(A) op(B) + beta * C with an i-p-j loop: the innermost loop runs
// along a row of C and of op(B) when B is not transposed, which the compiler vectorises.
template <class T>
void small_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
                const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc)
{
    if (n < 8) {
        if (ta) {
            tb ? tiny_gemm<true, true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
               : tiny_gemm<true, false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else {
            tb ? tiny_gemm<false, true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
               : tiny_gemm<false, false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
        return;
    }
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

inline blasint bi(std::size_t v)
{
    return static_cast<blasint>(v);
}

void gemv(CBLAS_TRANSPOSE t, std::size_t m, std::size_t n, float alpha, const float* a, std::size_t lda, const float* x,
          std::size_t incx, float beta, float* y, std::size_t incy)
{
    cblas_sgemv(CblasRowMajor, t, bi(m), bi(n), alpha, a, bi(lda), x, bi(incx), beta, y, bi(incy));
}
void gemv(CBLAS_TRANSPOSE t, std::size_t m, std::size_t n, double alpha, const double* a, std::size_t lda,
          const double* x, std::size_t incx, double beta, double* y, std::size_t incy)
{
    cblas_dgemv(CblasRowMajor, t, bi(m), bi(n), alpha, a, bi(lda), x, bi(incx), beta, y, bi(incy));
}

// A product with one output column or row is a matrix-vector product: gemv reads the
// matrix once, where OpenBLAS's gemm first copies (packs) all of it.
template <class T>
bool as_gemv(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
             const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc)
{
    if (n == 1) {  // c[:, 0] = op(A) b[:, 0]
        gemv(tr(ta), ta ? k : m, ta ? m : k, alpha, a, lda, b, tb ? 1 : ldb, beta, c, ldc);
        return true;
    }
    if (m == 1) {  // c[0, :] = op(B)^T a[0, :]
        gemv(tr(!tb), tb ? n : k, tb ? k : n, alpha, b, ldb, a, ta ? lda : 1, beta, c, 1);
        return true;
    }
    return false;
}

template <class T>
void gemm_any(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
              const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc)
{
    if (m == 0 || n == 0) return;
    if (m * n * k <= small_gemm_limit || k == 0) {
        small_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (as_gemv(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
    [[maybe_unused]] const int nthreads = threads::enter();
    if constexpr (std::is_same<T, float>::value) {
#ifdef TAPEGRAD_HAVE_DNNL
        // With oneDNN in the build, float products go through its gemm: it runs on the same
        // OpenMP threads as the convolutions (OpenBLAS's own threads spin after each call and
        // hold a core that the next convolution needs: on the CNN main job 2 threads were no
        // faster than 1), and it picks its kernels from the CPU's features where OpenBLAS
        // 0.3.21 falls back to SSE3 kernels on CPUs newer than it knows. If oneDNN refuses
        // the call, OpenBLAS does it.
        // A product too small to share (a recurrent step's, a small layer's) runs on this
        // thread alone: waking the other threads for it costs more than it saves, and while
        // they wait for the next one they spin on cores that other work could use.
        const bool alone = m * n * k < gemm_parallel_min && nthreads > 1;
        if (alone) threads::set_openmp(1);
        const dnnl_status_t st =
            dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', static_cast<dnnl_dim_t>(m), static_cast<dnnl_dim_t>(n),
                       static_cast<dnnl_dim_t>(k), alpha, a, static_cast<dnnl_dim_t>(lda), b,
                       static_cast<dnnl_dim_t>(ldb), beta, c, static_cast<dnnl_dim_t>(ldc));
        if (alone) threads::set_openmp(nthreads);
        if (st == dnnl_success) return;
#endif
        cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), bi(m), bi(n), bi(k), alpha, a, bi(lda), b, bi(ldb), beta, c,
                    bi(ldc));
    } else {
        cblas_dgemm(CblasRowMajor, tr(ta), tr(tb), bi(m), bi(n), bi(k), alpha, a, bi(lda), b, bi(ldb), beta, c,
                    bi(ldc));
    }
}

}  // namespace

void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda,
          const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc)
{
    gemm_any(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a, std::size_t lda,
          const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc)
{
    gemm_any(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace blas

}  // namespace tg
