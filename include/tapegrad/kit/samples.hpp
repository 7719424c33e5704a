#pragma once
/// \file kit/samples.hpp
/// Sample generators for op registrations: the shapes every elementwise op should be
/// exercised on, each with an independent reference for the forward value, and the shape
/// pairs a broadcasting op must refuse.

#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xmanipulation.hpp>

#include "tapegrad/op.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/testing/registry.hpp"

namespace tg {
template <class T> Var<T> transpose(const Var<T>& x);  // for the transposed samples (see kit/elementwise.hpp)
}  // namespace tg

namespace tg::samples {

/// A tensor shape.
using Shape = std::vector<std::size_t>;

/// A PyTorch expression from a pattern: "{0}", "{1}", ... become args[0], args[1], ...
/// e.g. fill("torch.minimum({0}, {1})", {"x[0]", "x[1].T"}).
inline std::string fill(std::string pattern, const std::vector<std::string>& args)
{
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string key = "{" + std::to_string(i) + "}";
        for (auto at = pattern.find(key); at != std::string::npos; at = pattern.find(key, at + args[i].size()))
            pattern.replace(at, key.size(), args[i]);
    }
    return pattern;
}

/// A constant array as a PyTorch literal, e.g. torch.tensor([True, False]).reshape(1, 2),
/// for the arguments of a sample's call that are not inputs (labels, masks, indices).
template <class T> std::string torch_literal(const xt::xarray<T>& a)
{
    std::ostringstream out;
    out.precision(17);
    out << "torch.tensor([";
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) out << ", ";
        if constexpr (std::is_same<T, bool>::value) {
            out << (a.data()[i] ? "True" : "False");
        } else {
            out << a.data()[i];
        }
    }
    out << "]";
    if constexpr (std::is_floating_point<T>::value) {
        out << ", dtype=torch.float64";
    } else if constexpr (!std::is_same<T, bool>::value) {
        out << ", dtype=torch.int64";
    }
    out << ").reshape(" << (a.dimension() == 0 ? "()" : "");
    for (std::size_t j = 0; j < a.dimension(); ++j) out << (j ? ", " : "") << a.shape()[j];
    out << ")";
    return out.str();
}

/// A scalar as a float64 PyTorch tensor (for the scalar forms of binary ops).
inline std::string torch_scalar(double v)
{
    std::ostringstream out;
    out.precision(17);
    out << "torch.tensor(" << v << ", dtype=torch.float64)";
    return out.str();
}

/// Sample calls of a unary op over rank-0, size-1, matrix, rank-3 and zero-size shapes and
/// a transposed input, with values in [lo, hi) kept `gap` away from zero when gap > 0.
/// `ref(x)` computes the expected output from an xt::xarray<double> with a plain formula;
/// `torch` is the PyTorch call with "{0}" for the input (e.g. "torch.exp({0})").
template <class F, class R>
std::vector<OpSample> unary(std::mt19937_64& rng, double lo, double hi, double gap, F f, R ref,
                            const std::string& torch = "")
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
    out.push_back(make_sample("(0,3) empty", {draw({0, 3})}, f, r));
    out.push_back(make_sample(
        "transposed (4,3)", {draw({4, 3})},
        [f](const auto& v) {
            using V = std::decay_t<decltype(v[0])>;
            return f(std::vector<V>{tg::transpose(v[0])});
        },
        [ref](const auto& x) { return xt::xarray<double>(ref(xt::xarray<double>(xt::transpose(x[0])))); }));
    if (!torch.empty()) {
        for (auto& s : out) s.torch = fill(torch, {s.label.rfind("transposed", 0) == 0 ? "x[0].T" : "x[0]"});
    }
    return out;
}

/// Sample calls of a broadcasting binary op: equal shapes, (3,4)+(4,), (3,1)+(1,4),
/// (1,)+(2,3), zero-size batches, rank-0 with a matrix both ways, a transposed input, and the scalar forms
/// through `fs(v, scalar)` and `sf(scalar, v)`. Values of b keep `gap_b` away from zero.
/// `ref(a, b)` computes the expected output from xt::xarray<double>s (it must broadcast;
/// a scalar comes as a rank-0 array); `torch` is the PyTorch call with "{0}" and "{1}".
template <class F, class FS, class SF, class R>
std::vector<OpSample> binary(std::mt19937_64& rng, double lo, double hi, double gap_b, F f, FS fs, SF sf, R ref,
                             const std::string& torch = "")
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
    out.push_back(make_sample("(0,3)+(3,) empty", {a({0, 3}), b({3})}, f, r));
    out.push_back(make_sample("(2,1)+(2,0) empty", {a({2, 1}), b({2, 0})}, f, r));
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
    if (!torch.empty()) {
        for (auto& s : out) {
            if (s.label == "(3,4) with scalar 1.75") {
                s.torch = fill(torch, {"x[0]", torch_scalar(1.75)});
            } else if (s.label == "scalar 1.75 with (3,4)") {
                s.torch = fill(torch, {torch_scalar(1.75), "x[0]"});
            } else {
                s.torch = fill(torch, {s.label.rfind("transposed", 0) == 0 ? "x[0].T" : "x[0]", "x[1]"});
            }
        }
    }
    return out;
}

/// Error inputs of a broadcasting binary op `f(v)` on v[0] and v[1]: pairs of shapes that do
/// not broadcast, each to be refused with "shapes cannot be broadcast together: a is [2, 3],
/// b is [4]".
template <class F> std::vector<ErrorInput> broadcast_errors(F f)
{
    std::vector<ErrorInput> out;
    auto pair = [&](std::string label, const Shape& a, const Shape& b) {
        out.push_back(make_error_input(std::move(label), {xt::ones<double>(a), xt::ones<double>(b)}, f,
                                       "shapes cannot be broadcast together: a is " + format_shape(a) + ", b is " +
                                           format_shape(b)));
    };
    pair("(2,3) with (4,)", {2, 3}, {4});
    pair("(3,2) with (2,3)", {3, 2}, {2, 3});
    pair("(2,3,4) with (3,1,5)", {2, 3, 4}, {3, 1, 5});
    pair("(0,3) with (2,3)", {0, 3}, {2, 3});
    return out;
}

/// Error inputs of an op along one axis, `f(x, axis)` (a reduction, softmax, cumsum, ...):
/// axes 2 and -3 of a [2, 3] input and axis 1 of a rank-0 input, each to be refused with
/// "axis 2 is out of range for shape [2, 3]".
template <class F> std::vector<ErrorInput> axis_errors(F f)
{
    std::vector<ErrorInput> out;
    auto bad = [&](std::string label, const Shape& shape, std::ptrdiff_t axis) {
        out.push_back(make_error_input(
            std::move(label), {xt::ones<double>(shape)}, [f, axis](const auto& v) { return f(v[0], axis); },
            "axis " + std::to_string(axis) + " is out of range for shape " + format_shape(shape)));
    };
    bad("axis 2 of (2,3)", {2, 3}, 2);
    bad("axis -3 of (2,3)", {2, 3}, -3);
    bad("axis 1 of a rank-0 input", {}, 1);
    return out;
}

}  // namespace tg::samples
