// ops/elementwise/log.cpp — y = log(x), defined for x > 0
//   vjp: grad_x = grad_out / x

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Natural logarithm; -inf at 0, NaN below.
template <class T> Var<T> log(const Var<T>& x);
//! end

namespace {

struct Log : elementwise::Unary<Log> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return fn::log(x); }
    template <class V> V df(const V& g, const V& x, const V&) const { return g / x; }
};

}  // namespace

template <class T> Var<T> log(const Var<T>& x)
{
    return record(Log{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(log)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::unary(
        rng, 0.5, 3.0, 0.0, [](const auto& v) { return tg::log(v[0]); }, [](const auto& x) { return xt::log(x); },
        "torch.log({0})");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
