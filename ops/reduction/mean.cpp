// ops/reduction/mean.cpp — y = mean of x: over all elements (rank 0), over one axis (which is
// removed), or over several axes (kept as size 1 with keepdim); the sum times 1 / count
//   vjp: grad_x = grad_out / count broadcast back over the averaged axes   (scaled_sum.hpp)

#include "scaled_sum.hpp"

namespace tg {

//! public
/// Mean of all elements (rank-0 result; NaN for an empty Var, as PyTorch).
template <class T> Var<T> mean(const Var<T>& x);
/// Mean along one axis, which is removed.
template <class T> Var<T> mean(const Var<T>& x, std::ptrdiff_t axis);
/// Mean over several axes; keepdim leaves them in the result with size 1.
template <class T> Var<T> mean(const Var<T>& x, const std::vector<std::ptrdiff_t>& axes, bool keepdim = false);
//! end

namespace {
struct MeanName {
    static constexpr const char* value = TAPEGRAD_OP_NAME;
};
using Mean = reduction::ScaledSum<MeanName>;

Mean make(reduction::Axes axes)
{
    const double scale = 1.0 / static_cast<double>(axes.count);
    return Mean{std::move(axes), scale};
}
}  // namespace

template <class T> Var<T> mean(const Var<T>& x)
{
    return record(make(reduction::resolve(Mean::name, input_shape(TAPEGRAD_OP_NAME, x), {}, true, false)), x);
}
template <class T> Var<T> mean(const Var<T>& x, std::ptrdiff_t axis)
{
    return record(make(reduction::resolve(Mean::name, input_shape(TAPEGRAD_OP_NAME, x), {axis}, false, false)), x);
}
template <class T> Var<T> mean(const Var<T>& x, const std::vector<std::ptrdiff_t>& axes, bool keepdim)
{
    return record(make(reduction::resolve(Mean::name, input_shape(TAPEGRAD_OP_NAME, x), axes, false, keepdim)), x);
}

TAPEGRAD_INSTANTIATE_UNARY(mean)
template Var<float> mean<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> mean<double>(const Var<double>&, std::ptrdiff_t);
template Var<float> mean<float>(const Var<float>&, const std::vector<std::ptrdiff_t>&, bool);
template Var<double> mean<double>(const Var<double>&, const std::vector<std::ptrdiff_t>&, bool);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto out = tg::samples::unary(
        rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::mean(v[0]); },
        [](const auto& x) {
            // A plain loop: xtensor's reducers offset an empty array's null data pointer.
            double total = 0;
            for (std::size_t k = 0; k < x.size(); ++k) total += x.data()[k];
            return xt::xarray<double>(total / static_cast<double>(x.size()));  // NaN when empty, as torch
        },
        "torch.mean({0})");
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    out.push_back(tg::make_sample(
                      "(3,4) axis 0", {u({3, 4})}, [](const auto& v) { return tg::mean(v[0], 0); },
                      [](const auto& x) { return xt::xarray<double>(xt::mean(x[0], {0})); })
                      .with_torch("torch.mean(x[0], dim=0)"));
    out.push_back(tg::make_sample(
                      "(3,4) axis -1", {u({3, 4})}, [](const auto& v) { return tg::mean(v[0], -1); },
                      [](const auto& x) { return xt::xarray<double>(xt::mean(x[0], {1})); })
                      .with_torch("torch.mean(x[0], dim=-1)"));
    out.push_back(tg::make_sample(
                      "(2,3,4) axis 1", {u({2, 3, 4})}, [](const auto& v) { return tg::mean(v[0], 1); },
                      [](const auto& x) { return xt::xarray<double>(xt::mean(x[0], {1})); })
                      .with_torch("torch.mean(x[0], dim=1)"));
    out.push_back(tg::make_sample(
                      "(2,3,4) axes {0,2} keepdim", {u({2, 3, 4})},
                      [](const auto& v) {
                          return tg::mean(v[0], {0, 2}, true);
                      },
                      [](const auto& x) {
                          return xt::xarray<double>(xt::mean(x[0], {0, 2}, xt::keep_dims));
                      })
                      .with_torch("torch.mean(x[0], dim=(0, 2), keepdim=True)"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Axes = std::vector<std::ptrdiff_t>;
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::mean(x, axis); });
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    errors.push_back(tg::make_error_input(
        "axes {0, 0}", {x},
        [](const auto& v) {
            return tg::mean(v[0], Axes{0, 0});
        },
        "axis 0 is repeated"));
    errors.push_back(tg::make_error_input(
        "axes {1, -1} of (2,3)", {x},
        [](const auto& v) {
            return tg::mean(v[0], Axes{1, -1}, true);
        },
        "axis -1 is repeated"));
    errors.push_back(tg::make_error_input(
        "axes {0, 2} of (2,3)", {x},
        [](const auto& v) {
            return tg::mean(v[0], Axes{0, 2});
        },
        "axis 2 is out of range for shape [2, 3]"));
    return errors;
}
