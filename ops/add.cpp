// ops/add.cpp — y = a + b with numpy broadcasting; also a + s and s + a for a scalar s.
//   backward: grad_a = grad_out summed to a's shape, grad_b = grad_out summed to b's shape
//             (scalar form: grad_a = grad_out)

#include "op_common.hpp"

namespace tg {
namespace {

struct Add {
    static constexpr const char* name = "add";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::binary_forward(c, [](auto a, auto b) { return a + b; });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        // The gradient is grad_out itself: reduce it straight into each input.
        for (std::size_t i = 0; i < 2; ++i) c.accumulate_full(i, c.grad_out().data(), c.grad_out().shape());
    }
};

template <class T> struct AddScalar {
    static constexpr const char* name = "add";
    T s;
    void forward(Ctx<T>& c) const
    {
        const T s_ = s;
        ew::unary_forward(c, [s_](auto x) { return x + decltype(x)(s_); });
    }
    void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c, [](auto g, auto, auto) { return g; });
    }
};

}  // namespace

template <class T> Var<T> add(const Var<T>& a, const Var<T>& b)
{
    ew::broadcast_shape("add", a.shape(), b.shape());
    return record(Add{}, a, b);
}
template <class T> Var<T> add(const Var<T>& a, detail::scalar_t<T> b)
{
    return record(AddScalar<T>{b}, a);
}
template <class T> Var<T> add(detail::scalar_t<T> a, const Var<T>& b)
{
    return record(AddScalar<T>{a}, b);
}

TAPEGRAD_INSTANTIATE_BINARY(add)

}  // namespace tg

TAPEGRAD_REGISTER_OP(add)
{
    return {"add", [](std::mt19937_64& rng) {
                return tg::samples::binary(
                    rng, -2.0, 2.0, 0.0, [](const auto& v) { return v[0] + v[1]; },
                    [](const auto& x, double s) { return x + s; }, [](double s, const auto& x) { return s + x; });
            }};
}
