// ops/pow.cpp — y = x ** p for a scalar exponent p (x < 0 is defined for integer p only).
//   backward: grad_x = grad_out * p * x ** (p - 1)

#include "op_common.hpp"

namespace tg {
namespace {

template <class T> struct Pow {
    static constexpr const char* name = "pow";
    T p;
    void forward(Ctx<T>& c) const
    {
        const T p_ = p;
        ew::unary_forward(c, [p_](auto x) { return xsimd::pow(x, decltype(x)(p_)); });
    }
    void backward(Ctx<T>& c) const
    {
        const T p_ = p;
        ew::unary_backward(c, [p_](auto g, auto x, auto) {
            using V = decltype(x);
            return g * V(p_) * xsimd::pow(x, V(p_ - 1));
        });
    }
};

}  // namespace

template <class T> Var<T> pow(const Var<T>& x, detail::scalar_t<T> exponent)
{
    return record(Pow<T>{exponent}, x);
}

template Var<float> pow<float>(const Var<float>&, float);
template Var<double> pow<double>(const Var<double>&, double);

}  // namespace tg

TAPEGRAD_REGISTER_OP(pow)
{
    return {"pow", [](std::mt19937_64& rng) {
                auto out = tg::samples::unary(rng, 0.5, 2.5, 0.0, [](const auto& v) { return tg::pow(v[0], 2.5); });
                auto more = tg::samples::unary(rng, 0.5, 2.5, 0.0, [](const auto& v) { return tg::pow(v[0], -1.5); });
                out.insert(out.end(), more.begin(), more.end());
                // Integer exponents are defined for negative x too.
                out.push_back(tg::make_sample("(3,4) ** 3 with negatives", {tg::sample_uniform(rng, {3, 4}, -2.0, 2.0)},
                                              [](const auto& v) { return tg::pow(v[0], 3.0); }));
                out.push_back(tg::make_sample("(3,4) ** 2 with negatives", {tg::sample_uniform(rng, {3, 4}, -2.0, 2.0)},
                                              [](const auto& v) { return tg::pow(v[0], 2.0); }));
                return out;
            }};
}
