// ops/square.cpp — y = x * x
//   backward: grad_x = 2 x grad_out

#include "op_common.hpp"

namespace tg {
namespace {

struct Square {
    static constexpr const char* name = "square";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::unary_forward(c, [](auto x) { return x * x; });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c, [](auto g, auto x, auto) { return g * (x + x); });
    }
};

}  // namespace

template <class T> Var<T> square(const Var<T>& x)
{
    return record(Square{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(square)

}  // namespace tg

TAPEGRAD_REGISTER_OP(square)
{
    return {"square", [](std::mt19937_64& rng) {
                return tg::samples::unary(rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::square(v[0]); });
            }};
}
