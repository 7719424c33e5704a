// ops/elementwise/silu.cpp — y = x sigmoid(x) (swish); sigmoid never overflows to NaN, so y is
// finite for every finite x (-0 far below, x far above)
//   vjp: grad_x = grad_out s (1 + x (1 - s)),  s = sigmoid(x)   (PyTorch's silu_backward)

#include "unary_samples.hpp"

namespace tg {

//! public
/// x * sigmoid(x) (also called swish), finite for every finite x.
template <class T> Var<T> silu(const Var<T>& x);
//! end

namespace {

struct Silu : elementwise::Unary<Silu> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return x * fn::sigmoid(x); }
    template <class V> V df(const V& g, const V& x, const V&) const
    {
        const V s = fn::sigmoid(x);
        return g * s * (1 + x * (1 - s));
    }
};

}  // namespace

template <class T> Var<T> silu(const Var<T>& x)
{
    return record(Silu{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(silu)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto f = [](const auto& v) { return tg::silu(v[0]); };
    auto ref = [](const auto& x) { return x / (1.0 + xt::exp(-x)); };
    auto out = tg::unary_samples::unary(rng, {-5.0, 5.0}, f, ref, "torch.nn.functional.silu({0})");
    out.push_back(
        tg::unary_samples::at("far tails", {-1000.0, -40.0, 40.0, 1000.0}, f, ref, "torch.nn.functional.silu({0})"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
