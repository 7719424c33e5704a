// ops/mul.cpp — y = a * b with numpy broadcasting; also a * s and s * a for a scalar s.
//   backward: grad_a = grad_out * b, grad_b = grad_out * a, each summed to its input's shape
//             (scalar form: grad_a = grad_out * s)

#include "op_common.hpp"

namespace tg {
namespace {

struct Mul {
    static constexpr const char* name = "mul";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::binary_forward(c, [](auto a, auto b) { return a * b; });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::binary_backward(
            c, [](auto g, auto, auto b) { return g * b; }, [](auto g, auto a, auto) { return g * a; });
    }
};

template <class T> struct MulScalar {
    static constexpr const char* name = "mul";
    T s;
    void forward(Ctx<T>& c) const
    {
        const T s_ = s;
        ew::unary_forward(c, [s_](auto x) { return x * decltype(x)(s_); });
    }
    void backward(Ctx<T>& c) const
    {
        const T s_ = s;
        ew::unary_backward(c, [s_](auto g, auto, auto) { return g * decltype(g)(s_); });
    }
};

}  // namespace

template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b)
{
    ew::broadcast_shape("mul", a.shape(), b.shape());
    return record(Mul{}, a, b);
}
template <class T> Var<T> mul(const Var<T>& a, detail::scalar_t<T> b)
{
    return record(MulScalar<T>{b}, a);
}
template <class T> Var<T> mul(detail::scalar_t<T> a, const Var<T>& b)
{
    return record(MulScalar<T>{a}, b);
}

TAPEGRAD_INSTANTIATE_BINARY(mul)

}  // namespace tg

TAPEGRAD_REGISTER_OP(mul)
{
    return {"mul", [](std::mt19937_64& rng) {
                return tg::samples::binary(
                    rng, -2.0, 2.0, 0.0, [](const auto& v) { return v[0] * v[1]; },
                    [](const auto& x, double s) { return x * s; }, [](double s, const auto& x) { return s * x; });
            }};
}
