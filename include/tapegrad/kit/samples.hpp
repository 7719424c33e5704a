#pragma once
/// \file kit/samples.hpp
/// Sample generators for op registrations: the shapes every elementwise op should be
/// exercised on, each with an independent reference for the forward value.

#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xmanipulation.hpp>

#include "tapegrad/op.hpp"
#include "tapegrad/ops.hpp"

namespace tg {
template <class T> Var<T> transpose(const Var<T>& x);  // for the transposed samples (see kit/elementwise.hpp)
}  // namespace tg

namespace tg::samples {

using Shape = std::vector<std::size_t>;

/// Sample calls of a unary op over rank-0, size-1, matrix and rank-3 shapes and a
/// transposed input, with values in [lo, hi) kept `gap` away from zero when gap > 0.
/// `ref(x)` computes the expected output from an xt::xarray<double> with a plain formula.
template <class F, class R>
std::vector<OpSample> unary(std::mt19937_64& rng, double lo, double hi, double gap, F f, R ref)
{
    auto draw = [&](const Shape& s) {
        return gap > 0 ? sample_away_from_zero(rng, s, lo, hi, gap) : sample_uniform(rng, s, lo, hi);
    };
    auto r = [ref](const auto& x) { return xt::xarray<double>(ref(x[0])); };
    std::vector<OpSample> out;
    out.push_back(make_sample("()", {draw({})}, f, r));
    out.push_back(make_sample("(1,)", {draw({1})}, f, r));
    out.push_back(make_sample("(3,4)", {draw({3, 4})}, f, r));
    out.push_back(make_sample("(2,1,3)", {draw({2, 1, 3})}, f, r));
    out.push_back(make_sample(
        "transposed (4,3)", {draw({4, 3})},
        [f](const auto& v) {
            using V = std::decay_t<decltype(v[0])>;
            return f(std::vector<V>{tg::transpose(v[0])});
        },
        [ref](const auto& x) { return xt::xarray<double>(ref(xt::xarray<double>(xt::transpose(x[0])))); }));
    return out;
}

/// Sample calls of a broadcasting binary op: equal shapes, (3,4)+(4,), (3,1)+(1,4),
/// (1,)+(2,3), rank-0 with a matrix both ways, a transposed input, and the scalar forms
/// through `fs(v, scalar)` and `sf(scalar, v)`. Values of b keep `gap_b` away from zero.
/// `ref(a, b)` computes the expected output from xt::xarray<double>s (it must broadcast,
/// and accept a double for the scalar forms).
template <class F, class FS, class SF, class R>
std::vector<OpSample> binary(std::mt19937_64& rng, double lo, double hi, double gap_b, F f, FS fs, SF sf, R ref)
{
    auto a = [&](const Shape& s) { return sample_uniform(rng, s, lo, hi); };
    auto b = [&](const Shape& s) {
        return gap_b > 0 ? sample_away_from_zero(rng, s, lo, hi, gap_b) : sample_uniform(rng, s, lo, hi);
    };
    auto r = [ref](const auto& x) { return xt::xarray<double>(ref(x[0], x[1])); };
    std::vector<OpSample> out;
    out.push_back(make_sample("(3,4)+(3,4)", {a({3, 4}), b({3, 4})}, f, r));
    out.push_back(make_sample("(3,4)+(4,)", {a({3, 4}), b({4})}, f, r));
    out.push_back(make_sample("(4,)+(3,4)", {a({4}), b({3, 4})}, f, r));
    out.push_back(make_sample("(3,1)+(1,4)", {a({3, 1}), b({1, 4})}, f, r));
    out.push_back(make_sample("(1,)+(2,3)", {a({1}), b({2, 3})}, f, r));
    out.push_back(make_sample("(2,3)+(1,3)", {a({2, 3}), b({1, 3})}, f, r));
    out.push_back(make_sample("()+(2,3)", {a({}), b({2, 3})}, f, r));
    out.push_back(make_sample("(2,3)+()", {a({2, 3}), b({})}, f, r));
    out.push_back(make_sample("()+()", {a({}), b({})}, f, r));
    out.push_back(make_sample("(2,3,4)+(3,1)", {a({2, 3, 4}), b({3, 1})}, f, r));
    out.push_back(make_sample(
        "transposed (4,3)+(3,4)", {a({4, 3}), b({3, 4})},
        [f](const auto& v) {
            using V = std::decay_t<decltype(v[0])>;
            return f(std::vector<V>{tg::transpose(v[0]), v[1]});
        },
        [ref](const auto& x) { return xt::xarray<double>(ref(xt::xarray<double>(xt::transpose(x[0])), x[1])); }));
    out.push_back(make_sample(
        "(3,4) with scalar 1.75", {a({3, 4})}, [fs](const auto& v) { return fs(v[0], 1.75); },
        [ref](const auto& x) { return xt::xarray<double>(ref(x[0], xt::xarray<double>(1.75))); }));
    out.push_back(make_sample(
        "scalar 1.75 with (3,4)", {b({3, 4})}, [sf](const auto& v) { return sf(1.75, v[0]); },
        [ref](const auto& x) { return xt::xarray<double>(ref(xt::xarray<double>(1.75), x[0])); }));
    return out;
}

}  // namespace tg::samples
