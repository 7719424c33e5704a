// ops/elementwise/sin.cpp — y = sin(x)
//   vjp: grad_x = grad_out * cos(x)

#include "unary_samples.hpp"

namespace tg {

//! public
/// Sine, elementwise (radians).
template <class T> Var<T> sin(const Var<T>& x);
//! end

namespace {

struct Sin : elementwise::Unary<Sin> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::sin(x); }
    template <class V> V df(const V& g, const V& x, const V&) const { return g * fn::cos(x); }
};

}  // namespace

template <class T> Var<T> sin(const Var<T>& x)
{
    return record(Sin{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(sin)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::unary_samples::unary(
        rng, {-4.0, 4.0}, [](const auto& v) { return tg::sin(v[0]); }, [](const auto& x) { return xt::sin(x); },
        "torch.sin({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
