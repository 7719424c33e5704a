// ops/reduction/min.cpp — y = min of x along one axis (removed unless keepdim), as
//   torch.min(x, dim).values: the first minimum of each slice, NaN if the slice holds one.
//   x [..., n, ...] -> y [..., ...] (or [..., 1, ...] with keepdim)
//   vjp: grad_x = grad_out scattered to the arg-min of each slice (the first minimum, or the
//        first NaN), 0 elsewhere; ties send nothing to the later minima   (extremum.hpp)

#include "extremum.hpp"

namespace tg {

//! public
/// The smallest element along an axis (torch.min(x, dim).values); the gradient goes to the first minimum.
/// The axis is removed unless keepdim; negative counts from the end; a rank-0 x takes axis 0 or -1. A NaN in a
/// slice makes its result NaN (and takes the gradient). An axis of size 0 is an error (no identity).
template <class T> Var<T> min(const Var<T>& x, std::ptrdiff_t axis, bool keepdim = false);
//! end

namespace {
struct MinName {
    static constexpr const char* value = TAPEGRAD_OP_NAME;
};
using Min = reduction::Extremum<MinName, false>;
}  // namespace

template <class T> Var<T> min(const Var<T>& x, std::ptrdiff_t axis, bool keepdim)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    reduction::check_not_empty(Min::name, s, axis, reduction::along(Min::name, s, axis, keepdim));
    return record(Min{axis, keepdim}, x);
}

template Var<float> min<float>(const Var<float>&, std::ptrdiff_t, bool);
template Var<double> min<double>(const Var<double>&, std::ptrdiff_t, bool);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::reduction::axis_samples(
        tg::reduction::axis_cases(false, true), [&](const auto& s) { return tg::sample_uniform(rng, s, -2.0, 2.0); },
        [](const auto& x, std::ptrdiff_t a, bool k) { return tg::min(x, a, k); },
        [](const xt::xarray<double>& x, std::size_t a) {
            return tg::reduction::per_slice(x, a, [](const std::vector<double>& s) {
                double m = s[0];
                for (double v : s) m = v < m ? v : m;
                return m;
            });
        },
        [](const std::string& in, std::ptrdiff_t a, bool k) {
            return "torch.min(" + in + ", dim=" + std::to_string(a) + tg::reduction::torch_keepdim(k) + ").values";
        });
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::min(x, axis); });
    errors.push_back(tg::make_error_input(
        "empty axis 1 of (2,0)", {xt::ones<double>({2, 0})}, [](const auto& v) { return tg::min(v[0], 1); },
        "cannot reduce over axis 1 of size 0 (shape [2, 0]): the reduction has no identity"));
    return errors;
}
