// ops/tanh.cpp — y = tanh(x)
//   backward: grad_x = grad_out * (1 - y^2)   (the saved output)

#include "op_common.hpp"

namespace tg {
namespace {

struct Tanh {
    static constexpr const char* name = "tanh";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::unary_forward(c, [](auto x) { return xsimd::tanh(x); });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c, [](auto g, auto, auto y) { return g * (decltype(y)(1) - y * y); });
    }
};

}  // namespace

template <class T> Var<T> tanh(const Var<T>& x)
{
    return record(Tanh{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(tanh)

}  // namespace tg

TAPEGRAD_REGISTER_OP(tanh)
{
    return {"tanh", [](std::mt19937_64& rng) {
                return tg::samples::unary(rng, -3.0, 3.0, 0.0, [](const auto& v) { return tg::tanh(v[0]); });
            }};
}
