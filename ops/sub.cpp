// ops/sub.cpp — y = a - b with numpy broadcasting; also a - s and s - a for a scalar s.
//   backward: grad_a = grad_out, grad_b = -grad_out, each summed to its input's shape
//             (scalar forms: grad_a = grad_out for a - s, -grad_out for s - a)

#include "op_common.hpp"

namespace tg {
namespace {

struct Sub {
    static constexpr const char* name = "sub";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::binary_forward(c, [](auto a, auto b) { return a - b; });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::binary_backward(
            c, [](auto g, auto, auto) { return g; }, [](auto g, auto, auto) { return -g; });
    }
};

template <class T> struct SubScalar {
    static constexpr const char* name = "sub";
    T s;
    bool scalar_first;  // s - a instead of a - s
    void forward(Ctx<T>& c) const
    {
        const T s_ = s;
        if (scalar_first) {
            ew::unary_forward(c, [s_](auto x) { return decltype(x)(s_) - x; });
        } else {
            ew::unary_forward(c, [s_](auto x) { return x - decltype(x)(s_); });
        }
    }
    void backward(Ctx<T>& c) const
    {
        if (scalar_first) {
            ew::unary_backward(c, [](auto g, auto, auto) { return -g; });
        } else {
            ew::unary_backward(c, [](auto g, auto, auto) { return g; });
        }
    }
};

}  // namespace

template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b)
{
    ew::broadcast_shape("sub", a.shape(), b.shape());
    return record(Sub{}, a, b);
}
template <class T> Var<T> sub(const Var<T>& a, detail::scalar_t<T> b)
{
    return record(SubScalar<T>{b, false}, a);
}
template <class T> Var<T> sub(detail::scalar_t<T> a, const Var<T>& b)
{
    return record(SubScalar<T>{a, true}, b);
}

TAPEGRAD_INSTANTIATE_BINARY(sub)

}  // namespace tg

TAPEGRAD_REGISTER_OP(sub)
{
    return {"sub", [](std::mt19937_64& rng) {
                return tg::samples::binary(
                    rng, -2.0, 2.0, 0.0, [](const auto& v) { return v[0] - v[1]; },
                    [](const auto& x, double s) { return x - s; }, [](double s, const auto& x) { return s - x; });
            }};
}
