// ops/elementwise/neg.cpp — y = -x
//   vjp: grad_x = -grad_out

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// -x (also unary operator-).
template <class T> Var<T> neg(const Var<T>& x);
/// -x.
template <class T> Var<T> operator-(const Var<T>& x)
{
    return neg(x);
}
//! end

namespace {

struct Neg : elementwise::Unary<Neg> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return -x; }
    template <class V> V df(const V& g, const V&, const V&) const { return -g; }
};

}  // namespace

template <class T> Var<T> neg(const Var<T>& x)
{
    return record(Neg{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(neg)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::unary(
        rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::neg(v[0]); }, [](const auto& x) { return -x; },
        "torch.neg({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
