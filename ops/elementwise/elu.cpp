// ops/elementwise/elu.cpp — y = x for x > 0, alpha (exp(x) - 1) otherwise; NaN stays NaN
//   vjp: grad_x = grad_out for x > 0, grad_out alpha exp(x) for x < 0, and at exactly 0
//   grad_out alpha (PyTorch's elu_backward takes the exp branch for x <= 0) but with a second
//   derivative of 0 there (PyTorch's elu_double_backward masks x < 0). NaN gets grad_out, as
//   PyTorch's. exp sees only x <= 0, so no inf reaches the rule's own derivative.

#include <cmath>
#include <limits>
#include <string>

#include "unary_samples.hpp"

namespace tg {

//! public
/// x for x > 0, alpha (exp(x) - 1) otherwise; the gradient at exactly 0 is alpha (as PyTorch).
template <class T> Var<T> elu(const Var<T>& x, detail::scalar_t<T> alpha = 1);
//! end

namespace {

template <class T> struct Elu : elementwise::Unary<Elu<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T alpha;
    explicit Elu(T a) : alpha(a) {}
    template <class V> V f(const V& x) const { return fn::where(x > 0, x, alpha * fn::expm1(x)); }
    template <class V> V df(const V& g, const V& x, const V&) const
    {
        const V neg = fn::where(x < 0, x, 0);
        return fn::where(x < 0, g * alpha * fn::exp(neg), fn::where(x <= 0, g * alpha, g));
    }
};

}  // namespace

template <class T> Var<T> elu(const Var<T>& x, detail::scalar_t<T> alpha)
{
    input_shape(TAPEGRAD_OP_NAME, x);
    if (std::isnan(alpha)) throw Error(std::string(TAPEGRAD_OP_NAME) + ": alpha must not be NaN");
    return record(Elu<T>(alpha), x);
}

template Var<float> elu<float>(const Var<float>&, float);
template Var<double> elu<double>(const Var<double>&, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::unary_samples::unary;
    const tg::unary_samples::Domain d{-3.0, 2.0, {0.0}, 0.1};
    auto out = unary(
        rng, d, [](const auto& v) { return tg::elu(v[0]); },
        [](const auto& x) { return xt::where(x > 0.0, x, xt::exp(x) - 1.0); }, "torch.nn.functional.elu({0})");
    for (auto& s : unary(
             rng, d, [](const auto& v) { return tg::elu(v[0], 1.5); },
             [](const auto& x) { return xt::where(x > 0.0, x, 1.5 * (xt::exp(x) - 1.0)); },
             "torch.nn.functional.elu({0}, 1.5)", " alpha 1.5")) {
        out.push_back(std::move(s));
    }
    out.push_back(tg::unary_samples::at(
        "far tails", {-1000.0, -40.0, -20.0, 20.0, 40.0, 1000.0}, [](const auto& v) { return tg::elu(v[0]); },
        [](const auto& x) { return xt::where(x > 0.0, x, xt::expm1(x)); }, "torch.nn.functional.elu({0})"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return {tg::make_error_input(
        "NaN alpha", {xt::ones<double>({2, 3})}, [nan](const auto& v) { return tg::elu(v[0], nan); },
        "alpha must not be NaN")};
}
