// ops/reduction/cumsum.cpp — y[..., l, ...] = sum of x[..., 0..l, ...] along one axis
//   (torch.cumsum(x, dim)); y has x's shape. A rank-0 x takes axis 0 or -1 and is its own sum.
//   vjp: grad_x[..., l, ...] = sum of grad_out[..., l..n-1, ...], the cumulative sum taken
//        from the other end: flip(cumsum(flip(grad_out))), the flips as index_select with
//        reversed indices (exact, unlike total - cumsum + grad_out, which cancels)

#include <cstdint>

#include "along_axis.hpp"

namespace tg {

//! public
/// Running sums along an axis (torch.cumsum(x, dim)); same shape as x, negative axes count from the end.
template <class T> Var<T> cumsum(const Var<T>& x, std::ptrdiff_t axis);
//! end

namespace {

struct Cumsum {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::ptrdiff_t axis;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const axis::Split r = reduction::along(name, x.shape(), axis, false).split;
        const T* px = x.data();
        T* y = c.output(x.shape()).data();
        axis::for_slices(r, [&](std::size_t off, std::size_t st) {
            T total = 0;
            for (std::size_t l = 0; l < r.len; ++l) {
                total += px[off + l * st];
                y[off + l * st] = total;
            }
        });
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const axis::Split r = reduction::along(name, x.shape(), axis, false).split;
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            axis::for_slices(r, [&](std::size_t off, std::size_t st) {
                T total = 0;
                for (std::size_t l = r.len; l-- > 0;) {
                    const std::size_t k = off + l * st;
                    total += g[k];
                    dst[k] = add ? dst[k] + total : total;
                }
            });
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const axis::Split r = reduction::along(name, v.input_shape(0), axis, false).split;
        const Var<T>& g = v.grad_out();
        if (r.len <= 1) {  // a rank-0 x, or nothing to add up
            v.add_grad(0, g);
            return;
        }
        xt::xarray<std::int64_t> reversed = xt::xarray<std::int64_t>::from_shape({r.len});
        for (std::size_t l = 0; l < r.len; ++l) reversed(l) = static_cast<std::int64_t>(r.len - 1 - l);
        const auto a = static_cast<std::ptrdiff_t>(r.axis);
        v.add_grad(0, index_select(cumsum(index_select(g, a, reversed), a), a, reversed));
    }
};

}  // namespace

template <class T> Var<T> cumsum(const Var<T>& x, std::ptrdiff_t axis)
{
    reduction::along(Cumsum::name, input_shape(TAPEGRAD_OP_NAME, x), axis, false);  // checks the axis
    return record(Cumsum{axis}, x);
}

template Var<float> cumsum<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> cumsum<double>(const Var<double>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::reduction::axis_samples(
        tg::reduction::axis_cases(true, false), [&](const auto& s) { return tg::sample_uniform(rng, s, -2.0, 2.0); },
        [](const auto& x, std::ptrdiff_t a, bool) { return tg::cumsum(x, a); },
        [](const xt::xarray<double>& x, std::size_t a) {
            if (x.dimension() == 0) return x;
            return xt::xarray<double>(xt::cumsum(x, a));
        },
        [](const std::string& in, std::ptrdiff_t a, bool) {
            return "torch.cumsum(" + in + ", dim=" + std::to_string(a) + ")";
        });
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::cumsum(x, axis); });
}
