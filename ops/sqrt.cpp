// ops/sqrt.cpp — y = sqrt(x), defined for x >= 0
//   backward: grad_x = grad_out / (2 y)        (infinite at x = 0, as PyTorch)

#include "op_common.hpp"

namespace tg {
namespace {

struct Sqrt {
    static constexpr const char* name = "sqrt";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::unary_forward(c, [](auto x) { return xsimd::sqrt(x); });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c, [](auto g, auto, auto y) { return g / (y + y); });
    }
};

}  // namespace

template <class T> Var<T> sqrt(const Var<T>& x)
{
    return record(Sqrt{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(sqrt)

}  // namespace tg

TAPEGRAD_REGISTER_OP(sqrt)
{
    return {"sqrt", [](std::mt19937_64& rng) {
                return tg::samples::unary(rng, 0.5, 3.0, 0.0, [](const auto& v) { return tg::sqrt(v[0]); });
            }};
}
