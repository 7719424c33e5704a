// ops/neg.cpp — y = -x
//   backward: grad_x = -grad_out

#include "op_common.hpp"

namespace tg {
namespace {

struct Neg {
    static constexpr const char* name = "neg";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::unary_forward(c, [](auto x) { return -x; });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c, [](auto g, auto, auto) { return -g; });
    }
};

}  // namespace

template <class T> Var<T> neg(const Var<T>& x)
{
    return record(Neg{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(neg)

}  // namespace tg

TAPEGRAD_REGISTER_OP(neg)
{
    return {"neg", [](std::mt19937_64& rng) {
                return tg::samples::unary(rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::neg(v[0]); });
            }};
}
