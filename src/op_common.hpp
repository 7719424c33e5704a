#pragma once
// What every file in ops/ includes: the op kit, the elementwise machinery, sample
// generators for the registry, and the explicit-instantiation helpers.

#include <random>
#include <string>
#include <vector>

#include "blas.hpp"
#include "elementwise.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/ops.hpp"

/// Instantiates `Var<T> NAME(const Var<T>&)` for float and double.
#define TAPEGRAD_INSTANTIATE_UNARY(NAME)                                                                               \
    template ::tg::Var<float> NAME<float>(const ::tg::Var<float>&);                                                    \
    template ::tg::Var<double> NAME<double>(const ::tg::Var<double>&);

/// Instantiates the Var-Var, Var-scalar and scalar-Var forms of a binary op.
#define TAPEGRAD_INSTANTIATE_BINARY(NAME)                                                                              \
    template ::tg::Var<float> NAME<float>(const ::tg::Var<float>&, const ::tg::Var<float>&);                           \
    template ::tg::Var<double> NAME<double>(const ::tg::Var<double>&, const ::tg::Var<double>&);                       \
    template ::tg::Var<float> NAME<float>(const ::tg::Var<float>&, float);                                             \
    template ::tg::Var<double> NAME<double>(const ::tg::Var<double>&, double);                                         \
    template ::tg::Var<float> NAME<float>(float, const ::tg::Var<float>&);                                             \
    template ::tg::Var<double> NAME<double>(double, const ::tg::Var<double>&);

namespace tg::ew {

/// A gradient that is a matrix product, (=|+=) op(A) op(B) into a contiguous [m, n] slot.
/// Accumulation goes through a temporary rather than gemm's beta = 1, so that adding the
/// same gradient twice gives exactly twice the gradient.
template <class T>
void gemm_grad(GradSlot<T> s, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a,
               std::size_t lda, const T* b, std::size_t ldb)
{
    if (!s.add) {
        blas::gemm(ta, tb, m, n, k, T(1), a, lda, b, ldb, T(0), s.data, n);
        return;
    }
    auto& buf = tmp_buffer<T>();
    buf.resize(m * n);
    blas::gemm(ta, tb, m, n, k, T(1), a, lda, b, ldb, T(0), buf.data(), n);
    kernel::map<true>(
        m * n, s.data, [](auto v) { return v; }, static_cast<const T*>(buf.data()));
}

}  // namespace tg::ew

namespace tg::samples {

using Shape = std::vector<std::size_t>;

/// Sample calls of a unary op over rank-0, size-1, matrix and rank-3 shapes and a
/// transposed input, with values in [lo, hi) kept `gap` away from zero when gap > 0.
template <class F> std::vector<OpSample> unary(std::mt19937_64& rng, double lo, double hi, double gap, F f)
{
    auto draw = [&](const Shape& s) {
        return gap > 0 ? sample_away_from_zero(rng, s, lo, hi, gap) : sample_uniform(rng, s, lo, hi);
    };
    std::vector<OpSample> out;
    out.push_back(make_sample("()", {draw({})}, f));
    out.push_back(make_sample("(1,)", {draw({1})}, f));
    out.push_back(make_sample("(3,4)", {draw({3, 4})}, f));
    out.push_back(make_sample("(2,1,3)", {draw({2, 1, 3})}, f));
    out.push_back(make_sample("transposed (4,3)", {draw({4, 3})}, [f](const auto& v) {
        using V = std::decay_t<decltype(v[0])>;
        return f(std::vector<V>{tg::transpose(v[0])});
    }));
    return out;
}

/// Sample calls of a broadcasting binary op: equal shapes, (3,4)+(4,), (3,1)+(1,4),
/// (1,)+(2,3), rank-0 with a matrix both ways, a transposed input, and the scalar forms
/// through `fs(v, scalar)` and `sf(scalar, v)`. Values of b keep `gap_b` away from zero.
template <class F, class FS, class SF>
std::vector<OpSample> binary(std::mt19937_64& rng, double lo, double hi, double gap_b, F f, FS fs, SF sf)
{
    auto a = [&](const Shape& s) { return sample_uniform(rng, s, lo, hi); };
    auto b = [&](const Shape& s) {
        return gap_b > 0 ? sample_away_from_zero(rng, s, lo, hi, gap_b) : sample_uniform(rng, s, lo, hi);
    };
    std::vector<OpSample> out;
    out.push_back(make_sample("(3,4)+(3,4)", {a({3, 4}), b({3, 4})}, f));
    out.push_back(make_sample("(3,4)+(4,)", {a({3, 4}), b({4})}, f));
    out.push_back(make_sample("(4,)+(3,4)", {a({4}), b({3, 4})}, f));
    out.push_back(make_sample("(3,1)+(1,4)", {a({3, 1}), b({1, 4})}, f));
    out.push_back(make_sample("(1,)+(2,3)", {a({1}), b({2, 3})}, f));
    out.push_back(make_sample("(2,3)+(1,3)", {a({2, 3}), b({1, 3})}, f));
    out.push_back(make_sample("()+(2,3)", {a({}), b({2, 3})}, f));
    out.push_back(make_sample("(2,3)+()", {a({2, 3}), b({})}, f));
    out.push_back(make_sample("()+()", {a({}), b({})}, f));
    out.push_back(make_sample("(2,3,4)+(3,1)", {a({2, 3, 4}), b({3, 1})}, f));
    out.push_back(make_sample("transposed (4,3)+(3,4)", {a({4, 3}), b({3, 4})}, [f](const auto& v) {
        using V = std::decay_t<decltype(v[0])>;
        return f(std::vector<V>{tg::transpose(v[0]), v[1]});
    }));
    out.push_back(make_sample("(3,4) with scalar 1.75", {a({3, 4})}, [fs](const auto& v) { return fs(v[0], 1.75); }));
    out.push_back(make_sample("scalar 1.75 with (3,4)", {b({3, 4})}, [sf](const auto& v) { return sf(1.75, v[0]); }));
    return out;
}

}  // namespace tg::samples
