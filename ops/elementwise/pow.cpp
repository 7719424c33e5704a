// ops/elementwise/pow.cpp — y = x ** p for a scalar exponent p (x < 0 is defined for integer p only)
//   vjp: grad_x = grad_out * p * x ** (p - 1)
// and y = a ** b for two Vars with numpy broadcasting (a < 0 only where b is an integer)
//   vjp: grad_a = grad_out * b * a ** (b - 1), but 0 where b = 0 (so 0 ** 0 gives 0, not 0 * inf)
//        grad_b = grad_out * y * log(a), but 0 where a = 0 and b >= 0 (log 0 times 0 ** b = 0)
//        (PyTorch's pow_backward_self and pow_backward_exponent), each summed back to its
//        input's shape

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x ** exponent, or a ** b for two Vars broadcast, elementwise (negative bases only for integer exponents).
template <class T> Var<T> pow(const Var<T>& x, detail::scalar_t<T> exponent);
/// a ** b elementwise with numpy broadcasting; the gradients at a = 0 and at b = 0 are PyTorch's.
template <class T> Var<T> pow(const Var<T>& a, const Var<T>& b);
//! end

namespace {

template <class T> struct Pow : elementwise::Unary<Pow<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T p;
    explicit Pow(T exponent) : p(exponent) {}
    template <class V> V f(const V& x) const { return fn::pow(x, p); }
    template <class V> V df(const V& g, const V& x, const V&) const { return g * p * fn::pow(x, p - 1); }
};

// a ** b, both Vars
struct PowBoth : elementwise::Binary<PowBoth> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& a, const V& b) const { return fn::pow(a, b); }
    template <class V> V da(const V& g, const V& a, const V& b, const V&) const
    {
        return fn::where(fn::equal(b, 0), 0, g * b * fn::pow(a, b - 1));
    }
    template <class V> V db(const V& g, const V& a, const V& b, const V& y) const
    {
        const V t = g * y * fn::log(a);
        return fn::where(fn::equal(a, 0), fn::where(b >= 0, 0, t), t);
    }
};

}  // namespace

template <class T> Var<T> pow(const Var<T>& x, detail::scalar_t<T> exponent)
{
    return record(Pow<T>(exponent), x);
}
template <class T> Var<T> pow(const Var<T>& a, const Var<T>& b)
{
    broadcast::shape(PowBoth::name, input_shape(TAPEGRAD_OP_NAME, a), input_shape(TAPEGRAD_OP_NAME, b));
    return record(PowBoth{}, a, b);
}

template Var<float> pow<float>(const Var<float>&, float);
template Var<double> pow<double>(const Var<double>&, double);
template Var<float> pow<float>(const Var<float>&, const Var<float>&);
template Var<double> pow<double>(const Var<double>&, const Var<double>&);

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

    // a ** b with both Vars: positive bases (log a in grad_b), exponents either side of 0. The
    // generator's scalar forms become rank-0 constants, so one side needs no gradient.
    auto both = [](const auto& v) { return tg::pow(v[0], v[1]); };
    auto both_ref = [](const auto& x) { return xt::xarray<double>(xt::pow(x[0], x[1])); };
    auto fs = [](const auto& x, double s) {
        using T = typename std::decay_t<decltype(x)>::value_type;
        return tg::pow(x, tg::constant(xt::xarray<T>(static_cast<T>(s))));
    };
    auto sf = [](double s, const auto& x) {
        using T = typename std::decay_t<decltype(x)>::value_type;
        return tg::pow(tg::constant(xt::xarray<T>(static_cast<T>(s))), x);
    };
    auto pairs = tg::samples::binary(
        rng, 0.5, 2.5, 0.0, both, fs, sf, [](const auto& a, const auto& b) { return xt::pow(a, b); },
        "torch.pow({0}, {1})");
    for (auto& s : pairs) s.label = "a ** b " + s.label;
    out.insert(out.end(), pairs.begin(), pairs.end());
    out.push_back(
        tg::make_sample("a ** b (3,4)+(3,4) negative exponents",
                        {tg::sample_uniform(rng, {3, 4}, 0.5, 2.5), tg::sample_uniform(rng, {3, 4}, -2.0, 0.0)}, both,
                        both_ref)
            .with_torch("torch.pow(x[0], x[1])"));
    out.push_back(
        tg::make_sample("a ** b (2,0,3)+(3,) empty",
                        {tg::sample_uniform(rng, {2, 0, 3}, 0.5, 2.5), tg::sample_uniform(rng, {3}, -2.0, 2.0)}, both,
                        both_ref)
            .with_torch("torch.pow(x[0], x[1])"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    // The scalar-exponent form accepts every exponent (NaN included, as PyTorch).
    return tg::samples::broadcast_errors([](const auto& v) { return tg::pow(v[0], v[1]); });
}
