// ops/elementwise/cos.cpp — y = cos(x)
//   vjp: grad_x = -grad_out * sin(x)

#include "unary_samples.hpp"

namespace tg {

//! public
/// Cosine, elementwise (radians).
template <class T> Var<T> cos(const Var<T>& x);
//! end

namespace {

struct Cos : elementwise::Unary<Cos> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::cos(x); }
    template <class V> V df(const V& g, const V& x, const V&) const { return -g * fn::sin(x); }
};

}  // namespace

template <class T> Var<T> cos(const Var<T>& x)
{
    return record(Cos{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(cos)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::unary_samples::unary(
        rng, {-4.0, 4.0}, [](const auto& v) { return tg::cos(v[0]); }, [](const auto& x) { return xt::cos(x); },
        "torch.cos({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
