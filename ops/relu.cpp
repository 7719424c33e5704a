// ops/relu.cpp — y = max(x, 0); NaN stays NaN
//   backward: grad_x = grad_out where x > 0, else 0 (0 at x = 0 exactly, as PyTorch)

#include "op_common.hpp"

namespace tg {
namespace {

struct Relu {
    static constexpr const char* name = "relu";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::unary_forward(c, [](auto x) { return kernel::select(x < decltype(x)(0), decltype(x)(0), x); });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c,
                           [](auto g, auto x, auto) { return kernel::select(x > decltype(x)(0), g, decltype(g)(0)); });
    }
};

}  // namespace

template <class T> Var<T> relu(const Var<T>& x)
{
    return record(Relu{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(relu)

}  // namespace tg

TAPEGRAD_REGISTER_OP(relu)
{
    return {"relu", [](std::mt19937_64& rng) {
                return tg::samples::unary(rng, -2.0, 2.0, 0.1, [](const auto& v) { return tg::relu(v[0]); });
            }};
}
