// ops/transpose.cpp — y [n, m] = x [m, n]^T
//   backward: grad_x [m, n] = grad_out [n, m]^T
// The result is a new row-major array: matmul folds transposes into gemm, so a copy
// here only happens when a program asks for one explicitly.

#include "op_common.hpp"

namespace tg {
namespace {

template <class T> void transpose_into(std::size_t m, std::size_t n, const T* x, T* y, bool add)
{
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            if (add) {
                y[j * m + i] += x[i * n + j];
            } else {
                y[j * m + i] = x[i * n + j];
            }
        }
    }
}

struct Transpose {
    static constexpr const char* name = "transpose";
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t m = x.shape()[0], n = x.shape()[1];
        auto& y = c.out();
        if (y.dimension() != 2 || y.shape()[0] != n || y.shape()[1] != m) y.resize({n, m});
        transpose_into(m, n, x.data(), y.data(), false);
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        if (!c.needs_grad(0)) return;
        const auto& x = c.input(0);
        const std::size_t m = x.shape()[0], n = x.shape()[1];
        GradSlot<T> s = c.grad_slot(0);
        transpose_into(n, m, c.grad_out().data(), s.data, s.add);
    }
};

}  // namespace

template <class T> Var<T> transpose(const Var<T>& x)
{
    if (x.dim() != 2) throw Error("transpose: expected a 2-D Var, got shape " + format_shape(x.shape()));
    return record(Transpose{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(transpose)

}  // namespace tg

TAPEGRAD_REGISTER_OP(transpose)
{
    return {"transpose", [](std::mt19937_64& rng) {
                auto f = [](const auto& v) { return tg::transpose(v[0]); };
                std::vector<tg::OpSample> out;
                out.push_back(tg::make_sample("(3,4)", {tg::sample_uniform(rng, {3, 4}, -1.0, 1.0)}, f));
                out.push_back(tg::make_sample("(1,5)", {tg::sample_uniform(rng, {1, 5}, -1.0, 1.0)}, f));
                out.push_back(tg::make_sample("(1,1)", {tg::sample_uniform(rng, {1, 1}, -1.0, 1.0)}, f));
                out.push_back(tg::make_sample("twice (2,3)", {tg::sample_uniform(rng, {2, 3}, -1.0, 1.0)},
                                              [](const auto& v) { return tg::transpose(tg::transpose(v[0])); }));
                return out;
            }};
}
