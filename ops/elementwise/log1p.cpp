// ops/elementwise/log1p.cpp — y = log(1 + x), defined for x > -1, exact for tiny x where
// log(1 + x) would round 1 + x first; -inf at -1, NaN below
//   vjp: grad_x = grad_out / (1 + x)          (as PyTorch, also below -1)

#include "unary_samples.hpp"

namespace tg {

//! public
/// log(1 + x), accurate for tiny x; -inf at -1, NaN below.
template <class T> Var<T> log1p(const Var<T>& x);
//! end

namespace {

struct Log1p : elementwise::Unary<Log1p> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::log1p(x); }
    template <class V> V df(const V& g, const V& x, const V&) const { return g / (1 + x); }
};

}  // namespace

template <class T> Var<T> log1p(const Var<T>& x)
{
    return record(Log1p{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(log1p)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto f = [](const auto& v) { return tg::log1p(v[0]); };
    auto ref = [](const auto& x) { return xt::log1p(x); };
    auto out = tg::unary_samples::unary(rng, {-0.9, 3.0}, f, ref, "torch.log1p({0})");
    out.push_back(tg::unary_samples::at("tiny x", {1e-18, -3e-12, 2e-9}, f, ref, "torch.log1p({0})"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
