// ops/elementwise/pow.cpp — y = x ** p for a scalar exponent p (x < 0 is defined for integer p only)
//   vjp: grad_x = grad_out * p * x ** (p - 1)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x ** exponent, elementwise (negative x only for integer exponents).
template <class T> Var<T> pow(const Var<T>& x, detail::scalar_t<T> exponent);
//! end

namespace {

template <class T> struct Pow : elementwise::Unary<Pow<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T p;
    explicit Pow(T exponent) : p(exponent) {}
    template <class V> V f(const V& x) const { return fn::pow(x, p); }
    template <class V> V df(const V& g, const V& x, const V&) const { return g * p * fn::pow(x, p - 1); }
};

}  // namespace

template <class T> Var<T> pow(const Var<T>& x, detail::scalar_t<T> exponent)
{
    return record(Pow<T>(exponent), x);
}

template Var<float> pow<float>(const Var<float>&, float);
template Var<double> pow<double>(const Var<double>&, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto out = tg::samples::unary(
        rng, 0.5, 2.5, 0.0, [](const auto& v) { return tg::pow(v[0], 2.5); },
        [](const auto& x) { return xt::pow(x, 2.5); }, "torch.pow({0}, 2.5)");
    auto more = tg::samples::unary(
        rng, 0.5, 2.5, 0.0, [](const auto& v) { return tg::pow(v[0], -1.5); },
        [](const auto& x) { return xt::pow(x, -1.5); }, "torch.pow({0}, -1.5)");
    for (auto& s : out) s.label += " ** 2.5";
    for (auto& s : more) s.label += " ** -1.5";
    out.insert(out.end(), more.begin(), more.end());
    // Integer exponents are defined for negative x too.
    out.push_back(tg::make_sample(
                      "(3,4) ** 3 with negatives", {tg::sample_uniform(rng, {3, 4}, -2.0, 2.0)},
                      [](const auto& v) { return tg::pow(v[0], 3.0); },
                      [](const auto& x) { return x[0] * x[0] * x[0]; })
                      .with_torch("torch.pow(x[0], 3.0)"));
    out.push_back(tg::make_sample(
                      "(3,4) ** 2 with negatives", {tg::sample_uniform(rng, {3, 4}, -2.0, 2.0)},
                      [](const auto& v) { return tg::pow(v[0], 2.0); }, [](const auto& x) { return x[0] * x[0]; })
                      .with_torch("torch.pow(x[0], 2.0)"));
    return out;
}
