#pragma once
/// \file kit/axis.hpp
/// Axis handling shared by reductions and normalisations: an array seen as
/// [outer, len, inner] around one axis, so that a kernel over one axis is three loops.

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"

namespace tg::axis {

/// A possibly negative axis of an array of shape `shape` as an index; throws
/// `<op>: axis 3 is out of range for shape [2, 5]`. With `extra` = 1, accepts the position
/// just past the last axis too (where unsqueeze inserts one).
template <class S> std::size_t resolve(const char* op, const S& shape, std::ptrdiff_t axis, std::size_t extra = 0)
{
    const auto r = static_cast<std::ptrdiff_t>(shape.size() + extra);
    const std::ptrdiff_t a = axis < 0 ? axis + r : axis;
    if (a < 0 || a >= r) {
        throw Error(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for shape " +
                    format_shape(shape) + (extra ? " (inserting an axis)" : ""));
    }
    return static_cast<std::size_t>(a);
}

/// An array of some shape seen as [outer, len, inner] around `axis`.
struct Split {
    ///@{
    /// The axis (non-negative), the product of the sizes before it, its size, and the product of the sizes after it.
    std::size_t axis = 0, outer = 1, len = 1, inner = 1;
    ///@}
};

/// Resolves a possibly negative axis; throws `<op>: axis 2 is out of range for shape [3, 4]`.
template <class S> Split split(const char* op, const S& shape, std::ptrdiff_t axis)
{
    Split r;
    r.axis = resolve(op, shape, axis);
    for (std::size_t j = 0; j < shape.size(); ++j) {
        if (j < r.axis) r.outer *= shape[j];
        if (j > r.axis) r.inner *= shape[j];
    }
    r.len = shape[r.axis];
    return r;
}

/// The shape without `axis`.
template <class S> S without(const S& shape, std::size_t axis)
{
    S out;
    for (std::size_t j = 0; j < shape.size(); ++j) {
        if (j != axis) out.push_back(shape[j]);
    }
    return out;
}

/// y[o, i] = scale * sum_l x[o, l, i]
template <class T> void sum_axis(const Split& r, const T* x, T* y, T scale)
{
    for (std::size_t o = 0; o < r.outer; ++o) {
        T* yo = y + o * r.inner;
        for (std::size_t i = 0; i < r.inner; ++i) yo[i] = T(0);
        for (std::size_t l = 0; l < r.len; ++l) {
            const T* xl = x + (o * r.len + l) * r.inner;
            for (std::size_t i = 0; i < r.inner; ++i) yo[i] += xl[i];
        }
        for (std::size_t i = 0; i < r.inner; ++i) yo[i] *= scale;
    }
}

/// gx[o, l, i] (=|+=) scale * g[o, i]
template <class T> void spread_axis(const Split& r, const T* g, T* gx, T scale, bool add)
{
    for (std::size_t o = 0; o < r.outer; ++o) {
        const T* go = g + o * r.inner;
        for (std::size_t l = 0; l < r.len; ++l) {
            T* xl = gx + (o * r.len + l) * r.inner;
            for (std::size_t i = 0; i < r.inner; ++i) xl[i] = add ? xl[i] + scale * go[i] : scale * go[i];
        }
    }
}

}  // namespace tg::axis

namespace tg::axis {

/// Calls f(offset, stride) for every 1-D slice along the axis: element l of the slice is
/// at offset + l * stride.
template <class F> void for_slices(const Split& r, F f)
{
    for (std::size_t o = 0; o < r.outer; ++o) {
        for (std::size_t i = 0; i < r.inner; ++i) f(o * r.len * r.inner + i, r.inner);
    }
}

/// Largest element of a strided slice; NaN if any element is NaN; -inf for an empty slice
/// (which has no first element to start from).
template <class T> T slice_max(std::size_t n, const T* x, std::size_t stride)
{
    if (n == 0) return -std::numeric_limits<T>::infinity();
    T m = x[0];
    for (std::size_t l = 1; l < n; ++l) {
        const T v = x[l * stride];
        if (v > m || v != v) m = v;
        if (m != m) break;
    }
    return m;
}

/// log(sum(exp(x))) of a strided slice, computed around its maximum so that it neither
/// overflows nor loses the largest term; -inf (the log of an empty sum) for an empty slice.
template <class T> T slice_logsumexp(std::size_t n, const T* x, std::size_t stride)
{
    const T m = slice_max(n, x, stride);
    if (std::isinf(m)) return m;  // all -inf gives -inf; any +inf gives +inf
    T s = 0;
    for (std::size_t l = 0; l < n; ++l) s += std::exp(x[l * stride] - m);
    return m + std::log(s);
}

}  // namespace tg::axis
