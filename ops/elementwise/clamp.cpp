// ops/elementwise/clamp.cpp — y = min(max(x, lo), hi) for scalars lo <= hi; NaN stays NaN
//   vjp: grad_x = grad_out where lo <= x <= hi, else 0. The bounds themselves pass the
//   gradient and NaN passes none, as PyTorch's clamp backward (a mask of lo <= x <= hi); the
//   mask does not depend on grad_out's history, so the second derivative in x is 0.

#include <cmath>
#include <limits>
#include <string>

#include "unary_samples.hpp"

namespace tg {

//! public
/// x limited to [lo, hi] elementwise (lo <= hi); the gradient is 1 at the bounds themselves (as PyTorch).
/// lo may be -inf and hi inf for a bound on one side only.
template <class T> Var<T> clamp(const Var<T>& x, detail::scalar_t<T> lo, detail::scalar_t<T> hi);
//! end

namespace {

template <class T> struct Clamp : elementwise::Unary<Clamp<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T lo, hi;
    Clamp(T low, T high) : lo(low), hi(high) {}
    template <class V> V f(const V& x) const { return fn::where(x < lo, lo, fn::where(x > hi, hi, x)); }
    template <class V> V df(const V& g, const V& x, const V&) const
    {
        return fn::where(x >= lo, fn::where(x <= hi, g, 0), 0);
    }
};

}  // namespace

template <class T> Var<T> clamp(const Var<T>& x, detail::scalar_t<T> lo, detail::scalar_t<T> hi)
{
    input_shape(TAPEGRAD_OP_NAME, x);
    // A NaN bound would turn every element into NaN (PyTorch's behaviour): far more likely a
    // bug upstream than an intent, so it is refused here rather than discovered later.
    if (std::isnan(lo) || std::isnan(hi)) {
        throw Error(std::string(TAPEGRAD_OP_NAME) + ": bounds must not be NaN, got lo " + format_number(lo) +
                    " and hi " + format_number(hi));
    }
    if (lo > hi) {
        throw Error(std::string(TAPEGRAD_OP_NAME) + ": lo must not exceed hi, got lo " + format_number(lo) +
                    " and hi " + format_number(hi));
    }
    return record(Clamp<T>(lo, hi), x);
}

template Var<float> clamp<float>(const Var<float>&, float, float);
template Var<double> clamp<double>(const Var<double>&, double, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::unary_samples::unary;
    auto clamp_samples = [&](double lo, double hi, const std::string& torch_lo, const std::string& torch_hi,
                             const std::string& suffix) {
        std::vector<double> kinks;
        if (std::isfinite(lo)) kinks.push_back(lo);
        if (std::isfinite(hi)) kinks.push_back(hi);
        return unary(
            rng, {-2.5, 2.5, kinks, 0.1}, [lo, hi](const auto& v) { return tg::clamp(v[0], lo, hi); },
            [lo, hi](const auto& x) { return xt::where(x < lo, lo, xt::where(x > hi, hi, x)); },
            "torch.clamp({0}, " + torch_lo + ", " + torch_hi + ")", suffix);
    };
    auto out = clamp_samples(-1.0, 1.5, "-1.0", "1.5", " in [-1, 1.5]");
    const double inf = std::numeric_limits<double>::infinity();
    for (auto& s : clamp_samples(-inf, 0.5, "None", "0.5", " in [-inf, 0.5]")) out.push_back(std::move(s));
    for (auto& s : clamp_samples(0.25, 0.25, "0.25", "0.25", " in [0.25, 0.25]")) out.push_back(std::move(s));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "lo above hi", {x}, [](const auto& v) { return tg::clamp(v[0], 2.0, 1.0); },
                "lo must not exceed hi, got lo 2 and hi 1"),
            tg::make_error_input(
                "NaN lo", {x}, [nan](const auto& v) { return tg::clamp(v[0], nan, 1.0); },
                "bounds must not be NaN, got lo nan and hi 1"),
            tg::make_error_input(
                "NaN hi", {x}, [nan](const auto& v) { return tg::clamp(v[0], -1.0, nan); },
                "bounds must not be NaN, got lo -1 and hi nan")};
}
