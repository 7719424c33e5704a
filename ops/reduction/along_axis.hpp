#pragma once
// What the reductions over one axis share (max, min, argmax, argmin, logsumexp, var, norm,
// cumsum): the axis resolved the way PyTorch's dim= arguments resolve it, x seen as
// [outer, len, inner] around it, and the shapes of the result with and without keepdim.
//
// PyTorch lets a rank-0 tensor be reduced along dim 0 or -1, as if it had one axis of
// length 1 (torch.max(torch.tensor(3.), 0) is (3, 0)), and the result stays rank 0 with
// or without keepdim; axis::split refuses rank 0, so that case is handled here.

#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::reduction {

using Shape = xt::xarray<double>::shape_type;

/// One axis of x, reduced.
struct AlongAxis {
    axis::Split split;  ///< x as [outer, len, inner]; all 1 for a rank-0 x
    Shape keep;         ///< x's shape with the axis set to 1 (empty for a rank-0 x)
    Shape out;          ///< the result's shape: `keep` with keepdim, else x's shape without the axis
};

/// Resolves `axis` (negative counts from the end) against `shape`. Throws
/// `<op>: axis 2 is out of range for shape [3, 4]`.
template <class S> AlongAxis along(const char* op, const S& shape, std::ptrdiff_t axis, bool keepdim)
{
    AlongAxis r;
    if (shape.empty()) {
        if (axis != 0 && axis != -1) {
            throw Error(std::string(op) + ": axis " + std::to_string(axis) +
                        " is out of range for shape [] (a rank-0 Var takes axis 0 or -1)");
        }
        return r;
    }
    r.split = axis::split(op, shape, axis);
    r.keep = Shape(shape.begin(), shape.end());
    r.keep[r.split.axis] = 1;
    r.out = keepdim ? r.keep : axis::without(Shape(shape.begin(), shape.end()), r.split.axis);
    return r;
}

/// For reductions without an identity (max, min, argmax, argmin), as PyTorch refuses them:
/// `<op>: cannot reduce over axis 1 of size 0 (shape [2, 0, 3]): the reduction has no identity`.
template <class S> void check_not_empty(const char* op, const S& shape, std::ptrdiff_t axis, const AlongAxis& r)
{
    if (r.split.len == 0) {
        throw Error(std::string(op) + ": cannot reduce over axis " + std::to_string(axis) + " of size 0 (shape " +
                    format_shape(shape) + "): the reduction has no identity");
    }
}

/// `g` (the gradient of a result of shape `out`) in the `keep` shape, so that it
/// broadcasts against x along the reduced axis.
template <class T> Var<T> kept(const Var<T>& g, const Shape& keep)
{
    if (detail::shapes_equal(g.shape(), keep)) return g;
    return reshape(g, std::vector<std::size_t>(keep.begin(), keep.end()));
}

}  // namespace tg::reduction

// ---------------------------------------------------------------------------------------
// Samples: the calls every reduction over one axis is exercised on, and a plain reference.

