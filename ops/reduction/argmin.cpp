// ops/reduction/argmin.cpp — i = the position of the first minimum of x along one axis
//   (torch.argmin(x, dim)): the first NaN if the slice holds one; an axis of size 0 is an
//   error (no identity), as in PyTorch. x [..., n, ...] -> i [..., ...], int64.
//   Not differentiable: a plain function, with no tape entry and no vjp.
//
// Registered all the same, so that every file in ops/ has a registration and the generic
// tests reach it: a sample returns stack({i as a constant, x at i along the axis (gather)}),
// a Var that carries the indices exactly (checked against the reference and PyTorch) and,
// through gather, depends on x, so that gradcheck, the shape checks and float32 run on it.

#include "extremum.hpp"

namespace tg {

//! public
/// Position of the first minimum along an axis, removed (torch.argmin(x, dim)); int64, not differentiable.
/// A NaN counts as the minimum (its first position is returned); a rank-0 x takes axis 0 or -1; an axis of size 0 is
/// an error.
template <class T> xt::xarray<std::int64_t> argmin(const Var<T>& x, std::ptrdiff_t axis);
//! end

template <class T> xt::xarray<std::int64_t> argmin(const Var<T>& x, std::ptrdiff_t axis)
{
    return reduction::arg_along<false>(TAPEGRAD_OP_NAME, x, axis);
}

template xt::xarray<std::int64_t> argmin<float>(const Var<float>&, std::ptrdiff_t);
template xt::xarray<std::int64_t> argmin<double>(const Var<double>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::reduction::axis_samples(
        tg::reduction::axis_cases(false, false), [&](const auto& s) { return tg::sample_uniform(rng, s, -2.0, 2.0); },
        [](const auto& x, std::ptrdiff_t a, bool) {
            using V = std::decay_t<decltype(x)>;
            using T = typename V::value_type;
            const xt::xarray<std::int64_t> idx = tg::argmin(x, a);
            V picked = x;  // a rank-0 x is its own minimum
            if (x.dim() > 0) {
                std::vector<std::size_t> keep(x.shape().begin(), x.shape().end());
                keep[tg::axis::resolve(TAPEGRAD_OP_NAME, keep, a)] = 1;
                xt::xarray<std::int64_t> at = idx;
                at.reshape(keep);
                picked = tg::squeeze(tg::gather(x, a, at), a);
            }
            return tg::stack(std::vector<V>{tg::constant(xt::xarray<T>(xt::cast<T>(idx))), picked}, 0);
        },
        [](const xt::xarray<double>& x, std::size_t a) {
            const xt::xarray<double> at = tg::reduction::per_slice(x, a, [](const std::vector<double>& s) {
                std::size_t best = 0;
                for (std::size_t l = 1; l < s.size(); ++l) best = s[l] < s[best] ? l : best;
                return static_cast<double>(best);
            });
            const xt::xarray<double> value = tg::reduction::per_slice(x, a, [](const std::vector<double>& s) {
                double m = s[0];
                for (double v : s) m = v < m ? v : m;
                return m;
            });
            std::vector<std::size_t> shape{2};
            shape.insert(shape.end(), at.shape().begin(), at.shape().end());
            xt::xarray<double> y = xt::zeros<double>(shape);
            std::copy(at.begin(), at.end(), y.begin());
            std::copy(value.begin(), value.end(), y.begin() + static_cast<std::ptrdiff_t>(at.size()));
            return y;
        },
        [](const std::string& in, std::ptrdiff_t a, bool) {
            const std::string d = std::to_string(a);
            return "torch.stack([torch.argmin(" + in + ", dim=" + d + ").double(), torch.gather(" + in + ", " + d +
                   ", torch.argmin(" + in + ", dim=" + d + ", keepdim=True)).squeeze(" + d + ")])";
        });
}
