// ops/reduction/sum.cpp — y = sum of x: over all elements (rank 0), over one axis (which is
// removed), or over several axes (kept as size 1 with keepdim)
//   vjp: grad_x = grad_out broadcast back over the summed axes   (scaled_sum.hpp)

#include "scaled_sum.hpp"

namespace tg {

//! public
/// Sum of all elements (rank-0 result).
template <class T> Var<T> sum(const Var<T>& x);
/// Sum along one axis, which is removed (negative counts from the end).
template <class T> Var<T> sum(const Var<T>& x, std::ptrdiff_t axis);
/// Sum over several axes; keepdim leaves them in the result with size 1 (as PyTorch).
template <class T> Var<T> sum(const Var<T>& x, const std::vector<std::ptrdiff_t>& axes, bool keepdim = false);
//! end

namespace {
struct SumName {
    static constexpr const char* value = TAPEGRAD_OP_NAME;
};
using Sum = reduction::ScaledSum<SumName>;
}  // namespace

template <class T> Var<T> sum(const Var<T>& x)
{
    return record(Sum{reduction::resolve(Sum::name, input_shape(TAPEGRAD_OP_NAME, x), {}, true, false), 1.0}, x);
}
template <class T> Var<T> sum(const Var<T>& x, std::ptrdiff_t axis)
{
    return record(Sum{reduction::resolve(Sum::name, input_shape(TAPEGRAD_OP_NAME, x), {axis}, false, false), 1.0}, x);
}
template <class T> Var<T> sum(const Var<T>& x, const std::vector<std::ptrdiff_t>& axes, bool keepdim)
{
    return record(Sum{reduction::resolve(Sum::name, input_shape(TAPEGRAD_OP_NAME, x), axes, false, keepdim), 1.0}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(sum)
template Var<float> sum<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> sum<double>(const Var<double>&, std::ptrdiff_t);
template Var<float> sum<float>(const Var<float>&, const std::vector<std::ptrdiff_t>&, bool);
template Var<double> sum<double>(const Var<double>&, const std::vector<std::ptrdiff_t>&, bool);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto out = tg::samples::unary(
        rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::sum(v[0]); },
        [](const auto& x) { return xt::xarray<double>(xt::sum(x)); }, "torch.sum({0})");
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    auto axis = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a, std::size_t r) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)}, [a](const auto& v) { return tg::sum(v[0], a); },
                          [r](const auto& x) { return xt::xarray<double>(xt::sum(x[0], {r})); })
                          .with_torch("torch.sum(x[0], dim=" + std::to_string(a) + ")"));
    };
    axis("(3,4) axis 0", {3, 4}, 0, 0);
    axis("(3,4) axis -1", {3, 4}, -1, 1);
    axis("(2,3,4) axis 1", {2, 3, 4}, 1, 1);
    axis("(1,) axis 0", {1}, 0, 0);
    out.push_back(tg::make_sample(
                      "(2,3,4) axes {0,2} keepdim", {u({2, 3, 4})},
                      [](const auto& v) {
                          return tg::sum(v[0], {0, 2}, true);
                      },
                      [](const auto& x) {
                          return xt::xarray<double>(xt::sum(x[0], {0, 2}, xt::keep_dims));
                      })
                      .with_torch("torch.sum(x[0], dim=(0, 2), keepdim=True)"));
    out.push_back(tg::make_sample(
                      "(2,3,4) axes {-1,0}", {u({2, 3, 4})},
                      [](const auto& v) {
                          return tg::sum(v[0], {-1, 0});
                      },
                      [](const auto& x) {
                          return xt::xarray<double>(xt::sum(x[0], {0, 2}));
                      })
                      .with_torch("torch.sum(x[0], dim=(-1, 0))"));
    out.push_back(tg::make_sample(
                      "(3,4) axis 1 keepdim", {u({3, 4})}, [](const auto& v) { return tg::sum(v[0], {1}, true); },
                      [](const auto& x) { return xt::xarray<double>(xt::sum(x[0], {1}, xt::keep_dims)); })
                      .with_torch("torch.sum(x[0], dim=1, keepdim=True)"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Axes = std::vector<std::ptrdiff_t>;
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::sum(x, axis); });
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    errors.push_back(tg::make_error_input(
        "axes {0, 0}", {x},
        [](const auto& v) {
            return tg::sum(v[0], Axes{0, 0});
        },
        "axis 0 is repeated"));
    errors.push_back(tg::make_error_input(
        "axes {1, -1} of (2,3)", {x},
        [](const auto& v) {
            return tg::sum(v[0], Axes{1, -1}, true);
        },
        "axis -1 is repeated"));
    errors.push_back(tg::make_error_input(
        "axes {0, 2} of (2,3)", {x},
        [](const auto& v) {
            return tg::sum(v[0], Axes{0, 2});
        },
        "axis 2 is out of range for shape [2, 3]"));
    return errors;
}
