#pragma once
// What max, min, amax, amin, argmax and argmin share: the scan for the extremum of a slice,
// with PyTorch's conventions, and the ops built on it.
//
// Conventions (PyTorch's): along an axis, the extremum is the FIRST maximum (or minimum),
// unless the slice holds a NaN: then the result is NaN and its position the first NaN
// (torch.max(x, dim) and torch.argmax agree on this). Over all elements (amax, amin) ties
// share the gradient evenly, each of k tied elements getting grad_out / k; a NaN makes the
// result NaN and, as in PyTorch, every element's gradient NaN (no element equals NaN, so
// the share is 0 / 0).
//   max/min along an axis:  vjp: grad_x = grad_out at the saved arg-extremum of each slice, 0 elsewhere
//   amax/amin:              vjp: grad_x = grad_out * [x == y] / count(x == y)

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "along_axis.hpp"

namespace tg::reduction {

/// Position of the first extremum (the largest when Greater) of a strided slice of n >= 1
/// elements; the first NaN wins over every number.
template <bool Greater, class T> std::size_t slice_arg(std::size_t n, const T* x, std::size_t stride) noexcept
{
    T m = x[0];
    if (m != m) return 0;
    std::size_t at = 0;
    for (std::size_t l = 1; l < n; ++l) {
        const T v = x[l * stride];
        if (v != v) return l;
        if (Greater ? v > m : v < m) {
            m = v;
            at = l;
        }
    }
    return at;
}

/// The extremum of all n >= 1 elements; NaN if any is NaN.
template <bool Greater, class T> T all_extremum(std::size_t n, const T* x) noexcept
{
    T m = x[0];
    for (std::size_t i = 0; i < n && m == m; ++i) {
        const T v = x[i];
        if (v != v || (Greater ? v > m : v < m)) m = v;
    }
    return m;
}

/// The arg-extremum along an axis as an int64 array (argmax, argmin): not differentiable.
template <bool Greater, class T>
xt::xarray<std::int64_t> arg_along(const char* op, const Var<T>& x, std::ptrdiff_t axis, bool keepdim = false)
{
    const auto& v = input_value(op, x);
    const AlongAxis r = along(op, v.shape(), axis, keepdim);
    check_not_empty(op, v.shape(), axis, r);
    xt::xarray<std::int64_t> out = xt::xarray<std::int64_t>::from_shape(r.out);
    std::int64_t* idx = out.data();
    const T* px = v.data();
    axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
        *idx++ = static_cast<std::int64_t>(slice_arg<Greater>(r.split.len, px + off, st));
    });
    return out;
}

/// y = the extremum along an axis (max, min). `Name` gives the op's name.
template <class Name, bool Greater> struct Extremum {
    static constexpr const char* name = Name::value;
    std::ptrdiff_t axis;
    bool keepdim;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const AlongAxis r = along(name, x.shape(), axis, keepdim);
        T* y = c.output(r.out).data();
        // The positions are kept only for a backward: the first-order kernel and the rule
        // both route the gradient through them.
        std::int64_t* idx = nullptr;
        if (c.recording()) {
            auto& saved = c.saved_indices(0);
            if (!detail::shapes_equal(saved.shape(), r.out)) saved.resize(r.out);
            idx = saved.data();
        }
        const T* px = x.data();
        std::size_t o = 0;
        axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
            const std::size_t l = slice_arg<Greater>(r.split.len, px + off, st);
            y[o] = px[off + l * st];
            if (idx != nullptr) idx[o] = static_cast<std::int64_t>(l);
            ++o;
        });
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const AlongAxis r = along(name, x.shape(), axis, keepdim);
        const std::int64_t* idx = c.saved_indices(0).data();
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            if (!add) std::fill(dst, dst + x.size(), T(0));
            std::size_t o = 0;
            axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
                dst[off + static_cast<std::size_t>(idx[o]) * st] += g[o];
                ++o;
            });
        });
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto& xs = v.input_shape(0);
        const AlongAxis r = along(name, xs, axis, keepdim);
        const std::int64_t* idx = v.saved_indices(0).data();
        xt::xarray<bool> at = xt::xarray<bool>::from_shape(xs);
        std::fill(at.begin(), at.end(), false);
        std::size_t o = 0;
        axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
            at.data()[off + static_cast<std::size_t>(idx[o]) * st] = true;
            ++o;
        });
        // where() is linear in grad_out and sends nothing to the mask, so the rule's own
        // derivative is the same scatter: the second derivative in x is 0, as PyTorch's.
        v.add_grad(0, tg::where(at, kept(v.grad_out(), r.keep), T(0)));
    }
};

