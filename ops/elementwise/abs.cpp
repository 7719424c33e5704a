// ops/elementwise/abs.cpp — y = |x|; NaN stays NaN
//   vjp: grad_x = grad_out * sign(x), with sign 0 at x = 0 exactly and at NaN (PyTorch's sgn);
//   the sign does not depend on grad_out's history, so the second derivative in x is 0

#include "unary_samples.hpp"

namespace tg {

//! public
/// |x|, elementwise; the gradient at exactly 0 is 0 (as PyTorch).
template <class T> Var<T> abs(const Var<T>& x);
//! end

namespace {

struct Abs : elementwise::Unary<Abs> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::abs(x); }
    template <class V> V df(const V& g, const V& x, const V&) const
    {
        return fn::where(x > 0, g, fn::where(x < 0, -g, 0));
    }
};

}  // namespace

template <class T> Var<T> abs(const Var<T>& x)
{
    return record(Abs{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(abs)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::unary_samples::unary(
        rng, {-2.0, 2.0, {0.0}, 0.1}, [](const auto& v) { return tg::abs(v[0]); },
        [](const auto& x) { return xt::abs(x); }, "torch.abs({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
