// ops/elementwise/expm1.cpp — y = exp(x) - 1, exact for tiny x where exp(x) - 1 would cancel
//   vjp: grad_x = grad_out * (y + 1)          (the saved output, as PyTorch)

#include "unary_samples.hpp"

namespace tg {

//! public
/// exp(x) - 1, accurate for tiny x.
template <class T> Var<T> expm1(const Var<T>& x);
//! end

namespace {

struct Expm1 : elementwise::Unary<Expm1> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::expm1(x); }
    template <class V> V df(const V& g, const V&, const V& y) const { return g * (y + 1); }
};

}  // namespace

template <class T> Var<T> expm1(const Var<T>& x)
{
    return record(Expm1{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(expm1)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto f = [](const auto& v) { return tg::expm1(v[0]); };
    auto ref = [](const auto& x) { return xt::expm1(x); };
    auto out = tg::unary_samples::unary(rng, {-2.0, 2.0}, f, ref, "torch.expm1({0})");
    out.push_back(tg::unary_samples::at("tiny x", {1e-18, -3e-12, 2e-9}, f, ref, "torch.expm1({0})"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
