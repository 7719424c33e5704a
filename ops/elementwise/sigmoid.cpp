// ops/elementwise/sigmoid.cpp — y = 1 / (1 + exp(-x)); for x -> -inf exp(-x) overflows to inf and y to 0, never NaN
//   vjp: grad_x = grad_out * y * (1 - y)  (the saved output: finite at every x)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// 1 / (1 + exp(-x)), finite for every finite x.
template <class T> Var<T> sigmoid(const Var<T>& x);
//! end

namespace {

struct Sigmoid : elementwise::Unary<Sigmoid> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::sigmoid(x); }
    template <class V> V df(const V& g, const V&, const V& y) const { return g * y * (1 - y); }
};

}  // namespace

template <class T> Var<T> sigmoid(const Var<T>& x)
{
    return record(Sigmoid{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(sigmoid)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::unary(
        rng, -5.0, 5.0, 0.0, [](const auto& v) { return tg::sigmoid(v[0]); },
        [](const auto& x) { return 1.0 / (1.0 + xt::exp(-x)); }, "torch.sigmoid({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
