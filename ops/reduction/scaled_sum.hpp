#pragma once
// The op behind sum and mean: y = scale * (sum of x over some axes), one entry for both,
// so the two differ only in their scale (1 or 1 / count).
//   vjp: grad_x = scale * grad_out broadcast back over the summed axes
//        (grad_out read in the keepdim shape, then expanded to x's shape)

#include <algorithm>
#include <string>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::reduction {

using Shape = xt::xarray<double>::shape_type;

/// Which axes of a shape are summed: x's shape with them set to 1 (`keep`), the result's
/// shape (`out`), and the one axis when exactly one is summed (for the fast loops).
struct Axes {
    Shape keep;
    Shape out;
    std::ptrdiff_t single = -1;
    std::size_t count = 1;  ///< number of elements summed into each output element
};

/// Resolves `axes` (negative counts from the end) against `shape`; every axis when
/// `all` is set. Throws `<op>: axis 2 is out of range for shape [3, 4]` and
/// `<op>: axis 1 is repeated`.
template <class S>
Axes resolve(const char* op, const S& shape, const std::vector<std::ptrdiff_t>& axes, bool all, bool keepdim)
{
    const auto rank = static_cast<std::ptrdiff_t>(shape.size());
    std::vector<char> summed(shape.size(), all ? 1 : 0);
    for (std::ptrdiff_t a : axes) {
        const std::ptrdiff_t r = a < 0 ? a + rank : a;
        if (r < 0 || r >= rank) {
            throw Error(std::string(op) + ": axis " + std::to_string(a) + " is out of range for shape " +
                        format_shape(shape));
        }
        if (summed[static_cast<std::size_t>(r)])
            throw Error(std::string(op) + ": axis " + std::to_string(a) + " is repeated");
        summed[static_cast<std::size_t>(r)] = 1;
    }
    Axes r;
    std::size_t n_summed = 0;
    for (std::size_t j = 0; j < shape.size(); ++j) {
        if (summed[j]) {
            r.keep.push_back(1);
            if (keepdim) r.out.push_back(1);
            r.count *= shape[j];
            r.single = static_cast<std::ptrdiff_t>(j);
            ++n_summed;
        } else {
            r.keep.push_back(shape[j]);
            r.out.push_back(shape[j]);
        }
    }
    if (n_summed != 1) r.single = -1;
    return r;
}

/// y = scale * sum of x over the axes. `Name` gives the op's name (sum or mean).
template <class Name> struct ScaledSum {
    static constexpr const char* name = Name::value;
    Axes axes;
    double scale;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto& y = c.output(axes.out);
        const T s = static_cast<T>(scale);
        if (axes.single >= 0) {
            axis::sum_axis(axis::split(name, x.shape(), axes.single), x.data(), y.data(), s);
            return;
        }
        broadcast::reduce(x.data(), x.shape(), y.data(), axes.keep, false);
        if (s != T(1)) {
            kernel::map<false>(
                y.size(), y.data(), [s](auto v) { return v * decltype(v)(s); }, static_cast<const T*>(y.data()));
        }
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T s = static_cast<T>(scale);
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            if (axes.single >= 0) {
                axis::spread_axis(axis::split(name, x.shape(), axes.single), g, dst, s, add);
                return;
            }
            if (s == T(1)) {
                broadcast::expand(g, axes.keep, dst, x.shape(), add);
                return;
            }
            std::vector<T> scaled(g, g + c.grad_out().size());
            for (auto& v : scaled) v *= s;
            broadcast::expand(static_cast<const T*>(scaled.data()), axes.keep, dst, x.shape(), add);
        });
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto& xs = v.input_shape(0);
        Var<T> g = v.grad_out();
        if (!detail::shapes_equal(g.shape(), axes.keep))
            g = reshape(g, std::vector<std::size_t>(axes.keep.begin(), axes.keep.end()));
        g = expand(g, std::vector<std::size_t>(xs.begin(), xs.end()));
        if (scale != 1.0) g = g * static_cast<T>(scale);
        v.add_grad(0, g);
    }
};

}  // namespace tg::reduction
