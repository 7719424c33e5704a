// ops/log.cpp — y = log(x), defined for x > 0
//   backward: grad_x = grad_out / x

#include "op_common.hpp"

namespace tg {
namespace {

struct Log {
    static constexpr const char* name = "log";
    template <class T> void forward(Ctx<T>& c) const
    {
        ew::unary_forward(c, [](auto x) { return xsimd::log(x); });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        ew::unary_backward(c, [](auto g, auto x, auto) { return g / x; });
    }
};

}  // namespace

template <class T> Var<T> log(const Var<T>& x)
{
    return record(Log{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(log)

}  // namespace tg

TAPEGRAD_REGISTER_OP(log)
{
    return {"log", [](std::mt19937_64& rng) {
                return tg::samples::unary(rng, 0.5, 3.0, 0.0, [](const auto& v) { return tg::log(v[0]); });
            }};
}
