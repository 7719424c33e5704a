// ops/elementwise/square.cpp — y = x * x
//   vjp: grad_x = grad_out * 2 x

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x * x.
template <class T> Var<T> square(const Var<T>& x);
//! end

namespace {

struct Square : elementwise::Unary<Square> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return x * x; }
    template <class V> V df(const V& g, const V& x, const V&) const { return g * (2 * x); }
};

}  // namespace

template <class T> Var<T> square(const Var<T>& x)
{
    return record(Square{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(square)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::unary(
        rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::square(v[0]); }, [](const auto& x) { return x * x; },
        "torch.square({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
