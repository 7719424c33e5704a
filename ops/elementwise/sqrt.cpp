// ops/elementwise/sqrt.cpp — y = sqrt(x), defined for x >= 0
//   vjp: grad_x = grad_out / (2 y)        (infinite at x = 0, as PyTorch)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Square root.
template <class T> Var<T> sqrt(const Var<T>& x);
//! end

namespace {

struct Sqrt : elementwise::Unary<Sqrt> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::sqrt(x); }
    template <class V> V df(const V& g, const V&, const V& y) const { return g / (2 * y); }
};

}  // namespace

template <class T> Var<T> sqrt(const Var<T>& x)
{
    return record(Sqrt{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(sqrt)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::unary(
        rng, 0.5, 3.0, 0.0, [](const auto& v) { return tg::sqrt(v[0]); }, [](const auto& x) { return xt::sqrt(x); },
        "torch.sqrt({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