namespace tg::reduction {

/// One sample call of a reduction over one axis.
struct AxisCase {
    std::string label;
    std::vector<std::size_t> shape;  ///< as drawn (the transposed case reduces the transpose)
    std::ptrdiff_t axis;
    bool keepdim;
    bool transposed;
};

/// Ranks 0 to 3, negative axes, keepdim, a size-1 axis, zero-size dims off the axis, a
/// transposed input, and, when the reduction has an identity (`empty_axis`), zero-size
/// axes. Without `keepdim` (argmax, cumsum) every case drops it.
inline std::vector<AxisCase> axis_cases(bool empty_axis, bool keepdim)
{
    std::vector<AxisCase> cases = {
        {"() axis 0", {}, 0, false, false},
        {"() axis -1 keepdim", {}, -1, true, false},
        {"(5,) axis 0", {5}, 0, false, false},
        {"(1,) axis -1", {1}, -1, false, false},
        {"(3,4) axis 0", {3, 4}, 0, false, false},
        {"(3,4) axis -1", {3, 4}, -1, false, false},
        {"(3,4) axis 1 keepdim", {3, 4}, 1, true, false},
        {"(3,1) axis 1", {3, 1}, 1, false, false},
        {"(2,3,4) axis 1", {2, 3, 4}, 1, false, false},
        {"(2,3,4) axis -3 keepdim", {2, 3, 4}, -3, true, false},
        {"(2,3,4) axis 2", {2, 3, 4}, 2, false, false},
        {"(0,3) axis 1", {0, 3}, 1, false, false},
        {"(2,0,3) axis 2", {2, 0, 3}, 2, false, false},
        {"(2,0,3) axis 0 keepdim", {2, 0, 3}, 0, true, false},
        {"transposed (4,3) axis 1", {4, 3}, 1, false, true},
        {"transposed (4,3) axis -2 keepdim", {4, 3}, -2, true, true},
    };
    if (empty_axis) {
        cases.push_back({"(2,0,3) axis 1 (empty axis)", {2, 0, 3}, 1, false, false});
        cases.push_back({"(0,3) axis -2 keepdim (empty axis)", {0, 3}, -2, true, false});
    }
    if (!keepdim) {
        std::vector<AxisCase> kept_out;
        for (auto c : cases) {
            if (c.keepdim) continue;  // the same shapes without keepdim are there already
            kept_out.push_back(std::move(c));
        }
        cases = std::move(kept_out);
    }
    return cases;
}

/// y[o, i] = f(the slice x[o, :, i] as a std::vector) for a row-major x: a plain reference
/// for the samples, independent of the kit's kernels. A rank-0 x is one slice of one element.
template <class F> xt::xarray<double> per_slice(const xt::xarray<double>& x, std::size_t axis, F f)
{
    if (x.dimension() == 0) return xt::xarray<double>(f(std::vector<double>{x()}));
    std::vector<std::size_t> out;
    std::size_t outer = 1, inner = 1;
    for (std::size_t j = 0; j < x.dimension(); ++j) {
        if (j != axis) out.push_back(x.shape()[j]);
        if (j < axis) outer *= x.shape()[j];
        if (j > axis) inner *= x.shape()[j];
    }
    const std::size_t len = x.shape()[axis];
    xt::xarray<double> y = xt::zeros<double>(out);
    std::vector<double> slice(len);
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t i = 0; i < inner; ++i) {
            for (std::size_t l = 0; l < len; ++l) slice[l] = x.data()[(o * len + l) * inner + i];
            y.data()[o * inner + i] = f(slice);
        }
    }
    return y;
}

/// One sample per case: `f(x, axis, keepdim)` calls the op on a Var (the transpose for a
/// transposed case), `ref(x, axis)` computes the result without keepdim from a row-major
/// array and a non-negative axis (0 for a rank-0 x), and `torch(input, axis, keepdim)` is
/// the PyTorch expression with input "x[0]" or "x[0].T" ("" for none). `draw(shape)` draws
/// the input.
template <class Draw, class F, class R, class P>
std::vector<OpSample> axis_samples(const std::vector<AxisCase>& cases, Draw draw, F f, R ref, P torch)
{
    std::vector<OpSample> out;
    for (const auto& c : cases) {
        const std::ptrdiff_t a = c.axis;
        const bool k = c.keepdim, t = c.transposed;
        auto call = [f, a, k, t](const auto& v) { return f(t ? tg::transpose(v[0]) : v[0], a, k); };
        auto expected = [ref, a, k, t](const auto& xs) {
            const xt::xarray<double> x = t ? xt::xarray<double>(xt::transpose(xs[0])) : xs[0];
            const auto rank = static_cast<std::ptrdiff_t>(x.dimension());
            const auto ax = static_cast<std::size_t>(rank == 0 ? 0 : a < 0 ? a + rank : a);
            xt::xarray<double> y = ref(x, ax);
            if (k && rank > 0) {
                std::vector<std::size_t> keep(x.shape().begin(), x.shape().end());
                keep[ax] = 1;
                y.reshape(keep);
            }
            return y;
        };
        OpSample s = make_sample(c.label, {draw(c.shape)}, call, expected);
        s.torch = torch(t ? std::string("x[0].T") : std::string("x[0]"), a, k);
        out.push_back(std::move(s));
    }
    return out;
}

/// ", keepdim=True" when keepdim is set, for PyTorch expressions.
inline std::string torch_keepdim(bool keepdim)
{
    return keepdim ? ", keepdim=True" : "";
}

}  // namespace tg::reduction
