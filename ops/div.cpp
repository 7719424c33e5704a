// ops/div.cpp — y = a / b with numpy broadcasting; also a / s and s / a for a scalar s.
//   backward: grad_a = grad_out / b, grad_b = -grad_out * a / b^2, each summed to its
//             input's shape (scalar forms: grad_a = grad_out / s for a / s,
//             grad_a = -grad_out * s / a^2 for s / a)

#include "op_common.hpp"

namespace tg {
namespace {

struct Div {
    static constexpr const char* name = "div";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::binary_forward(c, [](auto a, auto b) { return a / b; });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::binary_backward(
            c, [](auto g, auto, auto b) { return g / b; }, [](auto g, auto a, auto b) { return -g * a / (b * b); });
    }
};

template <class T> struct DivScalar {
    static constexpr const char* name = "div";
    T s;
    bool scalar_first;  // s / a instead of a / s
    void forward(Ctx<T>& c) const
    {
        const T s_ = s;
        if (scalar_first) {
            ew::unary_forward(c, [s_](auto x) { return decltype(x)(s_) / x; });
        } else {
            ew::unary_forward(c, [s_](auto x) { return x / decltype(x)(s_); });
        }
    }
    void backward(Ctx<T>& c) const
    {
        const T s_ = s;
        if (scalar_first) {
            ew::unary_backward(c, [s_](auto g, auto x, auto) { return -g * decltype(g)(s_) / (x * x); });
        } else {
            ew::unary_backward(c, [s_](auto g, auto, auto) { return g / decltype(g)(s_); });
        }
    }
};

}  // namespace

template <class T> Var<T> div(const Var<T>& a, const Var<T>& b)
{
    ew::broadcast_shape("div", a.shape(), b.shape());
    return record(Div{}, a, b);
}
template <class T> Var<T> div(const Var<T>& a, detail::scalar_t<T> b)
{
    return record(DivScalar<T>{b, false}, a);
}
template <class T> Var<T> div(detail::scalar_t<T> a, const Var<T>& b)
{
    return record(DivScalar<T>{a, true}, b);
}

TAPEGRAD_INSTANTIATE_BINARY(div)

}  // namespace tg

TAPEGRAD_REGISTER_OP(div)
{
    return {"div", [](std::mt19937_64& rng) {
                return tg::samples::binary(
                    rng, -2.0, 2.0, 0.5, [](const auto& v) { return v[0] / v[1]; },
                    [](const auto& x, double s) { return x / s; }, [](double s, const auto& x) { return s / x; });
            }};
}
