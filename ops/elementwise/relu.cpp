// ops/elementwise/relu.cpp — y = max(x, 0); NaN stays NaN
//   vjp: grad_x = grad_out where x > 0, else 0 (0 at x = 0 exactly, as PyTorch); the mask
//   does not depend on grad_out's history, so the second derivative in x is 0

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// max(x, 0); the gradient at exactly 0 is 0 (as PyTorch).
template <class T> Var<T> relu(const Var<T>& x);
//! end

namespace {

struct Relu : elementwise::Unary<Relu> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::where(x < 0, 0, x); }
    template <class V> V df(const V& g, const V& x, const V&) const { return fn::where(x > 0, g, 0); }
};

}  // namespace

template <class T> Var<T> relu(const Var<T>& x)
{
    return record(Relu{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(relu)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::unary(
        rng, -2.0, 2.0, 0.1, [](const auto& v) { return tg::relu(v[0]); },
        [](const auto& x) { return xt::where(x < 0.0, 0.0, x); }, "torch.relu({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