/// y = the extremum of all elements (amax, amin), rank 0. `Name` gives the op's name.
template <class Name, bool Greater> struct AllExtremum {
    static constexpr const char* name = Name::value;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        c.output({}).data()[0] = all_extremum<Greater>(x.size(), x.data());
    }

    // Each element's share of grad_out: [x == y] / count; 0 / 0 (NaN) for every element
    // when y is NaN, as PyTorch's amax gives.
    template <class T> static xt::xarray<T> shares(const xt::xarray<T>& x, T y)
    {
        std::size_t count = 0;
        for (std::size_t i = 0; i < x.size(); ++i) count += x.data()[i] == y ? 1 : 0;
        const auto n = static_cast<T>(count);
        xt::xarray<T> w = xt::xarray<T>::from_shape(x.shape());
        for (std::size_t i = 0; i < x.size(); ++i) w.data()[i] = (x.data()[i] == y ? T(1) : T(0)) / n;
        return w;
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T y = c.output().data()[0];
        const T g = c.grad_out().data()[0];
        std::size_t count = 0;
        for (std::size_t i = 0; i < x.size(); ++i) count += x.data()[i] == y ? 1 : 0;
        const auto n = static_cast<T>(count);
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            for (std::size_t i = 0; i < x.size(); ++i) {
                const T share = g * ((x.data()[i] == y ? T(1) : T(0)) / n);
                dst[i] = add ? dst[i] + share : share;
            }
        });
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        // The shares are constants: linear in grad_out, no second derivative in x.
        const Var<T> x = v.input(0), y = v.output();
        v.add_grad(0, v.grad_out() * constant(shares(x.value(), y.value()())));
    }
};

/// Refuses amax/amin of an empty Var, as PyTorch does.
template <class S> void check_not_empty_all(const char* op, const S& shape)
{
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    if (n == 0) {
        throw Error(std::string(op) + ": cannot reduce an empty Var of shape " + format_shape(shape) +
                    ": the reduction has no identity");
    }
}

/// The samples of argmax (Greater) and argmin: `arg(x, axis)` calls the op; `torch_fn` is
/// "torch.argmax" or "torch.argmin". The op is not differentiable, so each sample returns
/// stack({i as a constant, x at i along the axis (gather)}): a Var that carries the indices
/// exactly and, through gather, depends on x, so the generic checks reach it.
template <bool Greater, class Arg>
std::vector<OpSample> arg_samples(std::mt19937_64& rng, const char* op, Arg arg, const std::string& torch_fn)
{
    auto better = [](double a, double b) { return Greater ? a > b : a < b; };
    return axis_samples(
        axis_cases(false, false), [&](const auto& s) { return sample_uniform(rng, s, -2.0, 2.0); },
        [op, arg](const auto& x, std::ptrdiff_t a, bool) {
            using V = std::decay_t<decltype(x)>;
            using T = typename V::value_type;
            const xt::xarray<std::int64_t> idx = arg(x, a);
            V picked = x;  // a rank-0 x is its own extremum
            if (x.dim() > 0) {
                std::vector<std::size_t> keep(x.shape().begin(), x.shape().end());
                keep[axis::resolve(op, keep, a)] = 1;
                xt::xarray<std::int64_t> at = idx;
                at.reshape(keep);
                picked = tg::squeeze(tg::gather(x, a, at), a);
            }
            return tg::stack(std::vector<V>{constant(xt::xarray<T>(xt::cast<T>(idx))), picked}, 0);
        },
        [better](const xt::xarray<double>& x, std::size_t a) {
            const xt::xarray<double> at = per_slice(x, a, [better](const std::vector<double>& s) {
                std::size_t best = 0;
                for (std::size_t l = 1; l < s.size(); ++l) best = better(s[l], s[best]) ? l : best;
                return static_cast<double>(best);
            });
            const xt::xarray<double> value = per_slice(x, a, [better](const std::vector<double>& s) {
                double m = s[0];
                for (double v : s) m = better(v, m) ? v : m;
                return m;
            });
            std::vector<std::size_t> shape{2};
            shape.insert(shape.end(), at.shape().begin(), at.shape().end());
            xt::xarray<double> y = xt::zeros<double>(shape);
            std::copy(at.begin(), at.end(), y.begin());
            std::copy(value.begin(), value.end(), y.begin() + static_cast<std::ptrdiff_t>(at.size()));
            return y;
        },
        [torch_fn](const std::string& in, std::ptrdiff_t a, bool) {
            const std::string d = std::to_string(a);
            return "torch.stack([" + torch_fn + "(" + in + ", dim=" + d + ").double(), torch.gather(" + in + ", " + d +
                   ", " + torch_fn + "(" + in + ", dim=" + d + ", keepdim=True)).squeeze(" + d + ")])";
        });
}

}  // namespace tg::reduction
