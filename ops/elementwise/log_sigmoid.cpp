// ops/elementwise/log_sigmoid.cpp — y = log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): exp
// never overflows and no log of a rounded-to-0 sigmoid is taken, so y is finite and accurate
// for every finite x (x itself far below, -exp(-x) far above); NaN stays NaN
//   vjp: grad_x = grad_out sigmoid(-x), in the rule as exp(log_sigmoid(-x)): its derivative
//   is then -sigmoid(x) sigmoid(-x) with both factors exact, where sigmoid's own rule,
//   y (1 - y), would cancel to 0 for y near 1 (PyTorch's is exact at x = -40, not at 40)

#include "sigmoid_of.hpp"
#include "unary_samples.hpp"

namespace tg {

//! public
/// log(sigmoid(x)), computed as min(x, 0) - log1p(exp(-|x|)): finite and accurate for every finite x.
template <class T> Var<T> log_sigmoid(const Var<T>& x);
//! end

namespace {

using elementwise_detail::sigmoid_of;

struct LogSigmoid : elementwise::Unary<LogSigmoid> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::where(x < 0, x, 0) - fn::log1p(fn::exp(-fn::abs(x))); }
    template <class V> V df(const V& g, const V& x, const V&) const { return g * sigmoid_of(-x); }
};

}  // namespace

template <class T> Var<T> log_sigmoid(const Var<T>& x)
{
    return record(LogSigmoid{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(log_sigmoid)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto f = [](const auto& v) { return tg::log_sigmoid(v[0]); };
    // Each side in the form that is exact there.
    auto ref = [](const auto& x) { return xt::where(x < 0.0, x - xt::log1p(xt::exp(x)), -xt::log1p(xt::exp(-x))); };
    auto out = tg::unary_samples::unary(rng, {-6.0, 6.0}, f, ref, "torch.nn.functional.logsigmoid({0})");
    out.push_back(tg::unary_samples::at("far tails", {-1000.0, -40.0, -20.0, 20.0, 40.0, 1000.0}, f, ref,
                                        "torch.nn.functional.logsigmoid({0})"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
