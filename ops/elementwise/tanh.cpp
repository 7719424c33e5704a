// ops/elementwise/tanh.cpp — y = tanh(x)
//   vjp: grad_x = grad_out * (1 - y^2)   (the saved output)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Hyperbolic tangent.
template <class T> Var<T> tanh(const Var<T>& x);
//! end

namespace {

struct Tanh : elementwise::Unary<Tanh> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::tanh(x); }
    template <class V> V df(const V& g, const V&, const V& y) const { return g * (1 - y * y); }
};

}  // namespace

template <class T> Var<T> tanh(const Var<T>& x)
{
    return record(Tanh{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(tanh)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::unary(
        rng, -3.0, 3.0, 0.0, [](const auto& v) { return tg::tanh(v[0]); }, [](const auto& x) { return xt::tanh(x); },
        "torch.tanh({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
