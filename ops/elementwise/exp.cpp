// ops/elementwise/exp.cpp — y = exp(x)
//   vjp: grad_x = grad_out * y          (the saved output, not exp(x) again)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// e^x, elementwise.
template <class T> Var<T> exp(const Var<T>& x);
//! end

namespace {

struct Exp : elementwise::Unary<Exp> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::exp(x); }
    template <class V> V df(const V& g, const V&, const V& y) const { return g * y; }
};

}  // namespace

template <class T> Var<T> exp(const Var<T>& x)
{
    return record(Exp{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(exp)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::unary(
        rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::exp(v[0]); }, [](const auto& x) { return xt::exp(x); },
        "torch.exp({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
