// ops/reduction/argmin.cpp — i = the position of the first minimum of x along one axis
//   (torch.argmin(x, dim)): the first NaN if the slice holds one; an axis of size 0 is an
//   error (no identity), as in PyTorch. x [..., n, ...] -> i [..., ...], int64.
//   Not differentiable: a plain function, with no tape entry and no vjp.
//
// Registered all the same, so that every file in ops/ has a registration and the generic
// tests reach it through the samples of extremum.hpp (arg_samples).

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
    return tg::reduction::arg_samples<false>(
        rng, TAPEGRAD_OP_NAME, [](const auto& x, std::ptrdiff_t a) { return tg::argmin(x, a); }, "torch.argmin");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::argmin(x, axis); });
    errors.push_back(tg::make_error_input(
        "empty axis 1 of (2,0)", {xt::ones<double>({2, 0})}, [](const auto& v) { return tg::argmin(v[0], 1); },
        "cannot reduce over axis 1 of size 0 (shape [2, 0]): the reduction has no identity"));
    return errors;
}
