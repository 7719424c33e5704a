// ops/sigmoid.cpp — y = 1 / (1 + exp(-x)); for x -> -inf exp(-x) overflows to inf and y to 0, never NaN
//   backward: grad_x = grad_out * y * (1 - y)  (the saved output: finite at every x)

#include "op_common.hpp"

namespace tg {
namespace {

struct Sigmoid {
    static constexpr const char* name = "sigmoid";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::unary_forward(c, [](auto x) { return decltype(x)(1) / (decltype(x)(1) + xsimd::exp(-x)); });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c, [](auto g, auto, auto y) { return g * y * (decltype(y)(1) - y); });
    }
};

}  // namespace

template <class T> Var<T> sigmoid(const Var<T>& x)
{
    return record(Sigmoid{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(sigmoid)

}  // namespace tg

TAPEGRAD_REGISTER_OP(sigmoid)
{
    return {"sigmoid", [](std::mt19937_64& rng) {
                return tg::samples::unary(rng, -5.0, 5.0, 0.0, [](const auto& v) { return tg::sigmoid(v[0]); });
            }};
}
