// ops/elementwise/softplus.cpp — y = log(1 + exp(beta x)) / beta, and y = x where
// beta x > threshold (PyTorch's softplus: linear where the two differ by less than
// exp(-threshold), and no overflow of exp); NaN stays NaN
//   vjp: grad_x = grad_out sigmoid(beta x) where beta x < threshold, grad_out where
//   beta x > threshold; at beta x == threshold the log branch's slope, sigmoid(threshold), but
//   held constant so the second derivative there is 0 (PyTorch's softplus_double_backward
//   masks beta x < threshold). In the rule sigmoid(z) is exp(log_sigmoid(z)), whose
//   derivative sigmoid(z) sigmoid(-z) keeps full precision where sigmoid(z) is near 1;
//   sigmoid's own rule y (1 - y) (and PyTorch's) cancels there: 9e-9 relative at z = 19.999.

#include <cmath>
#include <limits>
#include <string>

#include "sigmoid_of.hpp"
#include "unary_samples.hpp"

namespace tg {

//! public
/// log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (torch.nn.functional.softplus).
/// beta must be nonzero.
template <class T> Var<T> softplus(const Var<T>& x, detail::scalar_t<T> beta = 1, detail::scalar_t<T> threshold = 20);
//! end

namespace {

using elementwise_detail::sigmoid_of;

template <class T> struct Softplus : elementwise::Unary<Softplus<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T beta, threshold;
    T slope_at_threshold;  // sigmoid(threshold)
    Softplus(T b, T t) : beta(b), threshold(t), slope_at_threshold(T(1) / (T(1) + std::exp(-t))) {}
    template <class V> V f(const V& x) const
    {
        const V z = x * beta;
        return fn::where(z > threshold, x, fn::log1p(fn::exp(z)) / beta);
    }
    template <class V> V df(const V& g, const V& x, const V&) const
    {
        const V z = x * beta;
        return fn::where(z > threshold, g, fn::where(z >= threshold, g * slope_at_threshold, g * sigmoid_of(z)));
    }
};

}  // namespace

template <class T> Var<T> softplus(const Var<T>& x, detail::scalar_t<T> beta, detail::scalar_t<T> threshold)
{
    input_shape(TAPEGRAD_OP_NAME, x);
    if (beta == 0 || std::isnan(beta)) {
        throw Error(std::string(TAPEGRAD_OP_NAME) + ": beta must be a nonzero number, got " + format_number(beta));
    }
    if (std::isnan(threshold)) throw Error(std::string(TAPEGRAD_OP_NAME) + ": threshold must not be NaN");
    return record(Softplus<T>(beta, threshold), x);
}

template Var<float> softplus<float>(const Var<float>&, float, float);
template Var<double> softplus<double>(const Var<double>&, double, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::unary_samples::unary;
    auto ref = [](double beta, double threshold) {
        return [beta, threshold](const auto& x) {
            return xt::where(x * beta > threshold, x, xt::log(1.0 + xt::exp(x * beta)) / beta);
        };
    };
    auto out = unary(
        rng, {-5.0, 5.0}, [](const auto& v) { return tg::softplus(v[0]); }, ref(1.0, 20.0),
        "torch.nn.functional.softplus({0})");
    // beta 2, threshold 3: the switch to x, at x = 1.5, falls inside the samples' range.
    for (auto& s : unary(
             rng, {-4.0, 4.0, {1.5}, 0.1}, [](const auto& v) { return tg::softplus(v[0], 2.0, 3.0); }, ref(2.0, 3.0),
             "torch.nn.functional.softplus({0}, 2.0, 3.0)", " beta 2 threshold 3")) {
        out.push_back(std::move(s));
    }
    for (auto& s : unary(
             rng, {-4.0, 4.0, {-1.0}, 0.1}, [](const auto& v) { return tg::softplus(v[0], -0.5, 0.5); }, ref(-0.5, 0.5),
             "torch.nn.functional.softplus({0}, -0.5, 0.5)", " beta -0.5 threshold 0.5")) {
        out.push_back(std::move(s));
    }
    out.push_back(tg::unary_samples::at(
        "far tails", {-1000.0, -40.0, -19.5, 19.5, 20.5, 40.0, 1000.0},
        [](const auto& v) { return tg::softplus(v[0]); },
        [](const auto& x) { return xt::where(x > 20.0, x, xt::log1p(xt::exp(x))); },
        "torch.nn.functional.softplus({0})"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "beta 0", {x}, [](const auto& v) { return tg::softplus(v[0], 0.0); },
                "beta must be a nonzero number, got 0"),
            tg::make_error_input(
                "NaN beta", {x}, [nan](const auto& v) { return tg::softplus(v[0], nan); },
                "beta must be a nonzero number, got nan"),
            tg::make_error_input(
                "NaN threshold", {x}, [nan](const auto& v) { return tg::softplus(v[0], 1.0, nan); },
                "threshold must not be NaN")};
}
