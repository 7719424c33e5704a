// ops/exp.cpp — y = exp(x)
//   backward: grad_x = grad_out * y          (the saved output, not exp(x) again)

#include "op_common.hpp"

namespace tg {
namespace {

struct Exp {
    static constexpr const char* name = "exp";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::unary_forward(c, [](auto x) { return xsimd::exp(x); });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c, [](auto g, auto, auto y) { return g * y; });
    }
};

}  // namespace

template <class T> Var<T> exp(const Var<T>& x)
{
    return record(Exp{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(exp)

}  // namespace tg

TAPEGRAD_REGISTER_OP(exp)
{
    return {"exp", [](std::mt19937_64& rng) {
                return tg::samples::unary(rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::exp(v[0]); });
            }};
}
