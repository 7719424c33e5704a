// ops/elementwise/gelu.cpp — y = x Phi(x), Phi the standard normal CDF (the exact form,
// PyTorch's approximate='none'). Phi(x) = erfc(-x / sqrt(2)) / 2 rather than (1 + erf) / 2:
// the same in the upper tail, and accurate in the lower tail, where 1 + erf(x / sqrt(2))
// cancels (PyTorch's form is 4e-11 relative off at x = -5, 2% at -8, and 0 below -8.3;
// xsimd's erfc stays within 4e-12 down to x = -14 and 6e-9 below, see tg::fn::erfc).
//   vjp: grad_x = grad_out (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
// The rule needs Phi of a Var and there is no erf op, so Phi is recorded as an op of this
// file; its own derivative, phi, is made of exp and products, so every order works.

#include "unary_samples.hpp"

namespace tg {

//! public
/// x Phi(x), Phi the standard normal CDF (the exact form: torch's gelu with approximate='none').
template <class T> Var<T> gelu(const Var<T>& x);
//! end

namespace {

constexpr double kInvSqrt2 = 0.707106781186547524400844362104849;
constexpr double kInvSqrt2Pi = 0.398942280401432677939946059934382;

// phi(x) on scalars, batches and Vars.
template <class V> V normal_pdf(const V& x)
{
    using S = fn::scalar_of_t<V>;
    return S(kInvSqrt2Pi) * fn::exp(S(-0.5) * x * x);
}

// Phi(x) = erfc(-x / sqrt(2)) / 2;  vjp: grad_x = grad_out phi(x)
struct NormalCdf : elementwise::Unary<NormalCdf> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const
    {
        using S = fn::scalar_of_t<V>;
        return S(0.5) * fn::erfc(S(-kInvSqrt2) * x);
    }
    template <class V> V df(const V& g, const V& x, const V&) const { return g * normal_pdf(x); }
};

template <class V> V normal_cdf(const V& x)
{
    return NormalCdf{}.f(x);
}
template <class T> Var<T> normal_cdf(const Var<T>& x)
{
    return record(NormalCdf{}, x);
}

struct Gelu : elementwise::Unary<Gelu> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& x) const { return x * normal_cdf(x); }
    template <class V> V df(const V& g, const V& x, const V&) const { return g * (normal_cdf(x) + x * normal_pdf(x)); }
};

}  // namespace

template <class T> Var<T> gelu(const Var<T>& x)
{
    return record(Gelu{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(gelu)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto f = [](const auto& v) { return tg::gelu(v[0]); };
    auto ref = [](const auto& x) { return 0.5 * x * (1.0 + xt::erf(x / std::sqrt(2.0))); };
    auto out = tg::unary_samples::unary(rng, {-4.0, 4.0}, f, ref, "torch.nn.functional.gelu({0})");
    // Far out the value is x or 0 and the gradient 1 or 0; PyTorch's (1 + erf) form agrees
    // with erfc to far below the reference test's absolute floor there.
    out.push_back(tg::unary_samples::at("far tails", {-1000.0, -40.0, -9.0, 9.0, 40.0, 1000.0}, f, ref,
                                        "torch.nn.functional.gelu({0})"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {};  // one Var of any shape, any values: nothing to refuse
}
