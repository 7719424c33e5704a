// ops/elementwise/leaky_relu.cpp — y = x for x > 0, slope * x otherwise; NaN stays NaN
//   vjp: grad_x = grad_out for x > 0, slope * grad_out otherwise: the slope at exactly 0 and at
//   NaN, as PyTorch's leaky_relu_backward (x > 0 ? grad : grad * slope); the choice does not
//   depend on grad_out's history, so the second derivative in x is 0

#include <cmath>
#include <limits>
#include <string>

#include "unary_samples.hpp"

namespace tg {

//! public
/// x for x > 0, slope * x otherwise; the gradient at exactly 0 is the slope (as PyTorch).
template <class T> Var<T> leaky_relu(const Var<T>& x, detail::scalar_t<T> slope = 0.01);
//! end

namespace {

template <class T> struct LeakyRelu : elementwise::Unary<LeakyRelu<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T slope;
    explicit LeakyRelu(T negative_slope) : slope(negative_slope) {}
    template <class V> V f(const V& x) const { return fn::where(x > 0, x, x * slope); }
    template <class V> V df(const V& g, const V& x, const V&) const { return fn::where(x > 0, g, g * slope); }
};

}  // namespace

template <class T> Var<T> leaky_relu(const Var<T>& x, detail::scalar_t<T> slope)
{
    input_shape(TAPEGRAD_OP_NAME, x);
    if (std::isnan(slope)) throw Error(std::string(TAPEGRAD_OP_NAME) + ": slope must not be NaN");
    return record(LeakyRelu<T>(slope), x);
}

template Var<float> leaky_relu<float>(const Var<float>&, float);
template Var<double> leaky_relu<double>(const Var<double>&, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::unary_samples::unary;
    const tg::unary_samples::Domain d{-2.0, 2.0, {0.0}, 0.1};
    auto out = unary(
        rng, d, [](const auto& v) { return tg::leaky_relu(v[0]); },
        [](const auto& x) { return xt::where(x > 0.0, x, 0.01 * x); }, "torch.nn.functional.leaky_relu({0})");
    for (auto& s : unary(
             rng, d, [](const auto& v) { return tg::leaky_relu(v[0], 0.2); },
             [](const auto& x) { return xt::where(x > 0.0, x, 0.2 * x); }, "torch.nn.functional.leaky_relu({0}, 0.2)",
             " slope 0.2")) {
        out.push_back(std::move(s));
    }
    // A slope above 1 is allowed (torch's too): the op is then concave.
    for (auto& s : unary(
             rng, d, [](const auto& v) { return tg::leaky_relu(v[0], 1.5); },
             [](const auto& x) { return xt::where(x > 0.0, x, 1.5 * x); }, "torch.nn.functional.leaky_relu({0}, 1.5)",
             " slope 1.5")) {
        out.push_back(std::move(s));
    }
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return {tg::make_error_input(
        "NaN slope", {xt::ones<double>({2, 3})}, [nan](const auto& v) { return tg::leaky_relu(v[0], nan); },
        "slope must not be NaN")};
}
